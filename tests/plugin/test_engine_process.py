"""run_engine against the fake engine: events, exit statuses, stderr, SIGTERM."""

import json
import sys
import threading
import time

from sparse_al_plugin.engine_process import parse_event, run_engine
from tests.plugin.conftest import ROOT

FAKE = [sys.executable, "-m", "tests.plugin.fake_engine"]


def _env(mode, **extra):
    import os

    env = dict(os.environ, FAKE_ENGINE_MODE=mode, PYTHONPATH=str(ROOT), **extra)
    env.pop("FAKE_ENGINE_RECORD", None)
    return env


def _job(tmp_path, **job):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return str(path)


def test_parse_event_ignores_what_is_not_an_event():
    assert parse_event('{"v": 1, "event": "progress", "fraction": 0.5}\n')["fraction"] == 0.5
    assert parse_event("Downloading weights...") is None
    assert parse_event("{broken") is None
    assert parse_event('{"no": "event"}') is None


def test_success_collects_events_and_result(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({"classes": [{"name": "a", "color": "#000000"}]}))
    import numpy as np

    from tests.fixtures import write_raster

    raster = write_raster(tmp_path / "r.tif", np.zeros((8, 8), np.uint8))
    seen = []
    job = _job(tmp_path, model=str(tmp_path / "model"), raster=str(raster), out=str(tmp_path / "out"))
    argv = [*FAKE, "predict", "--job", job, "--events", "json"]
    outcome = run_engine(argv, _env("ok"), seen.append, log_path=tmp_path / "predict.log")
    assert outcome.ok and outcome.returncode == 0
    assert next(e["event"] for e in seen) == "start" and seen[-1]["event"] == "result"
    assert [e["fraction"] for e in seen if e["event"] == "progress"] == [1 / 3, 2 / 3, 1.0]
    assert outcome.result["prediction"] == str(tmp_path / "out" / "prediction.tif")
    assert "fake engine starting" in (tmp_path / "predict.log").read_text()


def test_bad_input_gives_the_engine_message(tmp_path):
    outcome = run_engine([*FAKE, "train", "--job", _job(tmp_path, raster=["x"], points="p", out="o")], _env("error"),
                         log_path=tmp_path / "log")  # fmt: skip
    assert not outcome.ok and outcome.returncode == 2
    assert outcome.message().startswith("--points: fake.gpkg has no CRS")
    assert '"field": "points"' in outcome.details()


def test_crash_without_error_event_points_to_the_log(tmp_path):
    outcome = run_engine([*FAKE, "train", "--job", _job(tmp_path, raster=["x"], points="p", out="o")], _env("crash"),
                         log_path=tmp_path / "log")  # fmt: skip
    assert outcome.returncode == 1 and outcome.error is None
    assert "exit status 1" in outcome.message()
    assert "RuntimeError: fake crash" in outcome.details()


def test_cancel_sends_sigterm_and_waits(tmp_path):
    marker = tmp_path / "signal"
    cancel = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if event["event"] == "progress":
            cancel.set()

    start = time.monotonic()
    outcome = run_engine([*FAKE, "train", "--job", _job(tmp_path, raster=["x"], points="p", out="o")],
                         _env("hang", FAKE_ENGINE_SIGNAL_FILE=str(marker)), on_event, cancel.is_set)  # fmt: skip
    assert time.monotonic() - start < 30
    assert outcome.cancelled and outcome.returncode == 130 and not outcome.ok
    assert marker.read_text() == "SIGTERM"
    assert outcome.error["code"] == "cancelled" and seen[-1]["event"] == "error"


def test_missing_interpreter_is_an_outcome_not_an_exception(tmp_path):
    outcome = run_engine([str(tmp_path / "no-python"), "-m", "engine"])
    assert not outcome.ok and "could not start the engine" in outcome.message()
