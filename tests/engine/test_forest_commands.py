"""The random forest beyond `train`: BALD from its trees, and the forest model directory in `predict`, `suggest`
and `simulate --model rf`."""

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from engine.classes import parse_classes
from engine.cli import main
from engine.events import Events
from engine.forest import ForestOptions, forest_probabilities, from_sklearn, predict_proba, save_forest, train_forest
from engine.predictor import ForestInference, load_any, stride
from engine.raster_io import open_raster, read_window
from engine.synthetic import write_scene as write_manifest_scene
from tests.engine.test_forest import _sklearn_forest
from tests.fixtures import clicks_per_class

CLASSES = parse_classes("background,red,blue")


def _events(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def forest_dir(tmp_path, scene):
    labels = clicks_per_class(scene.label, 6)
    model, config = train_forest([scene.image], [labels], [1, 2, 3], CLASSES, ForestOptions(trees=20), Events())
    save_forest(tmp_path / "rf", model, config)
    return tmp_path / "rf"


def test_bald_of_the_trees_equals_the_hand_computed_mutual_information():
    forest, x = _sklearn_forest(n=400, min_samples_leaf=5)
    model = from_sklearn(forest, n_classes=5)
    probs, bald = predict_proba(model, x, bald=True)
    per_tree = np.zeros((len(forest.estimators_), len(x), 5))
    for t, tree in enumerate(forest.estimators_):
        per_tree[t][:, forest.classes_] = tree.predict_proba(x)

    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)

    expected = (entropy(per_tree.mean(0)) - entropy(per_tree).mean(0)) / np.log(5)
    np.testing.assert_allclose(probs, per_tree.mean(0), atol=1e-6)
    np.testing.assert_allclose(bald, expected, atol=1e-5)
    assert bald.max() > 0.05  # the trees disagree somewhere, so the test can tell BALD from zero


def test_predict_command_with_a_forest_matches_the_whole_image_prediction(tmp_path, scene, forest_dir, capsys):
    model, config = load_any(forest_dir)
    assert stride(model) == 1
    out = tmp_path / "pred"
    code = main(["predict", "--model", str(forest_dir), "--raster", str(scene.image), "--out", str(out),
                 "--tile-size", "64", "--overlap", "32", "--uncertainty", "bald", "--events", "json"])  # fmt: skip
    events = _events(capsys)
    assert code == 0, events[-1]
    with open_raster(scene.image) as ds:
        image, valid = read_window(ds, [1, 2, 3], 0, 0, ds.height, ds.width)
    expected, expected_bald = forest_probabilities(model, config, image, valid, bald=True)
    with rasterio.open(out / "prediction.tif") as ds:
        predicted = ds.read(1)
    with rasterio.open(out / "uncertainty.tif") as ds:
        uncertainty = ds.read(1)
    # tiles see their own surroundings only, and the blended overlaps hide the difference almost everywhere
    assert (predicted == expected.argmax(0)).mean() > 0.97
    assert (predicted == scene.label).mean() > 0.85
    assert np.corrcoef(uncertainty.ravel(), expected_bald.ravel())[0, 1] > 0.8


def test_padding_past_the_raster_edge_does_not_change_the_forest_near_the_edge(scene, forest_dir):
    """Windows read past a raster's edge (suggest reads a margin) are padded with invalid pixels; the features must
    see the raster continued, not zeros, or the edge looks uncertain and attracts every suggestion."""
    model, config = load_any(forest_dir)
    with open_raster(scene.image) as ds:
        image, valid = read_window(ds, [1, 2, 3], 0, 0, ds.height, ds.width)
        padded, padded_valid = read_window(ds, [1, 2, 3], -24, -24, ds.height + 48, ds.width + 48)
    assert not padded_valid[:24].any()
    probs, bald = forest_probabilities(model, config, image, valid, bald=True)
    pad_probs, pad_bald = forest_probabilities(model, config, padded, padded_valid, bald=True)
    core = (slice(24, -24), slice(24, -24))
    edge = np.zeros(valid.shape, bool)
    edge[:8], edge[-8:], edge[:, :8], edge[:, -8:] = True, True, True, True
    agree = pad_probs[(slice(None), *core)].argmax(0) == probs.argmax(0)
    assert agree[edge].mean() > 0.99  # 0.96 with zeros past the edge
    assert abs(pad_bald[core][edge].mean() - bald[edge].mean()) < 0.015  # 0.03 with zeros past the edge


