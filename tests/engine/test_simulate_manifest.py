import json

import numpy as np
import pytest

from engine.errors import InputError, InputFileError
from engine.manifest import read_label, read_manifest, read_seed_points
from tests.fixtures import write_raster


def _dataset(tmp_path, items, **extra):
    rng = np.random.default_rng(0)
    for name in {i["image"] for i in items}:
        write_raster(tmp_path / name, rng.integers(0, 255, (3, 16, 16), dtype=np.uint8))
    label = np.zeros((16, 16), np.uint8)
    label[:, 8:] = 1
    label[0, 0] = 255
    for name in {i["label"] for i in items}:
        write_raster(tmp_path / name, label)
    data = {"classes": ["background", "road"], "label_ignore_value": 255, "items": items, **extra}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    return path


def test_reads_items_splits_and_labels(tmp_path):
    items = [{"image": f"i{k}.tif", "label": f"l{k}.tif", "split": "val" if k == 2 else "train"} for k in range(3)]
    manifest = read_manifest(_dataset(tmp_path, items))
    train, val = manifest.split()
    assert [i.image.name for i in train] == ["i0.tif", "i1.tif"] and [i.image.name for i in val] == ["i2.tif"]
    label, valid = read_label(train[0], manifest)
    assert not valid[0, 0] and valid.sum() == 255 and label[5, 12] == 1


def test_without_a_val_split_a_seeded_share_is_held_out(tmp_path):
    items = [{"image": f"i{k}.tif", "label": "l.tif", "split": "all"} for k in range(10)]
    manifest = read_manifest(_dataset(tmp_path, items))
    train, val = manifest.split(val_fraction=0.2, seed=1)
    assert len(train) == 8 and len(val) == 2 and not set(train) & set(val)
    assert manifest.split(val_fraction=0.2, seed=1) == (train, val)
    assert manifest.split(val_fraction=0) == (manifest.items, manifest.items)


def test_seed_points_nodata_is_unlabelled(tmp_path):
    items = [{"image": "i.tif", "label": "l.tif", "split": "train", "seed_points": "s.tif"}]
    path = _dataset(tmp_path, items)
    seeds = np.full((16, 16), 5, np.uint8)
    seeds[2, 3], seeds[10, 12] = 0, 1
    write_raster(tmp_path / "s.tif", seeds, nodata=5)
    manifest = read_manifest(path)
    points = read_seed_points(manifest.items[0], manifest)
    assert list(zip(points.rows, points.cols, points.classes, strict=True)) == [(2, 3, 0), (10, 12, 1)]


def test_bad_manifests_name_the_problem(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        read_manifest(tmp_path / "missing.json")
    path = _dataset(tmp_path, [{"image": "i.tif", "label": "nope.tif"}])
    (tmp_path / "nope.tif").unlink()
    with pytest.raises(InputFileError, match=r"nope\.tif"):
        read_manifest(path)
    (tmp_path / "bad.json").write_text(json.dumps({"items": []}))
    with pytest.raises(InputError, match="classes and items"):
        read_manifest(tmp_path / "bad.json")


def test_label_values_outside_the_classes_are_an_error(tmp_path):
    path = _dataset(tmp_path, [{"image": "i.tif", "label": "l.tif"}])
    write_raster(tmp_path / "l.tif", np.full((16, 16), 7, np.uint8))
    manifest = read_manifest(path)
    with pytest.raises(InputFileError, match=r"value\(s\) \[7\]"):
        read_label(manifest.items[0], manifest)
