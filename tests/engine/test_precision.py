"""bf16 autocast on the CPU: chosen where the CPU has native bf16 and a timed probe finds it faster, unless turned
off or another --precision is asked for; training and prediction run in it with float32 weights and float32 outputs,
and it changes predictions only by bf16's rounding."""

import json

import numpy as np
import pytest
import torch

import engine.device
import engine.precision_probe
from engine.cli import main
from engine.device import amp_dtype, describe, memory_format, set_precision
from engine.errors import InputError
from engine.models import build_network
from engine.predict import predict_probabilities
from tests.engine.cli_helpers import TINY, scene_points
from tests.engine.test_memory_layout import _unet_and_config, train_two_steps


@pytest.mark.parametrize("native, faster", [(True, True), (True, False), (False, True)])
def test_a_cpu_runs_bf16_where_it_has_it_natively_and_it_is_faster_unless_turned_off(monkeypatch, native, faster):
    monkeypatch.setattr(engine.device, "cpu_bf16_native", lambda: native)
    monkeypatch.setattr(engine.precision_probe, "bf16_faster", lambda: faster)
    auto = torch.bfloat16 if native and faster else None
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "auto")
    assert amp_dtype("cpu") == auto
    monkeypatch.delenv("SPARSE_AL_CPU_BF16")
    assert amp_dtype("cpu") == auto
    for off in ("0", "false", "Off"):
        monkeypatch.setenv("SPARSE_AL_CPU_BF16", off)
        assert amp_dtype("cpu") is None, off
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "1")
    assert amp_dtype("cpu") == torch.bfloat16
    assert amp_dtype("mps") is None


@pytest.mark.parametrize("name", ["SPARSE_AL_CPU_BF16", "SPARSE_AL_CHANNELS_LAST"])
def test_an_unknown_value_of_a_switch_is_an_error_naming_it(monkeypatch, name):
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(InputError, match=f"{name} is 'maybe'; set it to 0"):
        amp_dtype("cpu") if name == "SPARSE_AL_CPU_BF16" else memory_format("cpu")


def test_the_precision_option_overrides_the_automatic_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "1")
    set_precision("float32", "cpu")
    assert amp_dtype("cpu") is None and amp_dtype("cuda") is None
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", "0")
    set_precision("bf16", "cpu")
    assert amp_dtype("cpu") == torch.bfloat16
    set_precision("auto", "cpu")
    assert amp_dtype("cpu") is None


def test_a_precision_the_device_cannot_run_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(InputError, match="this GPU has no bf16"):
        set_precision("bf16", "cuda")
    with pytest.raises(InputError, match="bf16 runs on cpu or cuda, not mps"):
        set_precision("bf16", "mps")
    with pytest.raises(InputError, match="unknown precision 'half'"):
        set_precision("half", "cpu")
    assert engine.device._chosen == "auto"


def test_a_command_precision_ends_with_the_command_even_when_it_fails(monkeypatch):
    set_precision("float32", "cpu")
    assert main(["train", "--precision", "bf16", "--no-such-option"]) == 2
    assert engine.device._chosen == "auto"


def test_cuda_runs_bf16_where_supported_and_fp16_elsewhere(monkeypatch):
    for supported, dtype in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda s=supported: s)
        assert amp_dtype("cuda") == dtype


def _recording(dtypes: list[torch.dtype]):
    """A network builder that records the dtype of its first convolution's output at every forward pass."""

    def build(*args, **kwargs):
        network = build_network(*args, **kwargs)
        network.encoder.conv1.register_forward_hook(lambda _m, _inputs, out: dtypes.append(out.dtype))
        return network

    return build


@pytest.mark.parametrize("setting, expected", [("1", torch.bfloat16), ("0", torch.float32)])
def test_training_runs_in_the_chosen_precision_and_keeps_float32_weights(scene, monkeypatch, setting, expected):
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", setting)
    dtypes: list[torch.dtype] = []
    result = train_two_steps(scene, monkeypatch, _recording(dtypes))
    assert len(dtypes) == 2 and set(dtypes) == {expected}  # two training steps
    assert {p.dtype for p in result.network.parameters()} == {torch.float32}
    assert np.isfinite(result.final_loss)
    assert result.config.trained["precision"] == str(expected).removeprefix("torch.")
    assert describe(torch.device("cpu")) == ("cpu (bf16 autocast)" if setting == "1" else "cpu")


def test_prediction_in_bf16_rounds_but_does_not_change_the_map(monkeypatch):
    network, config = _unet_and_config()
    dtypes: list[torch.dtype] = []
    network.encoder.conv1.register_forward_hook(lambda _m, _inputs, out: dtypes.append(out.dtype))
    image = np.random.default_rng(0).uniform(0, 255, (3, 96, 80)).astype(np.float32)
    valid = np.ones((96, 80), bool)
    probs = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("SPARSE_AL_CPU_BF16", setting)
        dtypes.clear()
        probs[setting] = predict_probabilities(network, config, image, valid, "cpu", tile_size=64, overlap=16).probs
        assert dtypes and set(dtypes) == {torch.bfloat16 if setting == "1" else torch.float32}
    assert probs["1"].dtype == probs["0"].dtype == np.float32
    assert np.allclose(probs["1"].sum(axis=0), 1, atol=1e-3)
    difference = np.abs(probs["0"] - probs["1"])
    assert 0 < difference.max() < 0.05  # bf16 keeps 8 bits of mantissa: it rounds, a little
    agree = (probs["0"].argmax(0) == probs["1"].argmax(0)).mean()
    assert agree > 0.9, agree
    assert np.abs(probs["1"] - 1 / 3).max() > 0.01  # the comparison above is between informative predictions


ASKED = [("bf16", "0", "bfloat16", "cpu (bf16 autocast)"), ("float32", "1", "float32", "cpu")]


@pytest.mark.parametrize("precision, setting, recorded, device", ASKED)
def test_train_runs_and_records_the_precision_asked_for(tmp_path, scene, capsys, monkeypatch, precision, setting,
                                                        recorded, device):  # fmt: skip
    monkeypatch.setenv("SPARSE_AL_CPU_BF16", setting)  # the option wins over the variable
    points = scene_points(tmp_path, scene.label, per_class=2)
    out = tmp_path / "model"
    code = main(["train", "--events", "json", "--device", "cpu", "--precision", precision, "--raster", str(scene.image),
                 "--points", str(points), "--classes", "a,b,c", "--out", str(out), "--no-forest-ensemble",
                 "--no-superpixel-smoothing", "--flip-views", "1", *TINY])  # fmt: skip
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0, events[-1]
    assert events[0]["device"] == device
    assert json.loads((out / "config.json").read_text())["trained"]["precision"] == recorded
