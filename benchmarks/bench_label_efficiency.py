"""Label efficiency: `simulate` on ../shared/data/bsb_toy and massachusetts_roads for the error, superpixel, entropy
and random strategies, with a dense-label run for the percent-of-dense column (docs/benchmarks.md).

    python -m benchmarks bench_label_efficiency --quick     # a short version (CPU: tens of minutes)
    python -m benchmarks bench_label_efficiency              # the full version (hours on a CPU; use a GPU)

Options (besides --quick): --data DIR (default ../shared/data), --out DIR (default /tmp/sparse_al_label_efficiency),
--datasets bsb_toy,massachusetts_roads, --strategies error,superpixel,entropy,random, --device auto.

The quick version uses fewer iterations and shorter training, and on massachusetts_roads crops 512 x 512 windows out
of a few tiles (written under --out, never into the repository). Each dataset's results.csv, results.json and
learning_curve.png are written under --out; the tables are logged.
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe

log = logging.getLogger("benchmarks")


def _default_data() -> Path:
    """../shared/data beside the project (or beside the main checkout, for a worktree under /work/wt)."""
    root = Path(__file__).resolve().parents[1]
    for candidate in (root.parent / "shared" / "data", root.parent.parent / "shared" / "data"):
        if candidate.exists():
            return candidate
    return root.parent / "shared" / "data"


DATA = _default_data()
STRATEGIES = "error,superpixel,entropy,random"

_QUICK_TRAIN = ["--iterations", "3", "--epochs", "4", "--patch-size", "64", "--batch-size", "16",
                "--patches-per-epoch", "400", "--overlap", "32", "--mc-samples", "4"]  # fmt: skip
QUICK = {
    "bsb_toy": [*_QUICK_TRAIN, "--tile-size", "256"],
    "massachusetts_roads": [*_QUICK_TRAIN, "--tile-size", "512", "--points-per-class", "3", "--initial-points", "3"],
}
FULL = {
    "bsb_toy": ["--iterations", "6", "--epochs", "20", "--patch-size", "256", "--batch-size", "8"],
    "massachusetts_roads": ["--iterations", "6", "--epochs", "20", "--patch-size", "256", "--batch-size", "8",
                            "--points-per-class", "5", "--initial-points", "5"],
}  # fmt: skip


def main(argv: list[str]) -> None:
    options = _parse(argv)
    quick = options.quick
    data, out = Path(options.data), Path(options.out)
    datasets = options.datasets.split(",")
    strategies = options.strategies
    log.info("machine: %s", describe())
    for name in datasets:
        manifest = data / name / "manifest.json"
        if not manifest.exists():
            log.info("%s: %s is missing, skipped", name, manifest)
            continue
        if quick and name == "massachusetts_roads":
            manifest = _crop_manifest(manifest, out / "massachusetts_roads_crops")
        folder = out / ("quick" if quick else "full") / name
        argv_sim = ["simulate", "--events", "json", "--device", options.device, "--manifest",
                    str(manifest), "--out", str(folder), "--strategy", strategies, "--dense",
                    *(QUICK if quick else FULL)[name]]  # fmt: skip
        log.info("%s: python -m engine %s", name, " ".join(argv_sim))
        started = time.monotonic()
        _run_engine(argv_sim, folder / "events.jsonl")
        log.info("%s: %.0f s", name, time.monotonic() - started)
        _log_tables(json.loads((folder / "results.json").read_text()))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_label_efficiency")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default="/tmp/sparse_al_label_efficiency")
    parser.add_argument("--datasets", default="bsb_toy,massachusetts_roads")
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--device", default="auto")
    return parser.parse_known_args(argv)[0]  # other benchmarks' options are ignored


def _run_engine(argv: list[str], events_path: Path) -> None:
    import contextlib

    from engine.cli import main as engine_main

    events_path.parent.mkdir(parents=True, exist_ok=True)
    with open(events_path, "w") as stream, contextlib.redirect_stdout(stream):
        code = engine_main(argv)
    if code != 0:
        raise RuntimeError(f"simulate failed ({code}); see {events_path}")


def _crop_manifest(manifest: Path, folder: Path, count: int = 8, size: int = 512, val: int = 2) -> Path:
    """512 x 512 crops of ``count`` tiles taken in a seeded random order: in each tile, the window with the most road
    among those at least 90% labelled, kept when at least 2% of it is road. The first ``val`` score, the others
    train."""
    import rasterio
    from rasterio.windows import Window

    data = json.loads(manifest.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index in np.random.default_rng(0).permutation(len(data["items"])).tolist():
        if len(items) == count:
            break
        item = data["items"][index]
        with rasterio.open(manifest.parent / item["label"]) as ds:
            label = ds.read(1)
        labelled = _box_sum(label != data["label_ignore_value"], size)[::32, ::32]
        roads = _box_sum(label == 1, size)[::32, ::32]
        score = np.where(labelled >= 0.9 * size * size, roads, -1)
        r, c = np.unravel_index(np.argmax(score), score.shape)
        if score[r, c] < 0.02 * size * size:
            continue
        window = Window(int(c) * 32, int(r) * 32, size, size)
        paths = {}
        for key in ("image", "label"):
            with rasterio.open(manifest.parent / item[key]) as ds:
                profile = ds.profile
                profile.update(width=size, height=size, transform=ds.window_transform(window))
                target = folder / f"{Path(item[key]).stem}_{key}.tif"
                partial = target.with_suffix(f".{os.getpid()}.partial.tif")  # another run may be reading target
                with rasterio.open(partial, "w", **profile) as dst:
                    dst.write(ds.read(window=window))
                partial.replace(target)
                paths[key] = target.name
        items.append({**paths, "split": "val" if len(items) < val else "train"})
    path = folder / "manifest.json"
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({**data, "name": "massachusetts_roads (512 px crops)", "items": items}, indent=1))
    partial.replace(path)
    return path


def _box_sum(mask: np.ndarray, side: int) -> np.ndarray:
    """Sum of ``mask`` over the side x side box starting at each cell (boxes that would leave the array: -1)."""
    padded = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
    padded[1:, 1:] = np.cumsum(np.cumsum(mask, 0), 1)
    out = np.full(mask.shape, -1.0)
    h, w = mask.shape[0] - side + 1, mask.shape[1] - side + 1
    if h > 0 and w > 0:
        out[:h, :w] = padded[side:, side:] - padded[:h, side:] - padded[side:, :w] + padded[:h, :w]
    return out


def _log_tables(summary: dict) -> None:
    rows = summary["rows"]
    classes = [key[4:] for key in rows[0] if key.startswith("iou_")]
    log.info("%s: %d train / %d val images, %d labelable training pixels, dense mIoU %.1f%%", summary["dataset"],
             summary["train_images"], summary["val_images"], summary["labelable_pixels"],
             100 * (summary["dense_miou"] or float("nan")))  # fmt: skip
    log.info("| strategy | iteration | labelled pixels | labelled %% | mIoU %% | %% of dense | %s |",
             " | ".join(f"IoU {c}" for c in classes))  # fmt: skip
    log.info("|%s", "---|" * (6 + len(classes)))
    for row in rows:
        log.info("| %s | %d | %d | %.4f | %.1f | %.1f | %s |", row["strategy"], row["iteration"], row["labeled_pixels"],
                 row["labeled_percent"], 100 * row["miou"], row["percent_of_dense"],
                 " | ".join(f"{100 * row[f'iou_{c}']:.1f}" for c in classes))  # fmt: skip
