"""Building, saving and loading segmentation networks. A model directory is config.json plus
weights.safetensors (CONTRACT.md); loading never unpickles anything."""

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub at run time: weights come from the local cache

import segmentation_models_pytorch as smp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine import SCHEMA_VERSION, __version__
from engine.atomic import atomic_dir
from engine.classes import ClassInfo
from engine.errors import InputError, InputFileError
from engine.normalization import Normalization

IGNORE_INDEX = 255
# config.json's schema: 2 adds decoder_channels; a model without them is written as 1, which older engines read
MODEL_SCHEMA_VERSION = 2
DEFAULT_ARCH = "Unet"
DEFAULT_ENCODER = "resnet18"
# The engine's decoder for an architecture when none is asked for (others: smp's own). A U-Net's default decoder
# (256, 128, 64, 32, 16) is most of a resnet18 U-Net's arithmetic; half its channels but the last stage's trains
# 1.6 times faster on a CPU, its label-efficiency loop 0.005 mIoU lower on average over four paired runs, within the
# seeds' spread (docs/benchmarks.md, "A lighter decoder").
DEFAULT_DECODERS = {"Unet": (128, 64, 32, 16, 16)}
SMP_UNET_DECODER = (256, 128, 64, 32, 16)  # smp's own U-Net decoder: the engine's default before session 12


def architectures() -> dict[str, type]:
    """smp's architectures by name (Unet, FPN, DeepLabV3Plus, ...)."""
    return {cls.__name__: cls for cls in smp.create_model.__globals__["_MODEL_ARCHITECTURES"]}


@dataclass
class ModelConfig:
    arch: str
    encoder: str
    in_channels: int
    bands: list[int]
    normalization: Normalization
    classes: list[ClassInfo]
    patch_size: int = 256
    ignore_index: int = IGNORE_INDEX
    kind: str = "smp"
    trained: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)  # feature settings of a "random_forest" model (engine/forest.py)
    schema_version: int = SCHEMA_VERSION
    decoder_channels: list[int] | None = None  # the decoder's channels per stage (Unet family); None: smp's default

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["normalization"] = self.normalization.to_dict()
        data["classes"] = [c.to_dict() for c in self.classes]
        data["trained"] = {**self.trained, "engine_version": __version__}
        if not data["features"]:
            del data["features"]
        if data["decoder_channels"] is None:  # what an engine before the field wrote, and can read
            del data["decoder_channels"]
        else:  # an engine before the field refuses the model with "update the engine"
            data["schema_version"] = max(data["schema_version"], MODEL_SCHEMA_VERSION)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        data = dict(data)
        data["normalization"] = Normalization.from_dict(data["normalization"])
        data["classes"] = [ClassInfo(c["name"], c["color"]) for c in data["classes"]]
        return cls(**data)


def build_network(
    arch: str, encoder: str, in_channels: int, num_classes: int, encoder_weights: str | None = None,
    decoder_channels: list[int] | None = None,
) -> nn.Module:  # fmt: skip
    """An smp network that outputs logits. Unknown names raise an InputError listing the valid ones.
    ``decoder_channels``: the decoder's channels per stage (U-Net family: one per encoder stage, 5); None: smp's."""
    archs = architectures()
    if arch not in archs:
        raise InputError(f"--arch: unknown architecture {arch!r}; use one of {', '.join(sorted(archs))}", "arch")
    encoders = smp.encoders.get_encoder_names()
    if encoder not in encoders and not encoder.startswith("tu-"):
        raise InputError(
            f"--encoder: unknown encoder {encoder!r}; use one of smp's encoders, e.g. "
            f"resnet18, resnet34, efficientnet-b0, mobilenet_v2, or tu-<timm name>",
            "encoder",
        )
    decoder = {} if decoder_channels is None else {"decoder_channels": tuple(int(c) for c in decoder_channels)}
    if decoder and "decoder_channels" not in inspect.signature(archs[arch].__init__).parameters:
        raise InputError(f"--decoder-channels: {arch} has no decoder channels to set; use Unet (or leave the "
                         "option out)", "decoder_channels")  # fmt: skip
    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels,
                                classes=num_classes, **decoder)  # fmt: skip
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        if decoder:
            raise InputError(f"--decoder-channels: {arch} with {encoder} cannot be built with decoder channels "
                             f"{list(decoder['decoder_channels'])} ({exc}); a U-Net takes one per encoder stage, e.g. "
                             "128,64,32,16,16", "decoder_channels") from exc  # fmt: skip
        if encoder_weights is None:
            raise InputError(f"--arch/--encoder: {arch} with {encoder} cannot be built ({exc})", "encoder") from exc
        raise InputError(
            f"--encoder-weights: the {encoder_weights} weights of {encoder} are not in the local cache "
            f"(~/.cache/huggingface or ~/.cache/torch/hub); copy them there from a machine with internet access, "
            f"or train without --encoder-weights ({type(exc).__name__})",
            "encoder_weights",
        ) from exc


def save_model(
    directory: Path, network: nn.Module, config: ModelConfig, extra: Callable[[Path], None] | None = None
) -> None:
    """Write the model directory atomically: a cancel or crash leaves the previous one or nothing. ``extra(tmp)``
    writes more files into it before it is published (the forest of a hybrid model)."""
    with atomic_dir(Path(directory)) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        os.chmod(tmp / "weights.safetensors", 0o644)
        if extra is not None:
            extra(tmp)


def load_config(directory: Path, field_name: str = "model") -> ModelConfig:
    directory = Path(directory)
    path = directory / "config.json"
    if not path.exists():
        raise InputFileError(
            f"--{field_name}: {directory} is not a model directory (no config.json); train one first", field_name
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFileError(f"--{field_name}: {path} is not readable JSON ({exc})", field_name) from exc
    version = data.get("schema_version")
    if not isinstance(version, int) or version > MODEL_SCHEMA_VERSION:
        raise InputError(
            f"--{field_name}: {directory} was written by a newer engine (schema_version {version}, this "
            f"engine reads up to {MODEL_SCHEMA_VERSION}); update the engine",
            field_name,
        )
    try:
        return ModelConfig.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise InputFileError(
            f"--{field_name}: {path} lacks field {exc}; the model directory is damaged", field_name
        ) from exc


def load_model(
    directory: Path, device: torch.device | str = "cpu", field_name: str = "model"
) -> tuple[nn.Module, ModelConfig]:
    """Rebuild the network from config.json and load its safetensors weights (no pickle)."""
    config = load_config(directory, field_name)
    if config.kind != "smp":
        raise InputError(f"--{field_name}: {directory} holds a {config.kind!r} model, not a network", field_name)
    network = build_network(config.arch, config.encoder, config.in_channels, len(config.classes),
                            decoder_channels=config.decoder_channels)  # fmt: skip
    weights = Path(directory) / "weights.safetensors"
    try:
        state = load_file(str(weights))
    except (OSError, Exception) as exc:
        raise InputFileError(
            f"--{field_name}: {weights} cannot be read ({exc}); the model directory is damaged", field_name
        ) from exc
    network.load_state_dict(state)
    return network.to(device).eval(), config


def output_stride(network: nn.Module) -> int:
    """The factor a network's input sides must be a multiple of."""
    encoder = getattr(network, "encoder", None)
    return int(getattr(encoder, "output_stride", 32) or 32)
