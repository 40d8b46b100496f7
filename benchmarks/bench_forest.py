"""The random-forest baseline on bsb_toy: trained on the seed points (iteration 0 of the labelling loop) and on
200,000 densely labelled pixels; mIoU on the validation patches, fit and predict seconds, and the prediction
again with the numpy traversal instead of scikit-learn's compiled trees (the baseline of the compiled ones: same
probabilities, checked, and the ratio of their seconds).

    python -m benchmarks bench_forest [--data=DIR] [--dense-pixels=N] [--trees=N] [--n-jobs=N] [--seed=N]

(options as --name=value: the benchmark runner passes on only the arguments that start with a dash)

The issue quotes, measured outside the project: 0.303 mIoU on the seed points, 0.458 on 200,000 dense pixels.
"""

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from benchmarks.machine import describe
from engine.classes import parse_classes
from engine.events import Events
from engine.forest import ForestModel, ForestOptions, forest_probabilities, train_forest
from engine.models import ModelConfig
from engine.points import PixelLabels
from engine.raster_io import open_raster, read_window

log = logging.getLogger("benchmarks.forest")
DATA = Path("/work/shared/data/bsb_toy")
REFERENCE = {"seed points": 0.303, "dense": 0.458}


@dataclass
class Run:
    name: str
    pixels: int
    miou: float
    ious: list[float]
    accuracy: float
    fit_s: float
    predict_s: float
    numpy_predict_s: float
    nodes: int


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Confusion matrix (rows: truth, columns: prediction) of the pixels in ``mask``."""
    keep = (truth < n_classes) if mask is None else mask & (truth < n_classes)
    index = truth[keep].astype(np.int64) * n_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from both truth and prediction."""
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    return float(np.nanmean(iou_per_class(matrix)))


def _read_band(path: Path) -> tuple[np.ndarray, float | None]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.nodata


def seed_labels(folder: Path, items: list[dict], n_classes: int) -> list[PixelLabels]:
    labels = []
    for item in items:
        seeds, nodata = _read_band(folder / item["seed_points"])
        marked = (seeds < n_classes) if nodata is None else (seeds != nodata) & (seeds < n_classes)
        rows, cols = np.nonzero(marked)
        labels.append(PixelLabels(rows, cols, seeds[rows, cols].astype(np.int64)))
    return labels


def dense_labels(folder: Path, items: list[dict], n_classes: int, pixels: int, seed: int) -> list[PixelLabels]:
    """``pixels`` pixels drawn uniformly without replacement from all the items' dense labels."""
    maps = [_read_band(folder / item["label"])[0] for item in items]
    sizes = np.array([m.size for m in maps])
    picked = np.random.default_rng(seed).choice(sizes.sum(), min(pixels, int(sizes.sum())), replace=False)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    labels = []
    for k, label in enumerate(maps):
        flat = np.sort(picked[(picked >= starts[k]) & (picked < starts[k + 1])] - starts[k])
        rows, cols = np.unravel_index(flat, label.shape)
        keep = label[rows, cols] < n_classes
        labels.append(PixelLabels(rows[keep], cols[keep], label[rows, cols][keep].astype(np.int64)))
    return labels


def evaluate(model: ForestModel, config: ModelConfig, folder: Path, items: list[dict], n_jobs: int):
    n_classes = len(config.classes)
    matrix = np.zeros((n_classes, n_classes), np.int64)
    seconds = 0.0
    for item in items:
        with open_raster(folder / item["image"]) as ds:
            image, valid = read_window(ds, config.bands, 0, 0, ds.height, ds.width)
        start = time.perf_counter()
        probs = forest_probabilities(model, config, image, valid, workers=n_jobs)
        seconds += time.perf_counter() - start
        truth, _ = _read_band(folder / item["label"])
        matrix += confusion(truth, probs.argmax(0), n_classes, valid)
    return matrix, seconds


def run_one(name, folder, train, val, labels, classes, options) -> Run:
    images = [folder / item["image"] for item in train]
    quiet = Events("json", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    start = time.perf_counter()
    model, config = train_forest(images, labels, [1, 2, 3], classes, options, quiet)
    fit_s = time.perf_counter() - start
    if model.compiled is None:
        raise RuntimeError("scikit-learn's trees could not be rebuilt: nothing to compare the numpy traversal with")
    matrix, predict_s = evaluate(model, config, folder, val, options.n_jobs)
    model.__dict__["compiled"] = None  # the numpy traversal from here on
    numpy_matrix, numpy_s = evaluate(model, config, folder, val, options.n_jobs)
    if not np.array_equal(matrix, numpy_matrix):
        raise RuntimeError("the compiled trees and the numpy traversal predicted different classes")
    ious = iou_per_class(matrix)
    accuracy = float(np.trace(matrix) / matrix.sum())
    pixels = sum(len(lab) for lab in labels)
    run = Run(name, pixels, mean_iou(matrix), ious.tolist(), accuracy, fit_s, predict_s, numpy_s, model.n_nodes)
    log.info("%-12s %8d px  mIoU %.3f (reference %.3f)  accuracy %.3f  fit %.1f s  predict %.1f s (numpy "
             "traversal %.1f s, %.1fx)  %d nodes", name, pixels, run.miou, REFERENCE[name], accuracy, fit_s,
             predict_s, numpy_s, numpy_s / predict_s, model.n_nodes)  # fmt: skip
    return run


def markdown(runs: list[Run], classes: list[str], argv: list[str], val_items: int) -> str:
    head = "| labels | labelled pixels | mIoU | issue's reference | pixel accuracy | " + " | ".join(
        f"IoU {c}" for c in classes
    )
    head += " | fit s | predict s (val) | predict s, numpy traversal | speed-up | nodes |"
    lines = [head, "|" + "---|" * (len(classes) + 10)]
    for r in runs:
        ious = " | ".join(f"{v:.3f}" for v in r.ious)
        lines.append(f"| {r.name} | {r.pixels:,} | **{r.miou:.3f}** | {REFERENCE[r.name]:.3f} | {r.accuracy:.3f} | "
                     f"{ious} | {r.fit_s:.1f} | {r.predict_s:.1f} | {r.numpy_predict_s:.1f} | "
                     f"{r.numpy_predict_s / r.predict_s:.1f}x | {r.nodes:,} |")  # fmt: skip
    command = " ".join(["python -m benchmarks bench_forest", *argv])
    return "\n".join([f"Command: `{command}`; {val_items} validation patches.", "", *lines])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks bench_forest", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="bsb_toy folder (manifest.json)")
    parser.add_argument("--dense-pixels", type=int, default=200_000, help="0 skips the dense run")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = json.loads((args.data / "manifest.json").read_text())
    names = manifest["classes"]
    classes = parse_classes(names)
    train = [item for item in manifest["items"] if item["split"] == "train"]
    val = [item for item in manifest["items"] if item["split"] == "val"]
    options = ForestOptions(trees=args.trees, seed=args.seed, n_jobs=args.n_jobs)
    log.info("random forest on %s: %d train, %d val patches; %s", manifest["name"], len(train), len(val), describe())
    runs = [run_one("seed points", args.data, train, val, seed_labels(args.data, train, len(names)), classes, options)]
    if args.dense_pixels:
        dense = dense_labels(args.data, train, len(names), args.dense_pixels, args.seed)
        runs.append(run_one("dense", args.data, train, val, dense, classes, options))
    log.info("\n%s", markdown(runs, names, argv, len(val)))
    return 0
