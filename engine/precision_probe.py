"""Whether bf16 autocast is faster than float32 on this CPU, timed once and remembered.

A CPU that reports native bf16 is not always faster in it: session 8 measured an Intel Xeon with AVX512-BF16 slower
in bf16 than in float32, where this project's AMD EPYC trains 1.9 times as fast (docs/benchmarks.md, "bf16 autocast
on a CPU"). So the first run on a CPU times a few training steps of a small convolutional network in both (about a
second) and keeps the ratio in ``$XDG_CACHE_HOME/sparse-al/cpu_precision.json`` (``~/.cache`` by default), keyed by
CPU, torch version and thread count; later runs read it. A ratio near the threshold is timed a second time before it
is kept; deleting the file times the CPU again.
"""

import functools
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn

from engine.atomic import atomic_file

log = logging.getLogger(__name__)

FASTER = 1.1  # bf16 is chosen where a training step takes at most 1/FASTER of float32's time
CLOSE = (0.9, 1.4)  # a first ratio in here is timed again and the two averaged: one busy second can mislead


def cache_path() -> Path | None:
    """Where the ratio is kept; None where there is no home folder to keep it in."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no HOME and no passwd entry
        return None
    return base / "sparse-al" / "cpu_precision.json"


def bf16_faster() -> bool:
    return bf16_speedup() >= FASTER


@functools.cache
def bf16_speedup() -> float:
    """float32's time for a training step over bf16's on this CPU, from the cache or timed now."""
    path, key = cache_path(), machine_key()
    cached = _read(path) if path else {}
    if isinstance(cached.get(key), int | float):
        return float(cached[key])
    try:
        speedup = time_speedup()
        if CLOSE[0] <= speedup < CLOSE[1]:
            speedup = (speedup + time_speedup()) / 2
    except Exception as exc:  # torch without bf16 kernels for these layers, say: float32, and ask again next run
        log.warning("timing bf16 on this CPU failed (%s); the networks run in float32", exc)
        return 0.0
    cached[key] = round(speedup, 3)
    try:
        if path is not None:
            with atomic_file(path) as tmp:
                tmp.write_text(json.dumps(cached, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only home: the ratio serves this run only
        log.debug("could not cache the CPU's bf16 timing in %s: %s", path, exc)
    log.info("bf16 on this CPU: %.2fx float32's training speed (timed once, kept in %s)", speedup, path)
    return speedup


def machine_key() -> str:
    return f"{cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def time_speedup(repeats: int = 3) -> float:
    """The best of ``repeats`` training steps in float32 over the best in bf16 autocast. Runs with gradients on
    whatever mode the caller is in (a prediction's inference mode) and leaves torch's random state as it was."""
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        return _step_seconds(None, repeats) / _step_seconds(torch.bfloat16, repeats)


def _step_seconds(dtype: torch.dtype | None, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    network = _probe_network()
    x = torch.randn(4, 3, 128, 128, generator=generator).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    for attempt in range(repeats + 1):  # the first step warms oneDNN's kernels up and is not counted
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = network(x)
        out.float().square().mean().backward()
        if attempt:
            best = min(best, time.perf_counter() - start)
    return best


def _probe_network() -> nn.Module:
    """Convolutions, batch norms and ReLUs at a U-Net encoder's first widths: where its training time goes."""
    widths = [(3, 64, 2), (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1)]
    layers: list[nn.Module] = []
    for cin, cout, stride in widths:
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(128, 5, 1)).to(memory_format=torch.channels_last)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
