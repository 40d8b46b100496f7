"""Prediction benchmark: pipeline throughput against the bare network, and peak memory against raster size.

1. Throughput: ``predict_raster`` (reader thread, network, blending, writer thread, GeoTIFF compression, overviews)
   on a generated raster, in megapixels per second, next to the bare network forward (``network(x)`` alone, inputs
   already on the device) on the same number of tiles of the same shape, in the same run; their ratio is the share of
   the network's speed the pipeline keeps (goal: at least 85%). Each network runs twice, in channels-last memory format
   (the engine's default on CPU and CUDA) and in torch's default layout (the baseline), both in float32, and on a CPU
   a third time channels-last under bf16 autocast (the default where the CPU has native bf16); the ratios are printed.
2. Memory: peak resident memory (VmHWM) of a fresh process predicting a small and a large raster, and their ratio
   (goal: within 30%); also the resident memory before predicting (imports, network), to show what prediction adds.

Networks: ``tiny`` (a 4-layer fully convolutional network, used where a real one would take too long on a small CPU;
its cheapness makes the pipeline's share of the time, so the ratio, the least favourable), ``unet-resnet18`` (the
engine's default model, smp Unet with a resnet18 encoder) and, for the memory runs, ``pointwise`` (one 1 x 1
convolution: memory is the pipeline's, and the 16384^2 run takes minutes instead of hours on a CPU).

    python -m benchmarks bench_predict [--quick] [--device cpu|cuda] [--workdir DIR]
"""

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch import nn

from benchmarks.machine import describe, layout, layout_name, precision, precision_label
from engine.classes import parse_classes
from engine.device import autocast, cpu_bf16_native, memory_format, to_layout
from engine.events import Events
from engine.models import ModelConfig, build_network
from engine.normalization import Normalization
from engine.predict_raster import RasterPredictOptions, predict_raster
from engine.tiling import TileGrid

log = logging.getLogger("benchmarks")
CLASSES = "background,car,road"
TILE, OVERLAP, BATCH = 512, 64, 4


class Pointwise(nn.Module):
    def __init__(self, bands: int = 3, classes: int = 3):
        super().__init__()
        self.segmentation_head = nn.Conv2d(bands, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(x)


class TinyNet(nn.Module):
    """Four convolutions, one downsampling: a stand-in whose cost is close to the pipeline's own."""

    def __init__(self, bands: int = 3, classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(bands, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2),
        )  # fmt: skip
        self.segmentation_head = nn.Conv2d(16, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.body(x))


def make_network(name: str) -> tuple[nn.Module, ModelConfig]:
    torch.manual_seed(0)
    if name == "unet-resnet18":
        network = build_network("Unet", "resnet18", 3, 3)
    else:
        network = {"tiny": TinyNet, "pointwise": Pointwise}[name]()
    norm = Normalization([0.0] * 3, [255.0] * 3, [110.0] * 3, [60.0] * 3)
    config = ModelConfig("Unet", "resnet18", 3, [1, 2, 3], norm, parse_classes(CLASSES))
    return network.eval(), config


def make_raster(path: Path, size: int, seed: int = 0) -> Path:
    """A size x size three-band uint8 GeoTIFF (tiled, uncompressed), written in strips: smooth fields plus noise."""
    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "crs": "EPSG:32633", "BIGTIFF": "IF_SAFER",
               "transform": rasterio.transform.from_origin(500_000, 4_650_000, 0.5, 0.5)}  # fmt: skip
    strip = 1024
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, size, strip):
            h = min(strip, size - row)
            yy, xx = np.mgrid[row : row + h, 0:size].astype(np.float32)
            base = 110 + 60 * np.sin(xx / 97.0) * np.cos(yy / 131.0)
            data = np.stack([base + 30 * k for k in range(3)]) + rng.normal(0, 12, (3, h, size))
            ds.write(np.clip(data, 0, 255).astype(np.uint8), window=rasterio.windows.Window(0, row, size, h))
    return path


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward_seconds(network: nn.Module, device: torch.device, tiles: int) -> float:
    """The network alone on ``tiles`` tiles (batches of BATCH, inputs already on the device, in the engine's layout)."""
    network = network.to(device, memory_format=memory_format(device)).eval()
    x = to_layout(torch.randn(BATCH, 3, TILE, TILE, device=device), device)
    with torch.inference_mode(), autocast(device):
        network(x)  # warm-up
        _sync(device)
        start = time.perf_counter()
        for done in range(0, tiles, BATCH):
            network(x[: min(BATCH, tiles - done)])
        _sync(device)
    return time.perf_counter() - start


