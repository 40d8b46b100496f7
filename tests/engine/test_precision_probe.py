"""The timed bf16 probe: measured once per CPU, torch version and thread count, kept in the user's cache, read back."""

import json
import math

import pytest
import torch

import engine.precision_probe as probe


@pytest.fixture
def timings(tmp_path, monkeypatch):
    """The probe's cache in tmp_path and a stand-in for its timing that records each call."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls: list[int] = []
    speedup = {"value": 0.8}

    def timed(repeats: int = 3) -> float:
        calls.append(repeats)
        return speedup["value"]

    monkeypatch.setattr(probe, "time_speedup", timed)
    probe.bf16_speedup.cache_clear()
    yield calls, speedup
    probe.bf16_speedup.cache_clear()


def test_the_first_run_times_and_caches_later_runs_read(timings, tmp_path):
    calls, _ = timings
    assert probe.bf16_faster() is False  # 0.8: slower in bf16
    assert calls == [3]
    path = tmp_path / "cache" / "sparse-al" / "cpu_precision.json"
    assert json.loads(path.read_text()) == {probe.machine_key(): 0.8}
    probe.bf16_speedup.cache_clear()  # a later process
    assert probe.bf16_speedup() == 0.8 and calls == [3]


def test_another_machine_key_or_a_damaged_cache_is_timed_again(timings, tmp_path, monkeypatch):
    calls, speedup = timings
    path = tmp_path / "cache" / "sparse-al" / "cpu_precision.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"another CPU | torch 0 | 1 threads": 3.0}))
    speedup["value"] = 1.9
    assert probe.bf16_faster() is True and calls == [3]
    assert json.loads(path.read_text()) == {"another CPU | torch 0 | 1 threads": 3.0, probe.machine_key(): 1.9}
    path.write_text("{not json")
    probe.bf16_speedup.cache_clear()
    assert probe.bf16_faster() is True and calls == [3, 3]
    assert json.loads(path.read_text()) == {probe.machine_key(): 1.9}


def test_an_unwritable_cache_still_answers(timings, tmp_path, monkeypatch):
    calls, _ = timings
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    assert probe.bf16_speedup() == 0.8 and calls == [3]


def test_a_ratio_near_the_threshold_is_timed_twice_and_averaged(timings):
    calls, speedup = timings
    speedup["value"] = 1.05
    assert probe.bf16_speedup() == 1.05 and calls == [3, 3]


def test_a_failed_timing_means_float32_and_is_not_kept(timings, tmp_path, monkeypatch):
    def fails(repeats: int = 3) -> float:
        raise RuntimeError("no bf16 kernel")

    monkeypatch.setattr(probe, "time_speedup", fails)
    assert probe.bf16_faster() is False
    assert not (tmp_path / "cache" / "sparse-al" / "cpu_precision.json").exists()


def test_no_home_folder_means_no_cache(timings, monkeypatch):
    calls, _ = timings
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(probe.Path, "home", no_home)
    assert probe.cache_path() is None
    assert probe.bf16_speedup() == 0.8 and calls == [3]


def test_the_probe_times_a_training_step_in_both_precisions_from_any_mode_and_keeps_the_random_state():
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    with torch.inference_mode():  # as when a prediction is the first to ask
        speedup = probe.time_speedup(repeats=1)
    assert math.isfinite(speedup) and 0.05 < speedup < 20
    assert torch.equal(torch.rand(3), expected)
