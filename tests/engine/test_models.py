"""Model directories: safetensors plus config.json, rebuilt without unpickling; registries with helpful errors."""

import json

import pytest
import torch

from engine.classes import parse_classes
from engine.errors import InputError
from engine.models import DEFAULT_DECODERS, ModelConfig, architectures, build_network, load_model, save_model
from engine.normalization import Normalization


def _config(arch="Unet", encoder="resnet18"):
    norm = Normalization([0.0] * 3, [255.0] * 3, [100.0] * 3, [50.0] * 3)
    return ModelConfig(arch, encoder, 3, [1, 2, 3], norm, parse_classes("background,car:#112233"), 64)


def test_save_and_load_round_trip_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    network = build_network("Unet", "resnet18", 3, 2).eval()
    save_model(tmp_path / "m", network, _config())
    loaded, config = load_model(tmp_path / "m")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(network(x), loaded(x))
    assert config.classes[1].color == "#112233" and config.normalization.mean == [100.0] * 3


def test_loading_never_unpickles(tmp_path, monkeypatch):
    save_model(tmp_path / "m", build_network("FPN", "resnet18", 3, 2), _config("FPN"))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "weights.safetensors"]

    def refuse(*args, **kwargs):
        raise AssertionError("a model must load without pickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    _, config = load_model(tmp_path / "m")
    assert config.arch == "FPN"


def test_save_replaces_a_model_whole(tmp_path):
    save_model(tmp_path / "m", build_network("Unet", "resnet18", 3, 2), _config())
    (tmp_path / "m" / "stale.txt").write_text("from before")
    save_model(tmp_path / "m", build_network("Unet", "resnet18", 3, 2), _config())
    assert not (tmp_path / "m" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_unknown_architecture_or_encoder_lists_valid_names():
    with pytest.raises(InputError, match="DeepLabV3Plus.*Unet"):
        build_network("UNet3D", "resnet18", 3, 2)
    with pytest.raises(InputError, match="resnet18"):
        build_network("Unet", "resnet9000", 3, 2)
    assert {"Unet", "FPN", "DeepLabV3Plus", "Segformer"} <= set(architectures())


def test_pretrained_weights_missing_offline_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(InputError, match="local cache.*without --encoder-weights"):
        build_network("Unet", "resnet18", 3, 2, encoder_weights="imagenet")


def test_damaged_or_missing_model_directory(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"schema_version": 1, "arch": "Unet"}))
    with pytest.raises(InputError, match="damaged"):
        load_model(tmp_path)


def test_decoder_channels_are_stored_and_rebuilt(tmp_path):
    torch.manual_seed(0)
    light = [64, 32, 16, 8, 8]
    network = build_network("Unet", "resnet18", 3, 2, decoder_channels=light).eval()
    config = _config()
    config.decoder_channels = light
    save_model(tmp_path / "light", network, config)
    stored = json.loads((tmp_path / "light" / "config.json").read_text())
    assert stored["decoder_channels"] == light and stored["schema_version"] == 2
    loaded, loaded_config = load_model(tmp_path / "light")
    assert loaded_config.decoder_channels == light
    assert loaded.decoder.blocks[-1].conv2[0].out_channels == 8
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(network(x), loaded(x))
    # a default model's config.json is the one an engine before the option wrote and reads
    save_model(tmp_path / "plain", build_network("Unet", "resnet18", 3, 2), _config())
    plain = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "decoder_channels" not in plain and plain["schema_version"] == 1


def test_decoder_channels_the_architecture_cannot_take_name_the_option():
    with pytest.raises(InputError, match="--decoder-channels: FPN has no decoder channels"):
        build_network("FPN", "resnet18", 3, 2, decoder_channels=[128, 64, 32, 16, 16])
    with pytest.raises(InputError, match="--decoder-channels: .*one per encoder stage"):
        build_network("Unet", "resnet18", 3, 2, decoder_channels=[64, 32])


def test_the_default_decoder_is_the_architectures():
    from engine.train import TrainOptions

    assert TrainOptions().decoder_channels == DEFAULT_DECODERS["Unet"] == (128, 64, 32, 16, 16)
    assert TrainOptions(arch="FPN").decoder_channels is None  # smp's own
    assert TrainOptions(decoder_channels=(256, 128, 64, 32, 16)).decoder_channels == (256, 128, 64, 32, 16)
