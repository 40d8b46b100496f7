"""Training on several processes with torchrun (gloo on the CPU): the processes share an epoch's patches, end with
the same weights, and only process 0 reports and saves; the other commands refuse several processes."""

import json
import subprocess
import sys

import pytest

from engine.distributed import World, start, world
from engine.errors import InputError
from tests.engine.cli_helpers import ROOT, TINY, engine_env, scene_points

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]


def _torchrun(*argv, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**engine_env(), "SPARSE_AL_CPU_BF16": "0"}
    return subprocess.run([*TORCHRUN, *map(str, argv)], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)  # fmt: skip


def test_a_single_process_is_rank_0_of_1(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert world() == World(0, 1, 0) and world().lead
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(InputError, match="must be integers"):
        world()


def test_commands_other_than_train_refuse_several_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InputError, match="predict runs in one process: run it without torchrun"):
        start("predict", "cpu")


@pytest.mark.slow
def test_two_processes_share_the_steps_and_end_with_the_same_weights(tmp_path, scene):
    out = tmp_path / "checksums.json"
    run = _torchrun("tests/engine/distributed_worker.py", scene.image, out)
    assert run.returncode == 0, run.stderr[-2000:]
    (sum0, steps0), (sum1, steps1) = json.loads(out.read_text())
    assert steps0 == steps1 == 2 * 2  # 2 epochs of 8 patches in batches of 2, shared by 2 processes
    assert sum0 == sum1  # the gradients were averaged: the copies never drifted apart


@pytest.mark.slow
def test_engine_train_under_torchrun_reports_once_and_saves_a_model(tmp_path, scene):
    points = scene_points(tmp_path, scene.label, per_class=3)
    model = tmp_path / "model"
    run = _torchrun("-m", "engine", "train", "--raster", scene.image, "--points", points, "--classes", "a,b,c",
                    "--out", model, "--events", "json", "--device", "cpu", *TINY)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [e["event"] for e in events].count("start") == 1 and events[0]["device"] == "cpu, 2 processes"
    results = [e for e in events if e["event"] == "result"]
    assert len(results) == 1 and results[0]["steps"] == 1  # TINY: 1 epoch of 4 patches in batches of 2, halved
    config = json.loads((model / "config.json").read_text())
    assert config["trained"]["processes"] == 2
    assert (model / "weights.safetensors").is_file() and (model / "forest").is_dir()
