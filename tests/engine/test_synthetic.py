import json

import numpy as np
import pytest
import rasterio

from engine.manifest import read_label, read_manifest
from engine.synthetic import CLASSES, CRS, PIXEL_SIZE, make_scene, write_scene


def test_scene_is_seeded_and_holds_every_class():
    a, b, c = make_scene(384, seed=1), make_scene(384, seed=1), make_scene(384, seed=2)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert not np.array_equal(a.label, c.label)
    assert a.image.shape == (3, 384, 384) and a.image.dtype == np.uint8
    assert set(np.unique(a.label).tolist()) == set(range(len(CLASSES)))


def test_classes_look_different():
    scene = make_scene(512, seed=0)
    means = np.array([scene.image[:, scene.label == k].mean(axis=1) for k in range(len(CLASSES))])
    road, permeable = means[CLASSES.index("road")], means[CLASSES.index("permeable_area")]
    assert road.std() < 10 and road.mean() < 110  # grey asphalt
    assert permeable[1] > permeable[2]  # greenish / brown, not blue


def test_cars_on_roads_are_surrounded_by_road(tmp_path):
    scene = make_scene(512, seed=0)
    car = scene.label == CLASSES.index("car")
    ring = np.zeros_like(car)
    ring[1:-1, 1:-1] = (car[:-2, 1:-1] | car[2:, 1:-1] | car[1:-1, :-2] | car[1:-1, 2:])[:, :] & ~car[1:-1, 1:-1]
    neighbours = scene.label[ring]
    assert set(np.unique(neighbours).tolist()) <= {CLASSES.index("road"), CLASSES.index("background")}


@pytest.mark.parametrize("size,tile", [(256, 128), (384, 128)])
def test_write_scene_tiles_line_up_with_the_scene(tmp_path, size, tile):
    files = write_scene(tmp_path, size=size, seed=3, tile_size=tile, val_fraction=0.25)
    manifest = read_manifest(files.manifest)
    assert manifest.classes[1].name == "car" and len(manifest.items) == (size // tile) ** 2
    train, val = manifest.split()
    assert train and val and len(val) == int(np.ceil(len(manifest.items) * 0.25))
    with rasterio.open(files.image) as scene_ds:
        assert scene_ds.crs.to_string() == CRS and scene_ds.res == (PIXEL_SIZE, PIXEL_SIZE)
        for item in manifest.items:
            with rasterio.open(item.image) as ds:
                window = rasterio.windows.from_bounds(*ds.bounds, transform=scene_ds.transform)
                assert np.array_equal(ds.read(), scene_ds.read(window=window))
            _, valid = read_label(item, manifest)
            assert valid.all()
    assert json.loads(files.manifest.read_text())["label_ignore_value"] is None
