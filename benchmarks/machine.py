"""A one-line description of the machine a benchmark ran on, and the memory layout and CPU precision a benchmark runs
the engine in."""

import contextlib
import os


def describe() -> str:
    import torch

    from engine.device import cpu_bf16_native, precision_name
    from engine.precision_probe import cpu_name

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    native = "native bf16" if cpu_bf16_native() else "no native bf16"
    return (f"{cpu}, {os.cpu_count()} cores ({native}; the engine on the CPU in {precision_name('cpu')}), {gpu}, "
            f"torch {torch.__version__}, threads {torch.get_num_threads()}")  # fmt: skip


@contextlib.contextmanager
def _environment(name: str, value: str):
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def layout(channels_last: bool):
    """Run the engine in channels-last memory format (its default on CPU and CUDA, engine/device.py) or in torch's
    default layout (the baseline the benchmarks compare it with)."""
    return _environment("SPARSE_AL_CHANNELS_LAST", "1" if channels_last else "0")


def layout_name(channels_last: bool) -> str:
    return "channels-last" if channels_last else "contiguous (baseline)"


def precision(bf16: bool):
    """Run the engine on the CPU under bf16 autocast (its default where the CPU has native bf16, engine/device.py)
    or in float32 (the baseline)."""
    return _environment("SPARSE_AL_CPU_BF16", "1" if bf16 else "0")


def precision_label(bf16: bool) -> str:
    return "bf16 autocast" if bf16 else "float32 (baseline)"
