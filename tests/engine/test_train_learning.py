"""Training from a few points learns: IoU on the pixels nobody clicked is well above chance. CPU runs repeat."""

import numpy as np
import pytest
import rasterio
import torch

from engine.classes import parse_classes
from engine.events import Events
from engine.points import PixelLabels
from engine.train import TrainOptions, train

CLASSES = parse_classes("background,red,blue")


def _labels(label: np.ndarray, per_class: int, seed: int) -> PixelLabels:
    rng = np.random.default_rng(seed)
    rows, cols, classes = [], [], []
    for c in range(3):
        r, cc = np.nonzero(label == c)
        pick = rng.choice(len(r), per_class, replace=False)
        rows += r[pick].tolist()
        cols += cc[pick].tolist()
        classes += [c] * per_class
    return PixelLabels(np.array(rows), np.array(cols), np.array(classes))


def _predict(result, image_path) -> np.ndarray:
    with rasterio.open(image_path) as ds:
        data = ds.read().astype(np.float32)
    x = torch.from_numpy(result.config.normalization.apply(data))[None]
    with torch.no_grad():
        return result.network(x)[0].argmax(0).numpy()


def _miou(pred: np.ndarray, label: np.ndarray, keep: np.ndarray) -> float:
    ious = []
    for c in range(3):
        p, t = (pred == c) & keep, (label == c) & keep
        ious.append((p & t).sum() / max(1, (p | t).sum()))
    return float(np.mean(ious))


@pytest.mark.slow
@pytest.mark.parametrize("cpu_bf16", ["0", "1"])  # float32, and bf16 autocast (the default on native-bf16 CPUs)
def test_a_few_points_per_class_give_iou_well_above_chance(scene, monkeypatch, cpu_bf16):
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", cpu_bf16)
    labels = _labels(scene.label, per_class=5, seed=0)
    options = TrainOptions(epochs=12, batch_size=4, patch_size=64, patches_per_epoch=16, seed=0)
    result = train([scene.image], [labels], [1, 2, 3], CLASSES, options, torch.device("cpu"), Events("text"))
    unclicked = np.ones_like(scene.label, bool)
    unclicked[labels.rows, labels.cols] = False
    miou = _miou(_predict(result, scene.image), scene.label, unclicked)
    # Chance (uniform guessing) scores about 0.2 here; predicting one class everywhere about 0.2 too.
    assert miou > 0.6, miou


@pytest.mark.slow
def test_training_on_the_cpu_is_deterministic_for_a_seed(scene):
    labels = _labels(scene.label, per_class=3, seed=1)
    options = TrainOptions(epochs=1, batch_size=2, patch_size=64, patches_per_epoch=4, seed=7)
    runs = [
        train([scene.image], [labels], [1, 2, 3], CLASSES, options, torch.device("cpu"), Events("text"))
        for _ in range(2)
    ]
    first, second = (r.network.state_dict() for r in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    for change in ({"seed": 8}, {"jitter": 0.2}):  # another seed, or colour jitter, trains another network
        other = train([scene.image], [labels], [1, 2, 3], CLASSES, TrainOptions(**{**options.__dict__, **change}),
                      torch.device("cpu"), Events("text"))  # fmt: skip
        assert not all(torch.equal(first[k], other.network.state_dict()[k]) for k in first), change


def _parameters(network) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in network.named_parameters()}


def _largest_change(before: dict[str, torch.Tensor], network) -> float:
    return max(float((p.detach() - before[name]).abs().max()) for name, p in network.named_parameters())


@pytest.mark.slow
def test_a_warm_start_trains_at_the_warm_learning_rate_and_a_fresh_model_at_lr(scene, tmp_path):
    labels = _labels(scene.label, per_class=3, seed=2)
    small = {"epochs": 1, "batch_size": 2, "patch_size": 64, "patches_per_epoch": 4, "seed": 3,
             "forest_ensemble": False, "prior_correction": False}  # fmt: skip

    def run(init=None, **options):
        out = tmp_path / "first" if init is None else None
        return train([scene.image], [labels], [1, 2, 3], CLASSES, TrainOptions(**{**small, **options}),
                     torch.device("cpu"), Events("text"), init, out)  # fmt: skip

    first = run()
    before = _parameters(first.network)
    assert _largest_change(before, run(tmp_path / "first", warm_lr=None).network) > 1e-4  # at lr, 1e-3
    assert _largest_change(before, run(tmp_path / "first", warm_lr=1e-9).network) < 1e-6
    fresh = run(warm_lr=1e-9)  # no --init: the warm learning rate does not apply
    assert _largest_change(before, fresh.network) == 0.0
