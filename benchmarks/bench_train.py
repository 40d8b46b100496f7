"""Training: the training loop's throughput in megapixels per second, in channels-last memory format (the engine's
default) against torch's default layout (the baseline) in the same run, the light decoder against smp's, bf16
autocast on the CPU against float32, and the default-loss comparison on a small scene.

.venv/bin/python -m benchmarks bench_train [--quick]
"""

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe, layout, layout_name, precision, precision_label
from engine.classes import parse_classes
from engine.device import cpu_bf16_native
from engine.events import Events
from engine.models import DEFAULT_DECODERS, SMP_UNET_DECODER
from engine.points import PixelLabels
from engine.train import TrainOptions, train
from tests.fixtures import write_scene

log = logging.getLogger("benchmarks")
CLASSES = parse_classes("background,red,blue")


def _labels(label: np.ndarray, per_class: int, seed: int) -> PixelLabels:
    rng = np.random.default_rng(seed)
    picks = [(r, c, k) for k in range(3) for r, c in zip(*np.nonzero(label == k), strict=True)]
    by_class = [[p for p in picks if p[2] == k] for k in range(3)]
    chosen = [cls[i] for cls in by_class for i in rng.choice(len(cls), per_class, replace=False)]
    rows, cols, classes = (np.array(v) for v in zip(*chosen, strict=True))
    return PixelLabels(rows, cols, classes)


def _miou(network, config, image: Path, label: np.ndarray, keep: np.ndarray) -> float:
    import rasterio

    with rasterio.open(image) as ds:
        x = torch.from_numpy(config.normalization.apply(ds.read().astype(np.float32)))[None]
    with torch.no_grad():
        pred = network(x)[0].argmax(0).numpy()
    ious = [((pred == c) & (label == c) & keep).sum() / max(1, (((pred == c) | (label == c)) & keep).sum())
            for c in range(3)]  # fmt: skip
    return float(np.mean(ious))


def _loop_throughput(image: Path, labels: PixelLabels, patch: int, batch: int, steps: int, quiet: Events,
                     decoder_channels=None) -> float:  # fmt: skip
    """Megapixels of patches per second of the training loop alone (no forest, no prior correction): the time of
    ``steps`` + 1 steps less that of one step (what comes before and after the loop)."""
    seconds = []
    for count in (batch, batch * (steps + 1)):
        options = TrainOptions(epochs=1, batch_size=batch, patch_size=patch, patches_per_epoch=count, seed=0,
                               forest_ensemble=False, prior_correction=False, superpixel_smoothing=False,
                               decoder_channels=decoder_channels)  # fmt: skip
        seconds.append(train([image], [labels], [1, 2, 3], CLASSES, options, torch.device("cpu"), quiet).seconds)
    return steps * batch * patch * patch / max(seconds[1] - seconds[0], 1e-9) / 1e6


def _decoders(image: Path, labels: PixelLabels, patch: int, batch: int, steps: int, quiet: Events) -> None:
    """The training loop's throughput with smp's U-Net decoder (the baseline) and the engine's default, lighter one,
    alternated in one run (channels-last, the engine's default layout)."""
    decoders = {f"smp's {SMP_UNET_DECODER}": SMP_UNET_DECODER, f"the default {DEFAULT_DECODERS['Unet']}": None}
    speed = {}
    for name in (*decoders, *decoders):
        mps = _loop_throughput(image, labels, patch, batch, steps, quiet, decoders[name])
        speed.setdefault(name, []).append(mps)
    for name, mps in speed.items():
        log.info("training loop, U-Net resnet18, patch %d, batch %d, decoder %s: %s MP/s", patch, batch, name,
                 " and ".join(f"{v:.3f}" for v in mps))  # fmt: skip
    baseline, default = (max(v) for v in speed.values())
    log.info("default / smp's decoder: %.2fx (best run of each)", default / baseline)


def _precisions(image: Path, labels: PixelLabels, patch: int, batch: int, steps: int, quiet: Events) -> None:
    """The training loop's throughput on the CPU in float32 (the baseline) and under bf16 autocast (the default
    where the CPU has native bf16; emulated, and slower, elsewhere), alternated in one run, channels-last."""
    speed = {}
    for bf16 in (False, True, False, True):
        with precision(bf16):
            speed.setdefault(bf16, []).append(_loop_throughput(image, labels, patch, batch, steps, quiet))
    for bf16, mps in speed.items():
        log.info("training loop, U-Net resnet18, patch %d, batch %d, %s: %s MP/s", patch, batch,
                 precision_label(bf16), " and ".join(f"{v:.3f}" for v in mps))  # fmt: skip
    log.info("bf16 / float32: %.2fx (best run of each; native bf16 here: %s)", max(speed[True]) / max(speed[False]),
             cpu_bf16_native())  # fmt: skip


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    log.info("machine: %s", describe())
    quiet = Events("json", open("/dev/null", "w"))  # noqa: SIM115 - lives as long as the benchmark
    with tempfile.TemporaryDirectory() as tmp:
        scene = write_scene(Path(tmp), 512 if not quick else 256, seed=0)
        labels = _labels(scene.label, 5, 0)
        patch, batch, steps = (128, 4, 4) if quick else (256, 8, 8)
        speed = {}
        for channels_last in (False, True, False, True):  # alternated: a load change hits both layouts alike
            with layout(channels_last):
                speed.setdefault(channels_last, []).append(
                    _loop_throughput(scene.image, labels, patch, batch, steps, quiet)
                )
        for channels_last, mps in speed.items():
            log.info("training loop, U-Net resnet18, patch %d, batch %d, %s: %s MP/s", patch, batch,
                     layout_name(channels_last), " and ".join(f"{v:.3f}" for v in mps))  # fmt: skip
        log.info("channels-last / contiguous: %.2fx (best run of each)", max(speed[True]) / max(speed[False]))
        _decoders(scene.image, labels, patch, batch, steps, quiet)
        _precisions(scene.image, labels, patch, batch, steps, quiet)
        scene = write_scene(Path(tmp), 128, seed=0)
        labels = _labels(scene.label, 5, 0)
        keep = np.ones_like(scene.label, bool)
        keep[labels.rows, labels.cols] = False
        log.info("| loss | lr | mIoU on unclicked pixels | seconds |")
        for loss, lr in [("dwcd", 1e-3), ("dwcd+ce", 1e-3), ("ce", 1e-3)][: 1 if quick else 3]:
            options = TrainOptions(epochs=12, batch_size=4, patch_size=64, patches_per_epoch=16, lr=lr, loss=loss)
            start = time.perf_counter()
            result = train([scene.image], [labels], [1, 2, 3], CLASSES, options, torch.device("cpu"), quiet)
            miou = _miou(result.network, result.config, scene.image, scene.label, keep)
            log.info("| %s | %g | %.3f | %.0f |", loss, lr, miou, time.perf_counter() - start)
