"""`python -m engine train` as the plugin runs it: events, job files, errors, warm start, cancel."""

import argparse
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.commands.training_args import add_training_arguments, training_options
from engine.errors import InputError
from engine.models import DEFAULT_DECODERS, MODEL_SCHEMA_VERSION
from engine.train import TrainOptions, recorded_options
from tests.engine.cli_helpers import ROOT, TINY, engine_env, run_engine, scene_points
from tests.fixtures import pixel_center, write_points, write_raster

CLASSES = "background,red,blue"


@pytest.fixture
def points(tmp_path, scene):
    return scene_points(tmp_path, scene.label, per_class=3, names=CLASSES.split(","))


def _train(scene, points, out, *extra):
    return run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", out, *TINY, *extra
    )


def _assert_one_error(run, code, *words):
    assert run.code == code, run.stderr
    errors = run.of("error")
    assert len(errors) == 1 and not run.of("result")
    assert errors[0] == run.events[-1]
    assert "\n" not in errors[0]["message"]
    for word in words:
        assert word in errors[0]["message"]
    return errors[0]


@pytest.mark.slow
def test_train_writes_a_model_and_reports_progress(tmp_path, scene, points):
    run = _train(scene, points, tmp_path / "model")
    assert run.code == 0, run.stderr
    assert run.events[0]["event"] == "start"
    assert run.events[-1]["event"] == "result"
    assert run.of("progress")[-1]["fraction"] == 1.0
    assert run.of("metric")[0]["name"] == "loss"
    result = run.of("result")[0]
    assert result["points_used"] == 9 and result["points_per_class"] == {"background": 3, "red": 3, "blue": 3}
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["schema_version"] == MODEL_SCHEMA_VERSION  # the default U-Net's decoder channels are stored
    assert config["decoder_channels"] == list(DEFAULT_DECODERS["Unet"])
    assert [c["name"] for c in config["classes"]] == CLASSES.split(",")
    assert config["bands"] == [1, 2, 3] and config["in_channels"] == 3
    assert {"low", "high", "mean", "std"} <= set(config["normalization"])
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "forest", "weights.safetensors"]


@pytest.mark.slow
def test_job_file_carries_the_same_fields(tmp_path, scene, points):
    job = {
        "raster": [str(scene.image)],
        "points": str(points),
        "classes": CLASSES,
        "out": str(tmp_path / "m"),
        "epochs": 1,
        "patch_size": 64,
        "batch_size": 2,
        "patches_per_epoch": 4,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = run_engine("train", "--job", tmp_path / "job.json")
    assert run.code == 0, run.stderr
    assert (tmp_path / "m" / "config.json").exists()


def test_job_file_with_unknown_field_is_refused(tmp_path):
    (tmp_path / "job.json").write_text(json.dumps({"raster": ["a.tif"], "epoch": 3}))
    _assert_one_error(run_engine("train", "--job", tmp_path / "job.json"), 2, "epoch", "job.json")


def test_a_repeatable_option_on_the_command_line_replaces_the_job_list_and_a_string_is_one_item(tmp_path):
    from engine.cli import parse

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"raster": ["a.tif", "b.tif"], "points": "p.gpkg", "out": "m", "epochs": 3}))
    assert parse(["train", "--job", str(job)]).raster == ["a.tif", "b.tif"]
    args = parse(["train", "--job", str(job), "--raster", "c.tif", "--epochs", "5"])
    assert args.raster == ["c.tif"] and args.epochs == 5 and args.points == "p.gpkg"
    job.write_text(json.dumps({"raster": "a.tif", "points": "p.gpkg", "out": "m"}))
    assert parse(["train", "--job", str(job)]).raster == ["a.tif"]
    job.write_text(json.dumps({"raster": 7, "points": "p.gpkg", "out": "m"}))
    with pytest.raises(InputError, match="^--job: field raster is 7; give a list"):
        parse(["train", "--job", str(job)])


