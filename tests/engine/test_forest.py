"""The random-forest baseline: compiled and numpy traversals against scikit-learn, training on a scene, the
pickle-free model directory, determinism, tiled prediction and the `train --model rf` command."""

import json
import pickle

import joblib
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from sklearn.ensemble import RandomForestClassifier

from engine import cancel
from engine.classes import parse_classes
from engine.cli import main
from engine.errors import Cancelled, InputError, InputFileError
from engine.events import Events
from engine.features import FeatureSettings
from engine.forest import (
    KIND,
    ForestOptions,
    fit_forest,
    float32_at_most,
    forest_probabilities,
    from_sklearn,
    load_forest,
    predict_proba,
    save_forest,
    train_forest,
)
from engine.models import load_model
from engine.points import PixelLabels
from engine.predict import predict_probabilities
from engine.raster_io import open_raster, read_window
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import settings as smoothing_settings
from engine.smoothing import smooth
from tests.fixtures import clicks_per_class, pixel_center, write_points

CLASSES = parse_classes("background,red,blue")
SMALL = FeatureSettings(sigma_min=1, sigma_max=4, num_sigma=3)


def _read(path):
    with open_raster(path) as ds:
        return read_window(ds, [1, 2, 3], 0, 0, ds.height, ds.width)


@pytest.fixture
def trained(scene):
    labels = clicks_per_class(scene.label, 5)
    model, config = train_forest([scene.image], [labels], [1, 2, 3], CLASSES, ForestOptions(trees=30), Events())
    return model, config, labels


def _sklearn_forest(seed=0, n=600, features=8, classes=(0, 1, 3), **kwargs):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] * x[:, 2]
    y = np.asarray(classes)[np.digitize(score, np.quantile(score, np.linspace(0, 1, len(classes) + 1)[1:-1]))]
    forest = RandomForestClassifier(n_estimators=25, random_state=seed, **kwargs).fit(x, y)
    return forest, x


def _model(forest, n_classes, traversal):
    """The forest's flat model, made to use the compiled trees or the numpy traversal."""
    model = from_sklearn(forest, n_classes)
    if traversal == "numpy":
        model.__dict__["compiled"] = None  # what a scikit-learn whose private layout changed gives
    else:
        assert model.compiled is not None
    return model


TRAVERSALS = ["compiled", "numpy"]


@pytest.mark.parametrize("traversal", TRAVERSALS)
@pytest.mark.parametrize("kwargs", [{}, {"max_depth": 3}, {"min_samples_leaf": 5, "bootstrap": False}])
def test_traversal_equals_sklearn_predict_proba(kwargs, traversal):
    forest, x_train = _sklearn_forest(**kwargs)
    model = _model(forest, 5, traversal)
    rng = np.random.default_rng(1)
    x_new = rng.normal(size=(5000, 8)).astype(np.float32)
    for x in (x_train, x_new):  # training pixels sit exactly on either side of the thresholds
        ours = predict_proba(model, x)
        theirs = forest.predict_proba(x)
        np.testing.assert_allclose(ours[:, forest.classes_], theirs, atol=1e-6)
        assert np.all(ours[:, [2, 4]] == 0)  # classes the forest never saw
        np.testing.assert_allclose(ours.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("traversal", TRAVERSALS)
def test_traversal_on_ties_equals_sklearn(traversal):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, (400, 5)).astype(np.float32) / 3  # few distinct values: many pixels on thresholds' sides
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    np.testing.assert_allclose(predict_proba(_model(forest, 2, traversal), x), forest.predict_proba(x), atol=1e-6)


def test_trees_split_over_threads_give_the_same_probabilities_and_bald():
    forest, x = _sklearn_forest(n=3000, min_samples_leaf=3)
    model = from_sklearn(forest, n_classes=5)
    probs, bald = predict_proba(model, x, bald=True, workers=1)
    for workers in (2, 3, 40):  # more workers than trees: one tree each
        threaded = predict_proba(model, x, bald=True, workers=workers)
        np.testing.assert_allclose(threaded[0], probs, atol=1e-6)
        np.testing.assert_allclose(threaded[1], bald, atol=1e-6)


def test_a_scikit_learn_that_cannot_rebuild_the_trees_falls_back_to_numpy(monkeypatch, caplog):
    import sklearn.tree._tree

    def changed(*args):
        raise TypeError("Tree() takes other arguments")

    monkeypatch.setattr(sklearn.tree._tree, "Tree", changed)
    forest, x = _sklearn_forest()
    model = from_sklearn(forest, n_classes=5)
    with caplog.at_level("WARNING"):
        probs = predict_proba(model, x)
    assert model.compiled is None and "numpy traversal" in caplog.text
    np.testing.assert_allclose(probs[:, forest.classes_], forest.predict_proba(x), atol=1e-6)


