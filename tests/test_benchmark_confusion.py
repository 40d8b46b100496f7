"""benchmarks.confusion: the oracle-share fit, and the report on a model and a manifest."""

import json
import logging
import os
import re
from types import SimpleNamespace

import numpy as np

from benchmarks import confusion
from engine.class_shares import argmax_shares, fit_weights
from engine.classes import parse_classes
from engine.events import Events
from engine.forest import ForestOptions, save_forest, train_forest
from tests.fixtures import clicks_per_class, write_raster, write_scene


def _diffuse(seed: int = 0):
    """Probabilities over 3 classes that rank the pixels well but whose class-0 logit is biased down: its argmax
    share is far below its true 50%."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=(40, 40), p=[0.5, 0.25, 0.25])
    logits = rng.normal(0, 1, (3, 40, 40))
    logits[truth, np.arange(40)[:, None], np.arange(40)[None, :]] += 2.0
    logits[0] -= 1.5
    probs = np.exp(logits) / np.exp(logits).sum(0)
    return probs.astype(np.float32), truth


def test_share_factors_match_the_target_shares_and_raise_the_missed_class():
    probs, truth = _diffuse()
    mask = np.ones(truth.shape, bool)
    target = np.bincount(truth.ravel(), minlength=3) / truth.size
    before = argmax_shares([probs], [mask], np.ones(3))
    assert before[0] < target[0] - 0.1  # the case the fit is for
    factor = fit_weights([probs], [mask], target)
    after = argmax_shares([probs], [mask], factor)
    assert np.abs(after - target).sum() < 0.03
    assert factor[0] > max(factor[1], factor[2])


def test_share_factors_leave_matching_shares_alone():
    probs, _ = _diffuse()
    mask = np.ones(probs.shape[1:], bool)
    shares = argmax_shares([probs], [mask], np.ones(3))
    np.testing.assert_allclose(fit_weights([probs], [mask], shares), 1.0)


def test_stating_the_share_of_the_missed_class_scores_what_a_user_share_does():
    probs, truth = _diffuse()
    sample = SimpleNamespace(reference=truth, labelable=np.ones(truth.shape, bool))
    reference = np.bincount(truth.ravel(), minlength=3) / truth.size
    table = confusion.stated_shares([probs], [sample], reference, (0.75, 1.0))
    plain = confusion.one_class_weights([probs], [sample], (1.0,))[0, 0]
    assert table.shape == (3, 2)
    assert table[0, 1] > table[0, 0] > plain + 0.02  # class 0, biased down, gains most at its true share


def test_one_class_weights_score_what_a_user_weight_does():
    probs, truth = _diffuse()
    sample = SimpleNamespace(reference=truth, labelable=np.ones(truth.shape, bool))
    table = confusion.one_class_weights([probs], [sample], (0.5, 1.0, 2.0))
    assert table.shape == (3, 3)
    np.testing.assert_allclose(table[:, 1], table[0, 1])  # weight 1 is the model as it is, whichever the class
    assert table[0, 2] > table[0, 1] > table[0, 0]  # the class biased down gains from a weight above 1
    assert table[1, 0] > table[1, 1]  # and weighting another class down helps it too


def test_the_report_names_every_class_with_the_reference_shares(tmp_path, caplog):
    scene = write_scene(tmp_path, size=64, seed=0)
    write_raster(tmp_path / "label.tif", scene.label)
    manifest = tmp_path / "manifest.json"
    item = {"image": scene.image.name, "label": "label.tif"}
    manifest.write_text(json.dumps({"classes": ["background", "red", "blue"], "items": [
        {**item, "split": "train"}, {**item, "split": "val"}]}))  # fmt: skip
    classes = parse_classes("background,red,blue")
    clicks = clicks_per_class(scene.label, 5, seed=0)
    with open(os.devnull, "w") as sink:
        model, config = train_forest([scene.image], [clicks], [1, 2, 3], classes, ForestOptions(trees=10),
                                     Events("json", sink))  # fmt: skip
    save_forest(tmp_path / "model", model, config)
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        assert confusion.main(["--manifest", str(manifest), str(tmp_path / "model")]) == 0
    text = caplog.text
    miou = float(re.search(r"mIoU (\d\.\d+)", text).group(1))
    assert miou > 0.6  # three well separated classes: far above chance
    shares = [float(v) for v in re.search(r"reference share\s+(.*)", text).group(1).split()]
    np.testing.assert_allclose(shares, np.bincount(scene.label.ravel(), minlength=3) / scene.label.size, atol=1e-3)
    for name in ("background", "red", "blue"):
        assert re.search(rf"\s{name}\s+[\d. ]+$", text, re.M), name
    assert "oracle shares (upper bound)" in text and "one-class weights" in text and "share stated" in text


def test_a_missing_model_is_one_line_and_exit_2(tmp_path, caplog):
    scene = write_scene(tmp_path, size=32, seed=0)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"classes": ["a", "b", "c"], "items": [{"image": scene.image.name,
                                                                          "label": scene.image.name}]}))  # fmt: skip
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        assert confusion.main(["--manifest", str(manifest), str(tmp_path / "nothing")]) == 2
    assert "nothing" in caplog.text and "Traceback" not in caplog.text