def test_missing_raster(tmp_path, points):
    run = run_engine(
        "train", "--raster", tmp_path / "nope.tif", "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    assert _assert_one_error(run, 2, "nope.tif", "does not exist")["field"] == "raster"


def test_unreadable_raster(tmp_path, points):
    (tmp_path / "bad.tif").write_text("not a raster")
    run = run_engine(
        "train", "--raster", tmp_path / "bad.tif", "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "bad.tif")


def test_raster_without_crs(tmp_path, points):
    image = write_raster(tmp_path / "nocrs.tif", np.ones((3, 32, 32), np.uint8), crs=None)
    run = run_engine("train", "--raster", image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m")
    _assert_one_error(run, 2, "nocrs.tif", "no CRS")


def test_missing_or_unreadable_points(tmp_path, scene):
    run = run_engine(
        "train",
        "--raster",
        scene.image,
        "--points",
        tmp_path / "none.gpkg",
        "--classes",
        CLASSES,
        "--out",
        tmp_path / "m",
    )
    _assert_one_error(run, 2, "none.gpkg")
    (tmp_path / "junk.gpkg").write_text("junk")
    run = run_engine(
        "train",
        "--raster",
        scene.image,
        "--points",
        tmp_path / "junk.gpkg",
        "--classes",
        CLASSES,
        "--out",
        tmp_path / "m",
    )
    _assert_one_error(run, 2, "junk.gpkg")


def test_points_without_crs(tmp_path, scene):
    points = write_points(tmp_path / "p.gpkg", [pixel_center(1, 1)], ["red"], crs=None)
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "p.gpkg", "no CRS")


def test_no_points(tmp_path, scene):
    points = write_points(tmp_path / "p.gpkg", [], [])
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "no points")


def test_all_points_outside_the_rasters(tmp_path, scene):
    points = write_points(tmp_path / "p.gpkg", [pixel_center(-50, 10), pixel_center(500, 500)], ["red", "blue"])
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "2 outside")


def test_unknown_class_name_or_index(tmp_path, scene):
    points = write_points(tmp_path / "p.gpkg", [pixel_center(1, 1)], ["green"])
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "green", "background,red,blue")
    points = write_points(tmp_path / "q.gpkg", [pixel_center(1, 1)], [7])
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--classes", CLASSES, "--out", tmp_path / "m"
    )
    _assert_one_error(run, 2, "7")


def test_bad_option_values(tmp_path, scene, points):
    _assert_one_error(_train(scene, points, tmp_path / "m", "--patch-size", "50"), 2, "--patch-size")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--arch", "Nope"), 2, "Nope", "Unet")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--loss", "focal"), 2, "focal")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--warm-lr", "0"), 2, "--warm-lr", "positive")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--expansion-weight", "2"), 2, "--expansion-weight")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--jitter", "1"), 2, "--jitter", "below 1")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--context-fraction", "2"), 2, "--context-fraction")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--expansion-region", "1"), 2, "--expansion-region")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--correction-region", "99"), 2, "--correction-region")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--affinity", "-1"), 2, "--affinity", "0 or more")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--weight-average", "2"), 2, "--weight-average", "most 1")
    _assert_one_error(_train(scene, points, tmp_path / "m", "--decoder-channels", "64,0"), 2, "--decoder-channels")
    run = _train(scene, points, tmp_path / "m", "--arch", "FPN", "--decoder-channels", "64,32,16,8,8")
    _assert_one_error(run, 2, "--decoder-channels", "FPN")
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_light_decoder_is_kept_through_a_warm_start_and_predicts(tmp_path, scene, points):
    light = _train(scene, points, tmp_path / "m1", "--decoder-channels", "64,32,16,8,8")
    assert light.code == 0, light.stderr
    run = run_engine(
        "train", "--raster", scene.image, "--points", points, "--init", tmp_path / "m1", "--out", tmp_path / "m2", *TINY
    )
    assert run.code == 0, run.stderr
    assert json.loads((tmp_path / "m2" / "config.json").read_text())["decoder_channels"] == [64, 32, 16, 8, 8]
    run = run_engine("predict", "--model", tmp_path / "m2", "--raster", scene.image, "--out", tmp_path / "pred")
    assert run.code == 0, run.stderr
    assert (tmp_path / "pred" / "prediction.tif").exists()


@pytest.mark.slow
def test_init_continues_training_and_checks_classes_and_bands(tmp_path, scene, points):
    assert _train(scene, points, tmp_path / "m1").code == 0
    run = run_engine("train", "--raster", scene.image, "--points", points, "--init", tmp_path / "m1",
                     "--out", tmp_path / "m2", *TINY, "--affinity", "0.5", "--distill", "0.3")  # fmt: skip
    assert run.code == 0, run.stderr
    first, trained = (json.loads((tmp_path / m / "config.json").read_text())["trained"] for m in ("m1", "m2"))
    assert trained["epochs"] == 2 and trained["iterations"] == 2
    assert (first["options"]["affinity"], first["options"]["distill"]) == (0.0, 1.0)  # how each training was run
    assert (trained["options"]["affinity"], trained["options"]["distill"]) == (0.5, 0.3)
    other = _train(scene, points, tmp_path / "m3", "--init", tmp_path / "m1", "--classes", "background,red,green")
    _assert_one_error(other, 2, "--init", "background,red,blue")
    other = _train(scene, points, tmp_path / "m3", "--init", tmp_path / "m1", "--bands", "1,2")
    _assert_one_error(other, 2, "--init", "bands")