def test_float32_threshold_keeps_every_comparison():
    rng = np.random.default_rng(2)
    x = rng.normal(size=100_000).astype(np.float32)
    t = x.astype(np.float64) + rng.choice([-1e-9, 0.0, 1e-9, 1e-3], x.size)  # many just above or on a float32
    assert np.array_equal(x <= t, x <= float32_at_most(t))
    assert np.array_equal(x <= t[::-1], x <= float32_at_most(t[::-1]))


def test_training_beats_chance_on_unclicked_pixels(scene, trained):
    model, config, labels = trained
    image, valid = _read(scene.image)
    probs = forest_probabilities(model, config, image, valid)
    assert probs.shape == (3, *scene.label.shape) and probs.dtype == np.float32
    unclicked = np.ones(scene.label.shape, bool)
    unclicked[labels.rows, labels.cols] = False
    accuracy = (probs.argmax(0) == scene.label)[unclicked].mean()
    majority = np.bincount(scene.label.ravel()).max() / scene.label.size
    assert accuracy > 0.9 > majority + 0.15
    assert config.kind == KIND and config.features == FeatureSettings().to_dict()
    assert config.trained["points"] == 15 and config.trained["trees"] == 30


def test_save_load_round_trip_gives_identical_probabilities(tmp_path, scene, trained):
    model, config, _ = trained
    save_forest(tmp_path / "rf", model, config)
    loaded, loaded_config = load_forest(tmp_path / "rf")
    for name, array in model.tensors().items():
        assert np.array_equal(getattr(loaded, name), array), name
    assert loaded_config.to_dict() == config.to_dict()
    image, valid = _read(scene.image)
    np.testing.assert_array_equal(
        forest_probabilities(loaded, loaded_config, image, valid), forest_probabilities(model, config, image, valid)
    )


def test_model_dir_holds_no_pickle_and_loads_without_one(tmp_path, monkeypatch, trained):
    model, config, _ = trained
    save_forest(tmp_path / "rf", model, config)
    assert sorted(p.name for p in (tmp_path / "rf").iterdir()) == ["config.json", "weights.safetensors"]
    assert json.loads((tmp_path / "rf" / "config.json").read_text())["kind"] == "random_forest"
    assert set(load_file(str(tmp_path / "rf" / "weights.safetensors"))) == set(model.tensors())

    def refuse(*args, **kwargs):
        raise AssertionError("loading a forest must not unpickle anything")

    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (joblib, "load")]:
        monkeypatch.setattr(target, name, refuse)
    loaded, _ = load_forest(tmp_path / "rf")
    predict_proba(loaded, np.zeros((3, loaded.n_features), np.float32))


def test_network_loader_refuses_a_forest_and_forest_loader_a_damaged_dir(tmp_path, trained):
    model, config, _ = trained
    save_forest(tmp_path / "rf", model, config)
    with pytest.raises(InputError, match="random_forest"):
        load_model(tmp_path / "rf")
    weights = tmp_path / "rf" / "weights.safetensors"
    tensors = load_file(str(weights))
    tensors["children_left"][0] = model.n_nodes + 7  # points outside its tree
    save_file(tensors, str(weights))
    with pytest.raises(InputFileError, match="damaged"):
        load_forest(tmp_path / "rf")
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(InputFileError, match="damaged"):
        load_forest(tmp_path / "rf")


def test_same_seed_same_forest_other_seed_other_forest(scene):
    labels = clicks_per_class(scene.label, 4, seed=5)

    def fit(seed):
        options = ForestOptions(trees=12, features=SMALL, seed=seed, trees_per_step=5)
        return train_forest([scene.image], [labels], [1, 2, 3], CLASSES, options, Events())[0]

    first, again, other = fit(0), fit(0), fit(1)
    for name, array in first.tensors().items():
        assert np.array_equal(getattr(again, name), array), name
    assert not all(np.array_equal(getattr(other, n), a) for n, a in first.tensors().items() if n != "offsets")


def test_labels_weigh_in_the_fit_by_their_weight(scene):
    """Every clicked pixel labelled twice: its class as a click (weight 1) and the next class as a spread label
    (weight 0.3). The forest leans towards the heavier label at those pixels, and the other way with the weights
    swapped (unweighted, the two would tie)."""
    clicks = clicks_per_class(scene.label, 4, seed=2)
    rows, cols = np.tile(clicks.rows, 2), np.tile(clicks.cols, 2)
    classes = np.concatenate([clicks.classes, (clicks.classes + 1) % 3])
    index = np.arange(len(clicks))
    image, valid = _read(scene.image)
    options = ForestOptions(trees=100, features=SMALL, min_samples_leaf=2)

    def lean(click_weight, spread_weight):
        weights = np.repeat([click_weight, spread_weight], len(clicks)).astype(np.float32)
        labels = PixelLabels(rows, cols, classes, weights)
        model, config = train_forest([scene.image], [labels], [1, 2, 3], CLASSES, options, Events())
        probs = forest_probabilities(model, config, image, valid)[:, clicks.rows, clicks.cols]
        return float((probs[clicks.classes, index] - probs[(clicks.classes + 1) % 3, index]).mean())

    assert lean(1.0, 0.3) > 0.1
    assert lean(0.3, 1.0) < -0.1