def throughput(network_name: str, size: int, device: torch.device, workdir: Path) -> dict:
    raster = make_raster(workdir / f"throughput_{size}.tif", size)
    network, config = make_network(network_name)
    tiles = len(TileGrid(size, size, TILE, OVERLAP))
    bare_forward_seconds(network, device, BATCH)  # warm-up of the allocator and kernels
    out = workdir / f"out_{network_name}_{size}"
    with open(os.devnull, "w") as sink:
        start = time.perf_counter()
        predict_raster(network, config, raster, out, None, device, RasterPredictOptions(TILE, OVERLAP, BATCH),
                       Events("json", sink))  # fmt: skip
        pipeline = time.perf_counter() - start
    bare = bare_forward_seconds(network, device, tiles)
    shutil.rmtree(out, ignore_errors=True)
    raster.unlink()
    mp = size * size / 1e6
    return {"network": network_name, "size": size, "tiles": tiles, "pipeline_s": pipeline, "bare_s": bare,
            "pipeline_mps": mp / pipeline, "bare_mps": mp / bare, "ratio": bare / pipeline}  # fmt: skip


def peak_memory(network_name: str, size: int, device: str, workdir: Path) -> dict:
    """Predict a size x size raster in a fresh process; its peak and pre-prediction resident memory (MiB)."""
    raster = make_raster(workdir / f"memory_{size}.tif", size)
    cmd = [sys.executable, "-m", "benchmarks.bench_predict", "--child", str(raster), "--network", network_name,
           "--device", device, "--workdir", str(workdir)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    raster.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"child for {size} failed: {done.stderr[-2000:]}")
    return {"size": size, **json.loads(done.stdout.strip().splitlines()[-1])}


def _peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    through fork and exec, so a child started by a big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(raster: Path, network_name: str, device: torch.device, workdir: Path) -> None:
    network, config = make_network(network_name)
    network.to(device)
    before = _peak_rss_mib()
    out = workdir / f"child_out_{raster.stem}"
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        predict_raster(network, config, raster, out, None, device, RasterPredictOptions(TILE, OVERLAP, BATCH),
                       Events("json", sink))  # fmt: skip
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"before_mib": round(before, 1), "peak_mib": round(peak, 1), "seconds": round(seconds, 1)}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_predict", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller rasters (minutes become seconds)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workdir", help="folder for the generated rasters (default: a temporary one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--network", default="tiny", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.child:
        _child(Path(args.child), args.network, device, Path(args.workdir))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_predict_"))
    workdir.mkdir(parents=True, exist_ok=True)
    log.info("machine: %s; device %s", describe(), device)
    log.info("tiles %d px, overlap %d, batch %d; outputs prediction.tif + uncertainty.tif (entropy)",
             TILE, OVERLAP, BATCH)  # fmt: skip
    try:
        sizes = {"tiny": 2048 if args.quick else 8192,
                 "unet-resnet18": 1024 if args.quick or device.type != "cuda" else 8192}  # fmt: skip
        settings = [(False, False), (True, False)] + ([(True, True)] if device.type == "cpu" else [])
        log.info("| network | layout | CPU precision | raster | tiles | pipeline MP/s | bare network MP/s | pipeline / "
                 "bare |")  # fmt: skip
        log.info("|---|---|---|---|---|---|---|---|")
        pipeline = {}
        for name, size in sizes.items():
            for channels_last, bf16 in settings:
                with layout(channels_last), precision(bf16):
                    r = throughput(name, size, device, workdir)
                pipeline[name, channels_last, bf16] = r["pipeline_mps"]
                log.info("| %s | %s | %s | %d^2 | %d | %.2f | %.2f | %.0f%% |", name, layout_name(channels_last),
                         precision_label(bf16), size, r["tiles"], r["pipeline_mps"], r["bare_mps"],
                         100 * r["ratio"])  # fmt: skip
        for name in sizes:
            log.info("%s pipeline, channels-last / contiguous (float32): %.2fx", name,
                     pipeline[name, True, False] / pipeline[name, False, False])  # fmt: skip
            if device.type == "cpu":
                log.info("%s pipeline, bf16 / float32 (channels-last; native bf16 here: %s): %.2fx", name,
                         cpu_bf16_native(), pipeline[name, True, True] / pipeline[name, True, False])  # fmt: skip
        small, large = (1024, 4096) if args.quick else (4096, 16384)
        mem = [peak_memory("pointwise", s, args.device, workdir) for s in (small, large)]
        log.info("memory (network: pointwise)")
        log.info("| raster | peak RSS MiB | RSS before predicting MiB | seconds |")
        log.info("|---|---|---|---|")
        for m in mem:
            log.info("| %d^2 | %.0f | %.0f | %.0f |", m["size"], m["peak_mib"], m["before_mib"], m["seconds"])
        added = [m["peak_mib"] - m["before_mib"] for m in mem]
        log.info("peak RSS ratio %d^2 / %d^2: %.2f; ratio of what prediction adds: %.2f", large, small,
                 mem[1]["peak_mib"] / mem[0]["peak_mib"], added[1] / max(1.0, added[0]))  # fmt: skip
        log.info("pipeline alone (pointwise network): %.2f MP/s on %d^2", large * large / 1e6 / mem[1]["seconds"],
                 large)  # fmt: skip
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
