"""A one-line description of the machine a benchmark ran on, and the memory layout a benchmark runs the engine in."""

import contextlib
import os
import platform


def describe() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, threads {torch.get_num_threads()}"


@contextlib.contextmanager
def layout(channels_last: bool):
    """Run the engine in channels-last memory format (its default on CPU and CUDA, engine/device.py) or in torch's
    default layout (the baseline the benchmarks compare it with)."""
    before = os.environ.get("SPARSE_AL_CHANNELS_LAST")
    os.environ["SPARSE_AL_CHANNELS_LAST"] = "1" if channels_last else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["SPARSE_AL_CHANNELS_LAST"]
        else:
            os.environ["SPARSE_AL_CHANNELS_LAST"] = before


def layout_name(channels_last: bool) -> str:
    return "channels-last" if channels_last else "contiguous (baseline)"
