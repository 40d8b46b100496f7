"""`make demo` end to end on a tiny scene: every file the QGIS project opens is written."""

import csv
import xml.etree.ElementTree as ET

import geopandas as gpd
import pytest
import rasterio

from engine.demo import main


@pytest.mark.slow
@pytest.mark.parametrize("model", [[], ["--forest-ensemble"]], ids=["network", "hybrid"])
def test_demo_writes_every_layer_of_its_project(tmp_path, model):
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--size", "256", "--tile-size", "128", "--iterations", "2", "--epochs", "1",
            "--patches-per-epoch", "16", "--budget", "5", "--device", "cpu", *model]  # fmt: skip
    assert main(argv) == 0
    assert (out / "simulation" / "error" / "model" / "forest").exists() == bool(model)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["iteration"] for r in rows] == ["0", "1"]
    with rasterio.open(out / "prediction.tif") as pred, rasterio.open(out / "scene.tif") as scene:
        assert pred.crs == scene.crs and pred.transform == scene.transform and pred.shape == scene.shape
        assert pred.read(1).max() < 5
    with rasterio.open(out / "uncertainty.tif") as unc:
        values = unc.read(1, masked=True)
        assert values.min() >= 0 and values.max() <= 1
    assert len(gpd.read_file(out / "points.gpkg")) == int(rows[-1]["clicks"])
    assert 1 <= len(gpd.read_file(out / "suggestions.gpkg", layer="suggestions")) <= 5
    project = ET.parse(out / "demo.qgs").getroot()
    sources = [layer.findtext("datasource") for layer in project.iter("maplayer")]
    assert len(sources) == 7
    for source in sources:
        assert source.startswith("./")  # relative: the demo folder can be moved
        assert (out / source.split("|")[0]).exists()
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