def test_forest_inference_runs_a_batch_of_tiles(scene, forest_dir):
    model, config = load_any(forest_dir)
    with open_raster(scene.image) as ds:
        image, valid = read_window(ds, [1, 2, 3], 0, 0, 64, 64)
    tile = config.normalization.apply(image, valid)
    probs, bald = ForestInference(model, config, bald=True)(np.stack([tile, tile[:, ::-1].copy()]))
    assert probs.shape == (2, 3, 64, 64) and bald.shape == (2, 64, 64)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(probs[1], probs[0][:, ::-1], atol=1e-6)  # features of a flipped tile are flipped


def test_suggest_command_with_a_forest_writes_points_where_it_is_unsure(tmp_path, scene, forest_dir, capsys):
    out = tmp_path / "s.gpkg"
    code = main(["suggest", "--model", str(forest_dir), "--raster", str(scene.image), "--out", str(out),
                 "--strategy", "superpixel", "--budget", "5", "--superpixel-size", "16",
                 "--events", "json"])  # fmt: skip
    events = _events(capsys)
    assert code == 0, events[-1]
    points = gpd.read_file(out, layer="suggestions")
    assert 1 <= len(points) <= 5 and events[-1]["suggestions"] == len(points)


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_rf")
    return write_manifest_scene(folder, size=256, seed=1, tile_size=128, val_fraction=0.25).manifest


def _simulate(manifest, out, *extra) -> int:
    return main(["simulate", "--events", "json", "--manifest", str(manifest), "--out", str(out), "--iterations", "3",
                 "--tile-size", "128", "--overlap", "16", *extra])  # fmt: skip


def test_simulate_with_the_forest_refits_on_more_clicks_each_iteration(tmp_path, capsys, tiny_manifest):
    code = _simulate(tiny_manifest, tmp_path / "rf", "--model", "rf", "--strategy", "error,superpixel")
    events = _events(capsys)
    assert code == 0, events[-1]
    rows = json.loads((tmp_path / "rf" / "results.json").read_text())["rows"]
    error = [r for r in rows if r["strategy"] == "error"]
    assert [r["iteration"] for r in error] == [0, 1, 2]
    assert error[0]["labeled_pixels"] < error[1]["labeled_pixels"] < error[2]["labeled_pixels"]
    assert all(r["miou"] > 0.25 for r in rows)  # five classes: chance is far lower
    assert error[2]["miou"] > error[0]["miou"] + 0.1  # the error clicks teach it (0.33 -> 0.51 here)
    _, config = load_any(tmp_path / "rf" / "error" / "model")
    assert config.kind == "random_forest" and config.trained["points"] == error[2]["labeled_pixels"]


def test_simulate_forest_refuses_a_dense_run(tmp_path, capsys, tiny_manifest):
    code = _simulate(tiny_manifest, tmp_path / "x", "--model", "rf", "--dense")
    event = _events(capsys)[-1]
    assert code == 2 and event["field"] == "dense" and "--model rf" in event["message"]


@pytest.mark.slow
def test_simulate_dense_only_trains_the_reference_with_its_own_epochs(tmp_path, capsys, tiny_manifest):
    code = _simulate(tiny_manifest, tmp_path / "d", "--strategy", "dense", "--epochs", "1", "--dense-epochs", "2",
                     "--patch-size", "64", "--patches-per-epoch", "4", "--batch-size", "4")  # fmt: skip
    events = _events(capsys)
    assert code == 0, events[-1]
    summary = json.loads((tmp_path / "d" / "results.json").read_text())
    assert [r["strategy"] for r in summary["rows"]] == ["dense"]
    trained = json.loads((tmp_path / "d" / "dense" / "model" / "config.json").read_text())["trained"]
    assert trained["epochs"] == 2 and trained["loss"] == "ce"