def test_a_models_recorded_options_are_json_even_for_a_path_or_a_tuple():
    @dataclass
    class WithPath(TrainOptions):
        cache: Path = Path("/tmp/cache")

    recorded = recorded_options(WithPath(loss="dwcd", decoder_channels=(32, 16)))

    assert recorded["cache"] == "/tmp/cache" and recorded["loss"] == "dwcd"
    assert "decoder_channels" not in recorded
    json.dumps(recorded)


def test_model_from_a_newer_schema_is_refused(tmp_path, scene, points):
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / "config.json").write_text(json.dumps({"schema_version": MODEL_SCHEMA_VERSION + 1}))
    run = _train(scene, points, tmp_path / "m", "--init", tmp_path / "future")
    _assert_one_error(run, 2, "newer engine", "update the engine")


def _cancel_training(scene, points, out, sig, *extra) -> tuple[int, list[dict]]:
    """Start a long training, send ``sig`` after its first progress event; its exit status and events."""
    args = [sys.executable, "-m", "engine", "train", "--raster", scene.image, "--points", points, "--classes", CLASSES,
            "--out", out, *extra, "--epochs", "500", "--patch-size", "64", "--batch-size", "2",
            "--patches-per-epoch", "4", "--events", "json"]  # fmt: skip
    proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, text=True, cwd=ROOT, env=engine_env())
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "progress":
            proc.send_signal(sig)
            break
    events += [json.loads(line) for line in proc.stdout]
    proc.stdout.close()
    return proc.wait(timeout=60), events


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cancel_leaves_the_previous_model_intact(tmp_path, scene, points, sig):
    out = tmp_path / "model"
    assert _train(scene, points, out).code == 0
    before = _files(out)
    assert "forest/weights.safetensors" in before
    code, events = _cancel_training(scene, points, out, sig, "--init", out)
    assert code == 130
    assert events[-1]["event"] == "error" and events[-1]["code"] == "cancelled"
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_cancel_before_the_first_model_leaves_none(tmp_path, scene, points):
    code, events = _cancel_training(scene, points, tmp_path / "model", signal.SIGTERM)
    assert code == 130 and events[-1]["code"] == "cancelled"
    assert list(tmp_path.glob("*model*")) == []


@pytest.mark.slow
def test_single_band_uint16_raster_with_nodata_and_a_geographic_crs(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, (1, 64, 64)).astype(np.uint16)
    data[0, :8] = 0
    image = write_raster(tmp_path / "pan.tif", data, crs="EPSG:4326", pixel=1e-5, origin=(12.0, 42.0), nodata=0)
    xy = [(12.0 + (c + 0.5) * 1e-5, 42.0 - (r + 0.5) * 1e-5) for r, c in [(20, 20), (40, 40), (2, 2)]]
    points = write_points(tmp_path / "p.gpkg", xy, [0, 1, 1], crs="EPSG:4326")
    run = run_engine("train", "--raster", image, "--points", points, "--classes", "a,b", "--out", tmp_path / "m", *TINY)
    assert run.code == 0, run.stderr
    assert run.of("result")[0]["points_dropped"] == {"outside": 0, "nodata": 1}
    assert any("1 on nodata" in e["message"] for e in run.of("log"))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["in_channels"] == 1


def test_training_flags_reach_the_training_options():
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    assert training_options(parser.parse_args([])) == TrainOptions()
    flags = ["--context-fraction", "0", "--no-expand-corrections", "--distill-batch-stats", "--expansion-region", "16",
             "--correction-region", "6"]  # fmt: skip
    changed = training_options(parser.parse_args(flags))
    assert (changed.context_fraction, changed.expand_corrections, changed.distill_batch_stats) == (0.0, False, True)
    assert (changed.expansion_region, changed.correction_region) == (16, 6) and TrainOptions().correction_region is None
    assert TrainOptions().context_fraction > 0 and TrainOptions().expand_corrections
