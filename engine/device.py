"""Choosing the torch device (CUDA, then Apple MPS, then CPU), and the memory layout and precision the networks run in
there."""

import contextlib
import functools
import os

import torch

from engine import precision_probe
from engine.errors import InputError

_ON, _OFF = ("1", "true", "on", "yes"), ("0", "false", "off", "no")  # values of the SPARSE_AL_* switches


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
    wanted = _switch("SPARSE_AL_CHANNELS_LAST", "1") in _ON
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


PRECISIONS = ("auto", "float32", "bf16")
_chosen = "auto"  # this process's --precision (set_precision)


def set_precision(name: str, device: torch.device | str) -> None:
    """Choose the precision the networks run in (``--precision``): auto (``amp_dtype``), float32 (no autocast on
    any device) or bf16 (autocast to bf16, also on a CPU without native bf16: slower there)."""
    global _chosen
    device = torch.device(device)
    if name not in PRECISIONS:
        raise InputError(f"--precision: unknown precision {name!r}; use {', '.join(PRECISIONS)}", "precision")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("--precision: this GPU has no bf16; use --precision auto (float16) or float32", "precision")
    if name == "bf16" and device.type not in ("cpu", "cuda"):
        raise InputError(f"--precision: bf16 runs on cpu or cuda, not {device.type}; use auto or float32", "precision")
    _chosen = name


def reset_precision() -> None:
    """Back to ``--precision auto``, as at the start of a process."""
    global _chosen
    _chosen = "auto"


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype the networks run in under autocast on ``device``, None for float32. With ``--precision auto`` (the
    default): bf16 on CUDA where supported (fp16 otherwise) and on a CPU with native bf16 where a timed probe finds
    it faster (engine/precision_probe.py); ``SPARSE_AL_CPU_BF16=0`` (or false, off, no) keeps a CPU in float32,
    ``=1`` forces bf16 on any CPU (the tests' and benchmarks' choice)."""
    device = torch.device(device)
    if _chosen == "float32" or device.type not in ("cpu", "cuda"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if _chosen == "bf16" or torch.cuda.is_bf16_supported() else torch.float16
    setting = _switch("SPARSE_AL_CPU_BF16", "auto", auto=True)
    if _chosen == "bf16" or setting in _ON:
        return torch.bfloat16
    return torch.bfloat16 if setting == "auto" and cpu_bf16_native() and precision_probe.bf16_faster() else None


def _switch(name: str, default: str, auto: bool = False) -> str:
    """The environment variable ``name`` read as on, off (or auto): another value is an error naming it."""
    value = os.environ.get(name, "").strip().lower() or default
    allowed = (*_ON, *_OFF, *(("auto",) if auto else ()))
    if value not in allowed:
        raise InputError(f"{name} is {value!r}; set it to {'0, 1 or auto' if auto else '0 or 1'}, or unset it", name)
    return value


def precision_name(device: torch.device | str) -> str:
    """The dtype the networks compute in on ``device``: 'bfloat16', 'float16' or 'float32'."""
    return str(amp_dtype(device) or torch.float32).removeprefix("torch.")


def autocast(device: torch.device | str):
    """The autocast context the networks run in on ``device`` (``amp_dtype``); a no-op for float32."""
    device = torch.device(device)
    dtype = amp_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
