import json

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import torch

from engine.classes import parse_classes
from engine.cli import main
from engine.models import ModelConfig, build_network, save_model
from engine.normalization import Normalization
from tests.fixtures import write_points, write_raster


@pytest.fixture
def model_dir(tmp_path):
    """An untrained (seeded) tiny network: suggestions need a model, not a good one."""
    torch.manual_seed(0)
    network = build_network("Unet", "resnet18", 3, 3)
    norm = Normalization([0.0] * 3, [255.0] * 3, [128.0] * 3, [64.0] * 3)
    config = ModelConfig("Unet", "resnet18", 3, [1, 2, 3], norm, parse_classes("background,car,road"), 64)
    save_model(tmp_path / "model", network, config)
    return tmp_path / "model"


@pytest.fixture
def big_raster(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (3, 150, 200), dtype=np.uint8)
    data[:, 40:90, 60:140] = 30  # a dark block: a change of texture the network reacts to
    return write_raster(tmp_path / "big.tif", data, crs="EPSG:31983", pixel=0.5)


def _run(capsys, *argv) -> dict:
    code = main(["suggest", "--events", "json", "--device", "cpu", *map(str, argv)])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, events[-1]
    return events[-1]


@pytest.mark.parametrize("strategy", ["entropy", "margin", "random"])
def test_writes_points_in_the_raster_crs_within_budget_and_spacing(tmp_path, capsys, model_dir, big_raster, strategy):
    out = tmp_path / "s.gpkg"
    result = _run(
        capsys,
        "--model",
        model_dir,
        "--raster",
        big_raster,
        "--out",
        out,
        "--strategy",
        strategy,
        "--budget",
        25,
        "--min-distance",
        12,
        "--window-size",
        64,
        "--tile-size",
        64,
        "--overlap",
        16,
        "--iteration",
        3,
    )
    assert result["event"] == "result" and result["suggestions"] == 25 and result["windows"] == 12
    assert [name for name, _ in pyogrio.list_layers(out)] == ["suggestions"]
    points = gpd.read_file(out, layer="suggestions")
    assert len(points) == 25
    assert points.crs.to_epsg() == 31983
    assert {"score", "strategy", "predicted_class", "iteration", "rank"} <= set(points.columns)
    assert set(points.strategy) == {strategy} and set(points.iteration) == {3}
    assert set(points.predicted_class) <= {"background", "car", "road"}
    with rasterio.open(big_raster) as ds:
        left, bottom, right, top = ds.bounds
    assert points.geometry.x.between(left, right).all() and points.geometry.y.between(bottom, top).all()
    xy = np.stack([points.geometry.x, points.geometry.y], 1) / 0.5  # in pixels
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 12 - 1e-6  # across the 64-pixel windows too
    assert points.score.is_monotonic_decreasing


def test_superpixel_writes_both_layers(tmp_path, capsys, model_dir, big_raster):
    out = tmp_path / "sp.gpkg"
    result = _run(
        capsys,
        "--model",
        model_dir,
        "--raster",
        big_raster,
        "--out",
        out,
        "--strategy",
        "superpixel",
        "--budget",
        10,
        "--mc-samples",
        2,
        "--superpixel-size",
        12,
        "--tile-size",
        64,
        "--overlap",
        16,
    )
    assert sorted([name for name, _ in pyogrio.list_layers(out)]) == ["suggestions", "superpixels"]
    points = gpd.read_file(out, layer="suggestions")
    polygons = gpd.read_file(out, layer="superpixels")
    assert 1 <= len(points) <= 10 and result["suggestions"] == len(points)
    assert polygons.crs.to_epsg() == 31983 and len(polygons) >= len(points)
    suggested = polygons[polygons.suggested.astype(bool)]
    # every point lies inside a suggested superpixel of the same id
    for point in points.geometry:
        assert suggested.contains(point).sum() >= 1


def test_points_already_clicked_are_not_suggested(tmp_path, capsys, model_dir):
    raster = write_raster(tmp_path / "r.tif", np.full((3, 64, 64), 100, np.uint8))  # flat: every score ties
    clicked = write_points(tmp_path / "p.gpkg", [(500_000.5, 4_650_000 - 0.5)], ["road"])  # pixel (0, 0)
    out = tmp_path / "s.gpkg"
    _run(
        capsys,
        "--model",
        model_dir,
        "--raster",
        raster,
        "--out",
        out,
        "--strategy",
        "entropy",
        "--budget",
        1,
        "--min-distance",
        0,
        "--tile-size",
        64,
        "--overlap",
        0,
        "--points",
        clicked,
    )
    point = gpd.read_file(out).geometry.iloc[0]
    assert (point.x, point.y) != (500_000.5, 4_650_000 - 0.5)


def test_bad_options_are_one_line_errors(tmp_path, capsys, model_dir, big_raster):
    code = main(
        [
            "suggest",
            "--events",
            "json",
            "--model",
            str(model_dir),
            "--raster",
            str(big_raster),
            "--out",
            str(tmp_path / "x.gpkg"),
            "--budget",
            "0",
        ]
    )
    event = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and event["field"] == "budget"
    assert not (tmp_path / "x.gpkg").exists()
