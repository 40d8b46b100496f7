"""Choosing the torch device (CUDA, then Apple MPS, then CPU) and the memory layout the networks run in there."""

import os

import torch

from engine.errors import InputError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device: unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps", "device") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device: CUDA was asked for but torch sees no CUDA GPU; use --device auto or cpu", "device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device: MPS was asked for but is not available here; use --device auto or cpu", "device")
    return device


def describe(device: torch.device) -> str:
    """A human name for the device, e.g. 'cuda (NVIDIA H100 80GB HBM3)' or 'cpu'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def memory_format(device: torch.device | str) -> torch.memory_format:
    """Channels-last on CPU and CUDA, where oneDNN and cuDNN run a U-Net's convolutions faster in it (on this
    project's 2-core CPU about 1.3 times the training and 1.2 times the prediction throughput: docs/benchmarks.md,
    "Channels-last memory layout"); MPS keeps torch's default. ``SPARSE_AL_CHANNELS_LAST=0`` (or false, off, no)
    turns it off (a CPU where it is slower; the benchmarks' baseline)."""
    wanted = os.environ.get("SPARSE_AL_CHANNELS_LAST", "1").strip().lower() not in ("0", "false", "off", "no")
    return torch.channels_last if wanted and torch.device(device).type in ("cpu", "cuda") else torch.contiguous_format


def to_layout(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A batch of images (B x bands x H x W) in the layout of ``memory_format``."""
    return x.contiguous(memory_format=memory_format(device))
