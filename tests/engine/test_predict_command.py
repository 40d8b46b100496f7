"""`python -m engine predict` end to end on generated rasters with an untrained (saved) network."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from engine.classes import parse_classes
from engine.cli import main
from engine.models import ModelConfig, build_network, save_model
from engine.normalization import Normalization
from engine.predict import predict_probabilities
from tests.fixtures import ORIGIN, write_raster

CLASSES = "background,car:#ff0000,road:#00ff00"
REPO = Path(__file__).resolve().parents[2]


def _save(path: Path, bands: int = 3) -> Path:
    torch.manual_seed(0)
    network = build_network("Unet", "resnet18", bands, 3)
    norm = Normalization([0.0] * bands, [255.0] * bands, [128.0] * bands, [64.0] * bands)
    save_model(path, network, ModelConfig("Unet", "resnet18", bands, list(range(1, bands + 1)), norm,
                                          parse_classes(CLASSES)))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("model") / "model")


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(1, 255, (3, height, width), dtype=np.uint8)
    image[:, :20, :30] = 0  # a nodata corner
    return image


def run(capsys, *argv) -> tuple[int, list[dict]]:
    code = main(["predict", "--events", "json", *map(str, argv)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, lines


def _one(events: list[dict], kind: str) -> dict:
    found = [e for e in events if e["event"] == kind]
    assert len(found) == 1, events
    return found[0]


def test_outputs_on_the_input_grid_with_nodata_colours_and_names(tmp_path, model, capsys):
    raster = write_raster(tmp_path / "r.tif", _image(260, 300), nodata=0)
    out = tmp_path / "out"
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", out, "--tile-size", 128,
                       "--overlap", 32, "--probabilities")  # fmt: skip
    assert code == 0, [e.get("message") for e in events if e["event"] == "error"]
    result = _one(events, "result")
    assert sorted(p.name for p in out.iterdir()) == ["prediction.tif", "probabilities.tif", "uncertainty.tif"]
    with rasterio.open(raster) as src:
        nodata = ~np.all(src.read_masks() > 0, axis=0)
        grid = (src.crs, src.transform, src.width, src.height)
    assert nodata[:20, :30].all() and nodata.sum() < 1000
    for name in ("prediction", "uncertainty", "probabilities"):
        with rasterio.open(out / f"{name}.tif") as ds:
            assert (ds.crs, ds.transform, ds.width, ds.height) == grid
            assert ds.profile["tiled"] and ds.compression.name == "deflate"
            assert ds.overviews(1) == [2]
    with rasterio.open(out / "prediction.tif") as ds:
        pred = ds.read(1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 255
        cmap = ds.colormap(1)
        assert cmap[0][:3] == (0xB0, 0xB0, 0xB0) and cmap[1][:3] == (255, 0, 0) and cmap[2][:3] == (0, 255, 0)
        assert json.loads(ds.tags()["CLASS_NAMES"]) == ["background", "car", "road"]
        assert ds.tags()["CLASS_1"] == "car" and ds.descriptions == ("class",)
    assert (pred[nodata] == 255).all() and (pred[~nodata] < 3).all()
    with rasterio.open(out / "uncertainty.tif") as ds:
        unc = ds.read(1)
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata) and ds.tags()["UNCERTAINTY"] == "entropy"
    assert np.isnan(unc[nodata]).all() and unc[~nodata].min() >= 0 and unc[~nodata].max() <= 1
    with rasterio.open(out / "probabilities.tif") as ds:
        probs = ds.read()
        assert ds.descriptions == ("background", "car", "road")
    np.testing.assert_allclose(probs[:, ~nodata].sum(0), 1.0, atol=1e-4)
    assert np.isnan(probs[:, nodata]).all()
    assert (probs.argmax(0)[~nodata] == pred[~nodata]).all()
    assert result["valid_pixels"] == int((~nodata).sum())
    assert sum(result["class_pixels"].values()) == result["valid_pixels"]
    assert [e["fraction"] for e in events if e["event"] == "progress"][-1] == 1.0


def test_raster_prediction_equals_the_in_memory_prediction(tmp_path, model, capsys):
    """Windowed reading, blending and block writing of the command match predict_probabilities on the array."""
    image = _image(150, 170, seed=3)
    raster = write_raster(tmp_path / "r.tif", image, nodata=0)
    code, _ = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out", "--tile-size", 64,
                  "--overlap", 16, "--probabilities")  # fmt: skip
    assert code == 0
    from engine.models import load_model

    network, config = load_model(model)
    valid = np.all(image > 0, axis=0)
    expected = predict_probabilities(network, config, image.astype(np.float32), valid, "cpu", tile_size=64,
                                     overlap=16).probs  # fmt: skip
    with rasterio.open(tmp_path / "out" / "probabilities.tif") as ds:
        probs = ds.read()
    np.testing.assert_allclose(probs[:, valid], expected[:, valid], atol=1e-4)


def test_bbox_in_another_crs_predicts_that_window(tmp_path, model, capsys):
    from rasterio.warp import transform_bounds

    raster = write_raster(tmp_path / "r.tif", _image(200, 200))
    # rows 50..130, cols 40..160, 0.3 px inside the pixel edges, given in longitude/latitude
    utm = (ORIGIN[0] + 40.3, ORIGIN[1] - 129.7, ORIGIN[0] + 159.7, ORIGIN[1] - 50.3)
    lonlat = transform_bounds("EPSG:32633", "EPSG:4326", *utm)
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out", "--tile-size", 64,
                       "--bbox", ",".join(f"{v:.10f}" for v in lonlat) + ",EPSG:4326")  # fmt: skip
    assert code == 0, [e.get("message") for e in events if e["event"] == "error"]
    assert _one(events, "result")["window"] == {"col_off": 40, "row_off": 50, "width": 120, "height": 80}
    with rasterio.open(raster) as src, rasterio.open(tmp_path / "out" / "prediction.tif") as ds:
        assert (ds.width, ds.height) == (120, 80)
        assert ds.transform == src.window_transform(rasterio.windows.Window(40, 50, 120, 80))
        assert ds.crs == src.crs


def test_aoi_outside_the_polygon_is_nodata(tmp_path, model, capsys):
    import geopandas as gpd
    from shapely.geometry import Polygon

    raster = write_raster(tmp_path / "r.tif", _image(128, 128))
    x0, y0 = ORIGIN
    triangle = Polygon([(x0 + 20, y0 - 20), (x0 + 100, y0 - 20), (x0 + 20, y0 - 100)])  # pixels 20..100
    aoi = gpd.GeoDataFrame(geometry=[triangle], crs="EPSG:32633")
    aoi.to_file(tmp_path / "aoi.gpkg")
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out", "--tile-size", 64,
                       "--aoi", tmp_path / "aoi.gpkg")  # fmt: skip
    assert code == 0, [e.get("message") for e in events if e["event"] == "error"]
    with rasterio.open(tmp_path / "out" / "prediction.tif") as ds:
        pred = ds.read(1)
        assert (ds.width, ds.height) == (80, 80)
        assert ds.transform.c == x0 + 20 and ds.transform.f == y0 - 20
    rows, cols = np.mgrid[0:80, 0:80]
    inside, outside = rows + cols < 79, rows + cols > 79  # pixel centres under / above the hypotenuse (not on it)
    assert (pred[inside] < 3).all() and (pred[outside] == 255).all()


def test_cog_margin_and_tiny_raster(tmp_path, model, capsys):
    raster = write_raster(tmp_path / "r.tif", np.full((3, 13, 20), 100, np.uint8))
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out", "--cog",
                       "--uncertainty", "margin")  # fmt: skip
    assert code == 0, [e.get("message") for e in events if e["event"] == "error"]
    assert _one(events, "result")["tiles"] == 1
    for name in ("prediction", "uncertainty"):
        with rasterio.open(tmp_path / "out" / f"{name}.tif") as ds:
            assert (ds.width, ds.height) == (20, 13)
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    with rasterio.open(tmp_path / "out" / "uncertainty.tif") as ds:
        unc = ds.read(1)
        assert ds.tags()["UNCERTAINTY"] == "margin"
    with rasterio.open(tmp_path / "out" / "prediction.tif") as ds:
        assert ds.colormap(1)[1][:3] == (255, 0, 0)
    assert np.isfinite(unc).all() and unc.min() >= 0 and unc.max() <= 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["prediction.tif", "uncertainty.tif"]


def test_bald_uncertainty_from_mc_dropout_with_a_job_file(tmp_path, model, capsys):
    raster = write_raster(tmp_path / "r.tif", _image(96, 96))
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"model": str(model), "raster": str(raster), "out": str(tmp_path / "out"),
                               "uncertainty": "bald", "mc_samples": 4, "tile_size": 64, "overlap": 16}))  # fmt: skip
    code, events = run(capsys, "--job", job)
    assert code == 0, [e.get("message") for e in events if e["event"] == "error"]
    assert _one(events, "result")["uncertainty_method"] == "bald"
    with rasterio.open(tmp_path / "out" / "uncertainty.tif") as ds:
        unc = ds.read(1)
        assert ds.tags()["UNCERTAINTY"] == "bald"
    valid = ~np.isnan(unc)
    assert valid.sum() > 0.9 * unc.size and unc[valid].min() >= 0 and unc[valid].max() <= 1
    assert unc[valid].mean() > 0.001  # dropout before the head does vary the prediction


def _assert_one_error(code: int, events: list[dict], field: str, text: str) -> None:
    assert code == 2, events
    error = _one(events, "error")
    assert error["field"] == field and text in error["message"], error
    assert events[-1] is error and not [e for e in events if e["event"] == "result"]


def test_model_for_another_band_count_is_refused(tmp_path, capsys):
    model4 = _save(tmp_path / "model4", bands=4)
    raster = write_raster(tmp_path / "r.tif", _image(64, 64))
    code, events = run(capsys, "--model", model4, "--raster", raster, "--out", tmp_path / "out")
    _assert_one_error(code, events, "raster", "has 3 band(s)")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bbox_outside_the_raster_is_refused(tmp_path, model, capsys):
    raster = write_raster(tmp_path / "r.tif", _image(64, 64))
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out",
                       "--bbox", "0,0,10,10")  # fmt: skip
    _assert_one_error(code, events, "bbox", "outside the raster")


def test_unreadable_raster_is_refused(tmp_path, model, capsys):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 this is not really a tiff" * 10)
    code, events = run(capsys, "--model", model, "--raster", bad, "--out", tmp_path / "out")
    _assert_one_error(code, events, "raster", "not a raster GDAL can read")
    assert _one(events, "error")["code"] == "bad_file"


@pytest.mark.parametrize(
    ("options", "field"),
    [(["--tile-size", "100"], "tile_size"), (["--overlap", "300"], "overlap"), (["--batch-size", "0"], "batch_size")],
)
def test_bad_numbers_are_refused(tmp_path, model, capsys, options, field):
    raster = write_raster(tmp_path / "r.tif", _image(64, 64))
    code, events = run(capsys, "--model", model, "--raster", raster, "--out", tmp_path / "out", *options)
    _assert_one_error(code, events, field, f"--{field.replace('_', '-')}")


@pytest.mark.slow
def test_sigterm_leaves_no_partial_output_and_keeps_the_previous_one(tmp_path, model):
    raster = write_raster(tmp_path / "r.tif", _image(1024, 1024))
    out = tmp_path / "out"
    out.mkdir()
    (out / "prediction.tif").write_bytes(b"previous")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "predict", "--model", str(model), "--raster", str(raster), "--out", str(out),
         "--tile-size", "64", "--overlap", "16", "--batch-size", "1", "--events", "json", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    events = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "progress" or time.monotonic() > deadline:
            break
    assert events[-1]["event"] == "progress", events
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    events += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert proc.returncode == 130
    assert _one(events, "error")["code"] == "cancelled"
    assert not [e for e in events if e["event"] == "result"]
    assert sorted(p.name for p in out.iterdir()) == ["prediction.tif"]  # no temporary or new file left
    assert (out / "prediction.tif").read_bytes() == b"previous"
