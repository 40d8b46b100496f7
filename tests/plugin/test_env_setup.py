"""Setting up and checking the engine's environment: command lines, progress, the check's report."""

import sys

import pytest

from sparse_al_plugin import env_setup
from sparse_al_plugin.engine_config import EngineConfig, venv_python
from sparse_al_plugin.tasks import CommandTask
from tests.plugin.conftest import ROOT, wait_for


def test_setup_creates_a_venv_outside_the_plugin_then_installs_the_requirements(tmp_path):
    venv = tmp_path / "engine-venv"
    commands = env_setup.setup_commands(tmp_path / "python3", venv, ROOT / "requirements.txt")
    assert commands[0] == [str(tmp_path / "python3"), "-m", "venv", str(venv)]
    assert commands[-1][:4] == [str(venv_python(venv)), "-m", "pip", "install"]
    assert commands[-1][-2:] == ["-r", str(ROOT / "requirements.txt")]
    assert env_setup.find_base_python() is not None


def test_setup_progress_rises_with_pip_output():
    seen: set[str] = set()
    values = [env_setup.setup_progress(0, "", 10, seen), env_setup.setup_progress(1, "", 10, seen)]
    for name in ("torch", "numpy", "numpy", "rasterio"):
        values.append(env_setup.setup_progress(2, f"Collecting {name}>=1", 10, seen))
    values.append(env_setup.setup_progress(2, "Installing collected packages: a, b", 10, seen))
    assert values == sorted(values) and values[-1] == 95.0 and len(seen) == 3
    assert env_setup.setup_progress(2, "  Downloading x.whl", 10, seen) is None
    assert env_setup.requirement_count(ROOT / "requirements.txt") >= 5


def test_describe_check():
    ok, text = env_setup.describe_check({"python": "3.11.2", "torch": "2.4.0", "device": "cpu", "engine": "0.1.0"})
    assert ok and text == "Python 3.11.2, torch 2.4.0 on cpu, engine 0.1.0"
    ok, text = env_setup.describe_check({"python": "3.11.2", "torch_error": "ModuleNotFoundError('torch')"})
    assert not ok and "Set up engine" in text
    bad = "SPARSE_AL_CPU_BF16 is 'maybe'; set it to 0, 1 or auto"
    ok, text = env_setup.describe_check({"python": "3.11.2", "torch": "2.4.0", "device": "cpu", "engine": "0.1.0",
                                         "precision_error": bad})  # fmt: skip
    assert not ok and text.endswith(f"engine 0.1.0, but {bad}")
    assert env_setup.parse_check(["noise", env_setup.CHECK_MARK + '{"python": "3"}']) == {"python": "3"}
    assert "error" in env_setup.parse_check(["Traceback", "boom"])


def test_command_task_streams_lines_and_progress(qgis_iface):
    script = "import time\nfor i in range(3):\n    print(f'Collecting p{i}', flush=True)\n    time.sleep(0.05)\n"
    done = []
    seen: set[str] = set()
    task = CommandTask("t", [[sys.executable, "-c", script]], done.append,
                       progress_of=lambda step, line: env_setup.setup_progress(2, line, 1, seen))  # fmt: skip
    lines = []
    task.lineReceived.connect(lines.append)
    from qgis.core import QgsApplication

    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: done, 30, "the command task")
    assert task.returncode == 0 and lines == ["Collecting p0", "Collecting p1", "Collecting p2"]
    assert task.progress() > 15


def test_command_task_can_be_stopped(qgis_iface):
    done = []
    task = CommandTask("t", [[sys.executable, "-c", "import time\nprint('x', flush=True)\ntime.sleep(60)"]],
                       done.append)  # fmt: skip
    from qgis.core import QgsApplication

    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: task.output, 30, "the first line")
    task.cancel()
    wait_for(lambda: done, 30, "the stopped task")
    assert task.returncode != 0


@pytest.mark.slow
@pytest.mark.parametrize("cpu_bf16, precision, bf16", [("0", "auto", False), ("1", "auto", True), ("0", "bf16", True),
                                                      ("1", "float32", False)])  # fmt: skip
def test_check_reports_torch_and_device_of_this_environment(monkeypatch, cpu_bf16, precision, bf16):
    import subprocess

    import torch

    monkeypatch.setenv("SPARSE_AL_CPU_BF16", cpu_bf16)
    config = EngineConfig(sys.executable, "engine", str(ROOT), precision=precision)
    out = subprocess.run(env_setup.check_command(config), env=config.environment(), capture_output=True, text=True,
                         timeout=300).stdout.splitlines()  # fmt: skip
    ok, text = env_setup.describe_check(env_setup.parse_check(out))
    assert ok, text
    assert "torch 2." in text and " on " in text and "engine 0." in text
    if not torch.cuda.is_available():  # the precision the engine's networks will run in on this CPU
        assert ("on cpu (bf16 autocast)" in text) == bf16, text


@pytest.mark.slow
def test_check_fails_on_a_precision_setting_every_run_would_refuse(monkeypatch):
    import subprocess

    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "maybe")
    config = EngineConfig(sys.executable, "engine", str(ROOT))
    out = subprocess.run(env_setup.check_command(config), env=config.environment(), capture_output=True, text=True,
                         timeout=300).stdout.splitlines()  # fmt: skip
    ok, text = env_setup.describe_check(env_setup.parse_check(out))
    assert not ok and "SPARSE_AL_CPU_BF16 is 'maybe'" in text, text
