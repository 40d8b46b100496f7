"""Choosing the torch device: CUDA, then Apple MPS, then CPU."""

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
