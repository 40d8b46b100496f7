"""Channels-last memory layout on CPU: training and prediction run in it, it does not change their results, and a
model trained in it saves and loads whole."""

import numpy as np
import pytest
import torch

import engine.train
from engine.classes import parse_classes
from engine.device import memory_format
from engine.events import Events
from engine.models import ModelConfig, build_network, load_model, save_model
from engine.normalization import Normalization
from engine.points import PixelLabels
from engine.predict import predict_probabilities
from engine.train import TrainOptions, train

CLASSES = parse_classes("background,red,blue")


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _recording(layouts: list[bool]):
    """A network builder that records, at every forward pass, whether its input is channels-last."""

    def build(*args, **kwargs):
        network = build_network(*args, **kwargs)
        network.register_forward_pre_hook(lambda _module, inputs: layouts.append(_channels_last(inputs[0])))
        return network

    return build


def test_cpu_and_cuda_run_channels_last_unless_turned_off(monkeypatch):
    assert memory_format("cpu") == torch.channels_last
    assert memory_format(torch.device("cuda")) == torch.channels_last
    assert memory_format("mps") == torch.contiguous_format
    for off in ("0", "false", "Off"):
        monkeypatch.setenv("SPARSE_AL_CHANNELS_LAST", off)
        assert memory_format("cpu") == torch.contiguous_format, off
    monkeypatch.setenv("SPARSE_AL_CHANNELS_LAST", "1")
    assert memory_format("cpu") == torch.channels_last


def train_two_steps(scene, monkeypatch, build):
    """Two training steps of a tiny run on ``scene`` (CPU), the network made by ``build`` (``build_network``'s
    arguments)."""
    monkeypatch.setattr(engine.train, "build_network", build)
    labels = PixelLabels(np.array([5, 40, 60]), np.array([5, 40, 60]), np.array([0, 1, 2]))
    options = TrainOptions(epochs=1, batch_size=2, patch_size=64, patches_per_epoch=4, forest_ensemble=False,
                           prior_correction=False, flip_views=1)  # fmt: skip
    return train([scene.image], [labels], [1, 2, 3], CLASSES, options, torch.device("cpu"), Events("text"))


@pytest.mark.parametrize("setting, expected", [("1", True), ("0", False)])
def test_training_feeds_the_network_in_the_chosen_layout(scene, monkeypatch, setting, expected):
    monkeypatch.setenv("SPARSE_AL_CHANNELS_LAST", setting)
    layouts: list[bool] = []
    result = train_two_steps(scene, monkeypatch, _recording(layouts))
    assert len(layouts) == 2 and set(layouts) == {expected}  # two training steps
    assert _channels_last(result.network.encoder.conv1.weight) == expected


def _unet_and_config() -> tuple[torch.nn.Module, ModelConfig]:
    torch.manual_seed(0)
    norm = Normalization([0.0] * 3, [255.0] * 3, [128.0] * 3, [64.0] * 3)
    return build_network("Unet", "resnet18", 3, 3).eval(), ModelConfig("Unet", "resnet18", 3, [1, 2, 3], norm, CLASSES)


def test_prediction_is_the_same_in_both_layouts_and_runs_channels_last(monkeypatch):
    network, config = _unet_and_config()
    layouts: list[bool] = []
    network.register_forward_pre_hook(lambda _module, inputs: layouts.append(_channels_last(inputs[0])))
    image = np.random.default_rng(0).uniform(0, 255, (3, 96, 80)).astype(np.float32)
    valid = np.ones((96, 80), bool)
    probs = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("SPARSE_AL_CHANNELS_LAST", setting)
        probs[setting] = predict_probabilities(network, config, image, valid, "cpu", tile_size=64, overlap=16).probs
    assert layouts and not any(layouts[: len(layouts) // 2]) and all(layouts[len(layouts) // 2 :])
    assert np.abs(probs["0"] - probs["1"]).max() < 1e-4
    assert np.abs(probs["1"] - 1 / 3).max() > 0.01  # the comparison above is between informative predictions


def test_a_channels_last_network_saves_and_loads_whole(tmp_path):
    network, config = _unet_and_config()
    network = network.to(memory_format=torch.channels_last)
    save_model(tmp_path / "model", network, config)
    loaded, _ = load_model(tmp_path / "model")
    for name, value in network.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
