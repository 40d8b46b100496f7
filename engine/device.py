"""Choosing the torch device (CUDA, then Apple MPS, then CPU), and the memory layout and precision the networks run in
there."""

import contextlib
import functools
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
    """A human name for the device, e.g. 'cuda (NVIDIA H100 80GB HBM3)', 'cpu' or 'cpu (bf16 autocast)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} (bf16 autocast)" if device.type == "cpu" and amp_dtype(device) is not None else device.type


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


@functools.cache
def cpu_bf16_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), where oneDNN runs a U-Net in bf16 about
    twice as fast as in float32 (docs/benchmarks.md, "bf16 autocast on a CPU"); elsewhere bf16 is emulated, slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private to torch.cpu: absent means no
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype the networks run in under autocast on ``device``, None for float32: bf16 on CUDA where supported
    (fp16 otherwise) and on a CPU with native bf16. ``SPARSE_AL_CPU_BF16=0`` (or false, off, no) keeps a CPU in
    float32, ``=1`` forces bf16 on any CPU (the benchmarks' comparison)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type != "cpu":
        return None
    setting = os.environ.get("SPARSE_AL_CPU_BF16", "auto").strip().lower()
    if setting in ("0", "false", "off", "no"):
        return None
    return torch.bfloat16 if setting in ("1", "true", "on", "yes") or cpu_bf16_native() else None


def precision_name(device: torch.device | str) -> str:
    """The dtype the networks compute in on ``device``: 'bfloat16', 'float16' or 'float32'."""
    return str(amp_dtype(device) or torch.float32).removeprefix("torch.")


def autocast(device: torch.device | str):
    """The autocast context the networks run in on ``device`` (``amp_dtype``); a no-op for float32."""
    device = torch.device(device)
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
