"""The average of a network's weights over its last steps: the arithmetic, the warm-up, and a training that saves it."""

import numpy as np
import pytest
import rasterio
import torch

from engine.events import Events
from engine.weight_average import WeightAverage


def _filled(network: torch.nn.Module, value: float) -> torch.nn.Module:
    with torch.no_grad():
        for p in network.parameters():
            p.fill_(value)
    return network


def test_the_decay_makes_the_window_a_share_of_the_run():
    assert WeightAverage(torch.nn.Linear(2, 2), 0.25, 400).decay == pytest.approx(1 - 1 / 100)
    assert WeightAverage(torch.nn.Linear(2, 2), 0.5, 1).decay == 0.0  # a window under one step keeps the last


def test_each_step_moves_the_average_toward_the_weights_by_one_minus_the_decay_after_the_warm_up():
    network = _filled(torch.nn.Linear(3, 2), 0.0)
    average = WeightAverage(network, 0.25, 40)  # decay 0.9
    expected = 0.0
    for step in range(30):
        _filled(network, float(step + 1))
        average.update(network)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * (step + 1)
    assert float(average.state["weight"][0, 0]) == pytest.approx(expected, rel=1e-5)
    # the first update kept a tenth of the starting weights, and the average trails the last weights (30)
    assert 25 < expected < 30


def test_copying_gives_the_averaged_weights_and_batch_norm_statistics_and_keeps_the_counter():
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2)).train()
    average = WeightAverage(network, 0.5, 20)
    before = network[1].running_mean.clone()
    for _ in range(5):
        network(torch.randn(4, 1, 3, 3) + 3)
        average.update(network)
    averaged_mean = average.state["1.running_mean"].clone()
    network[1].num_batches_tracked.fill_(5)
    average.copy_to(network)
    assert torch.equal(network[1].running_mean, averaged_mean)
    assert not torch.equal(averaged_mean, before)
    assert int(network[1].num_batches_tracked) == 5
    assert "1.num_batches_tracked" not in average.state


@pytest.mark.slow
def test_a_training_that_averages_saves_other_weights_that_still_predict_the_clicks(scene):
    from engine.classes import parse_classes
    from engine.train import TrainOptions, train
    from tests.fixtures import clicks_per_class

    labels = clicks_per_class(scene.label, 5)
    runs = []
    for window in (0.0, 0.5):
        options = TrainOptions(epochs=6, batch_size=4, patch_size=64, patches_per_epoch=16, weight_average=window,
                               forest_ensemble=False, prior_correction=False, expand_clicks=False)  # fmt: skip
        runs.append(train([scene.image], [labels], [1, 2, 3], parse_classes("a,b,c"), options, torch.device("cpu"),
                          Events("text")))  # fmt: skip
    last, averaged = (r.network.state_dict() for r in runs)
    assert not torch.equal(last["encoder.conv1.weight"], averaged["encoder.conv1.weight"])
    assert not torch.equal(last["encoder.bn1.running_var"], averaged["encoder.bn1.running_var"])
    with rasterio.open(scene.image) as ds:
        x = torch.from_numpy(runs[1].config.normalization.apply(ds.read().astype(np.float32)))[None]
    with torch.no_grad():
        predicted = runs[1].network.eval()(x)[0].argmax(0).numpy()
    assert (predicted[labels.rows, labels.cols] == labels.classes).mean() > 0.8
