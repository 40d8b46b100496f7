"""The demo's QGIS project opens every layer with its style in Debian's QGIS (run in its own Python process, so
that rasterio's GDAL never meets QGIS's)."""

import json
import subprocess

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from engine.classes import parse_classes
from engine.qgis_project import Layer, write_project
from engine.synthetic import CRS, transform_of, write_geotiff

QGIS_PYTHON = "/usr/bin/python3"

CHECK = r"""
import json, sys
from qgis.core import QgsApplication, QgsProject
app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
ok = project.read(sys.argv[1])
layers = {}
for layer in project.mapLayers().values():
    renderer = layer.renderer()
    layers[layer.name()] = {"valid": layer.isValid(), "crs": layer.crs().authid(),
                            "renderer": renderer.type() if renderer else None, "features":
                            layer.featureCount() if hasattr(layer, "featureCount") else None}
    if renderer is not None and renderer.type() == "paletted":
        layers[layer.name()]["labels"] = [c.label for c in renderer.classes()]
    if renderer is not None and renderer.type() == "categorizedSymbol":
        layers[layer.name()]["labels"] = [c.label() for c in renderer.categories()]
print(json.dumps({"read": ok, "crs": project.crs().authid(), "layers": layers}))
app.exitQgis()
"""


def _qgis_available() -> bool:
    try:
        return subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.qgis
@pytest.mark.skipif(not _qgis_available(), reason="QGIS's Python bindings are not installed")
def test_demo_project_layers_are_valid_with_their_styles(tmp_path):
    classes = parse_classes("background,car,road,building,permeable_area")
    rng = np.random.default_rng(0)
    write_geotiff(tmp_path / "scene.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), transform_of())
    write_geotiff(tmp_path / "prediction.tif", rng.integers(0, 5, (64, 64), dtype=np.uint8), transform_of())
    write_geotiff(tmp_path / "uncertainty.tif", rng.random((64, 64)).astype(np.float32), transform_of())
    x0, y0 = transform_of() * (10, 10)
    points = gpd.GeoDataFrame(
        {"class": ["car", "road"], "iteration": [0, 1]}, geometry=[Point(x0, y0), Point(x0 + 3, y0 - 3)], crs=CRS
    )
    points.to_file(tmp_path / "points.gpkg", layer="points")
    gpd.GeoDataFrame({"score": [0.9]}, geometry=[Point(x0, y0)], crs=CRS).to_file(
        tmp_path / "suggestions.gpkg", layer="suggestions"
    )
    polygons = [box(x0, y0 - 2, x0 + 2, y0), box(x0 + 4, y0 - 2, x0 + 6, y0)]
    frame = gpd.GeoDataFrame({"score": [0.9, 0.5], "suggested": [True, False]}, geometry=polygons, crs=CRS)
    frame.to_file(tmp_path / "suggestions.gpkg", layer="superpixels")
    layers = [
        Layer("suggestions", tmp_path / "suggestions.gpkg", "marker", layer_name="suggestions"),
        Layer("points", tmp_path / "points.gpkg", "categorized", layer_name="points", classes=classes),
        Layer(
            "superpixels", tmp_path / "suggestions.gpkg", "outline", layer_name="superpixels", subset='"suggested" = 1'
        ),
        Layer("prediction", tmp_path / "prediction.tif", "paletted", classes=classes),
        Layer("uncertainty", tmp_path / "uncertainty.tif", "ramp"),
        Layer("scene", tmp_path / "scene.tif", "rgb"),
    ]
    project = write_project(tmp_path / "demo.qgs", "test", CRS, (0, 0, 1, 1), layers)
    done = subprocess.run(
        [QGIS_PYTHON, "-c", CHECK, str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["read"] and report["crs"] == CRS
    got = report["layers"]
    assert set(got) == {layer.name for layer in layers}
    assert all(info["valid"] for info in got.values()), got
    assert got["prediction"]["renderer"] == "paletted" and got["prediction"]["labels"] == [c.name for c in classes]
    assert got["uncertainty"]["renderer"] == "singlebandpseudocolor"
    assert got["scene"]["renderer"] == "multibandcolor"
    assert got["points"]["renderer"] == "categorizedSymbol" and got["points"]["features"] == 2
    assert got["points"]["labels"] == [c.name for c in classes]
    assert got["suggestions"]["renderer"] == "singleSymbol" and got["superpixels"]["features"] == 1