def test_tiled_prediction_equals_one_tile_and_skips_invalid_pixels(scene, trained):
    model, config, _ = trained
    image, valid = _read(scene.image)
    valid[:10, :] = False
    whole = forest_probabilities(model, config, image, valid, tile=1024)
    tiled = forest_probabilities(model, config, image, valid, tile=40)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert np.all(whole[:, :10] == 0)
    np.testing.assert_allclose(whole[:, 10:].sum(axis=0), 1, atol=1e-5)


def test_training_stops_on_cancel(scene):
    cancel.request()
    try:
        with pytest.raises(Cancelled):
            labels = [clicks_per_class(scene.label, 2)]
            train_forest([scene.image], labels, [1, 2, 3], CLASSES, ForestOptions(), Events())
    finally:
        cancel.reset()


def test_training_without_labels_is_an_input_error(scene):
    with pytest.raises(InputError, match="no labelled pixel"):
        train_forest([scene.image], [PixelLabels()], [1, 2, 3], CLASSES, ForestOptions(), Events())


def test_train_command_with_model_rf_writes_a_forest(tmp_path, scene, capsys):
    labels = clicks_per_class(scene.label, 4)
    xy = [pixel_center(r, c) for r, c in zip(labels.rows, labels.cols, strict=True)]
    points = write_points(tmp_path / "points.gpkg", xy, [CLASSES[k].name for k in labels.classes])
    out = tmp_path / "model"
    code = main(["train", "--model", "rf", "--raster", str(scene.image), "--points", str(points), "--classes",
                 "background,red,blue", "--out", str(out), "--events", "json"])  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0, events[-1]
    result = events[-1]
    assert result["event"] == "result" and result["model"] == "rf" and result["points_used"] == 12
    assert result["trees"] == 100
    model, config = load_forest(out)
    assert config.trained["points"] == 12 and model.n_trees == 100
    assert any(e["event"] == "progress" and e["stage"] == "fit" for e in events)
    # smoothed over superpixels like the default (engine/smoothing.py); simulate's forest baseline is not
    assert config.trained[SMOOTHING_KEY] == smoothing_settings()
    image, valid = _read(scene.image)
    smoothed = predict_probabilities(model, config, image, valid, "cpu").probs
    raw = forest_probabilities(model, config, image, valid)
    np.testing.assert_allclose(smoothed, smooth(raw, image, valid, smoothing_settings()), atol=1e-5)
    assert np.abs(smoothed - raw).max() > 0.01
    code = main(["train", "--model", "rf", "--raster", str(scene.image), "--points", str(points), "--classes",
                 "background,red,blue", "--out", str(out), "--no-superpixel-smoothing"])  # fmt: skip
    assert code == 0 and SMOOTHING_KEY not in load_forest(out)[1].trained


def test_fitting_in_steps_grows_the_same_forest_as_one_fit():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1)
    stepped = fit_forest(x, y, ForestOptions(trees=9, trees_per_step=4, seed=3))
    whole = RandomForestClassifier(n_estimators=9, random_state=3).fit(x, y)
    for name, array in from_sklearn(whole, 3).tensors().items():
        assert np.array_equal(getattr(from_sklearn(stepped, 3), name), array), name


@pytest.mark.parametrize("traversal", TRAVERSALS)
def test_traversal_by_chunks_equals_one_chunk(monkeypatch, traversal):
    forest, x = _sklearn_forest(n=2000)
    model = _model(forest, 5, traversal)
    whole = predict_proba(model, x)
    monkeypatch.setattr("engine.forest.TRAVERSAL_ENTRIES", 25 * 300)  # 300 pixels a chunk, the last one shorter
    monkeypatch.setattr("engine.forest.COMPILED_CHUNK", 300)
    np.testing.assert_array_equal(predict_proba(model, x), whole)


def test_benchmark_miou_against_hand_computed_values():
    from benchmarks.bench_forest import confusion, iou_per_class, mean_iou

    truth = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    matrix = confusion(truth, pred, 4)
    assert matrix[:3, :3].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU: class 0: 1 / (2 + 2 - 1), class 1: 2 / (2 + 3 - 2), class 2: 1 / (2 + 1 - 1); class 3 absent
    np.testing.assert_allclose(iou_per_class(matrix)[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(iou_per_class(matrix)[3])
    assert mean_iou(matrix) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    masked = confusion(truth, pred, 4, mask=truth != 2)
    assert masked.sum() == 4
