"""The label-efficiency simulation: the human-in-the-loop cycle with a dense reference playing the annotator.

Per strategy: start from the dataset's seed points (or a few random points per class per image), then per iteration
train (warm-started from the previous iteration's model), score on the validation images, predict the training
images and let the strategy choose new points, which the reference labels. Every iteration is a row: labelled pixels
and their share of the training pixels, mIoU and per-class IoU on the validation images, wall time. ``dense`` trains
the same network on the dense labels (cross-entropy, no sparse-label levers) for the percent-of-dense column, for at
least the total training of one strategy's whole run (``dense_epochs``, default iterations x epochs).
``model="rf"`` runs the loop with the random-forest baseline instead of the network (refit on every iteration's
labels; no dense run: the forest does not scale to millions of pixels).
"""

import csv
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from shapely.geometry import Point

from engine import cancel
from engine.atomic import atomic_file
from engine.classes import ClassInfo
from engine.errors import InputError
from engine.events import Events, plain
from engine.forest import ForestOptions, save_forest, train_forest
from engine.learning_curve import plot_learning_curve
from engine.manifest import Manifest, ManifestItem, read_label, read_seed_points
from engine.metrics import confusion_matrix, iou_per_class, mean_iou, overall_accuracy
from engine.oracle import answer, answer_regions, error_clicks, labelled_mask, points_per_class
from engine.points import PixelLabels
from engine.predict import predict_probabilities
from engine.raster_io import open_raster
from engine.suggest import GPKG_OPTIONS, SuggestOptions, select, suggest_tile
from engine.train import TrainOptions, train

log = logging.getLogger("engine")

STRATEGIES = ("error", "superpixel", "entropy", "margin", "random")
MODELS = ("unet", "rf")
# the dense-label reference trains with plain cross-entropy: the sparse-label levers are off
DENSE_TRAINING = {"loss": "ce", "expand_clicks": False, "consistency": 0.0, "distill": 0.0, "affinity": 0.0,
                  "pretrain_steps": 0, "forest_prior": False, "forest_ensemble": False, "prior_correction": False,
                  "superpixel_smoothing": False, "flip_views": 1, "forest_expansion": False}  # fmt: skip


@dataclass
class _Trained:
    """What one iteration trained: the network (or the forest) with its config."""

    network: object
    config: object
    final_loss: float = math.nan


@dataclass
class SimulateOptions:
    strategies: list[str] = field(default_factory=lambda: ["error"])
    iterations: int = 5
    points_per_class: int = 1  # error: clicks per class per image per iteration; others: the budget per image
    initial_points: int = 1  # per class per image, when the manifest has no seed points
    budget: int | None = None  # clicks per iteration of the other strategies (default points_per_class x C x images)
    label_regions: bool = False  # superpixel: label the queried superpixels whole
    dense: bool = False
    dense_epochs: int | None = None  # default: iterations x epochs (the total of one strategy's run)
    model: str = "unet"  # or "rf": the random-forest baseline
    val_fraction: float = 0.2
    bands: list[int] | None = None
    train: TrainOptions = field(default_factory=TrainOptions)
    suggest: SuggestOptions = field(default_factory=SuggestOptions)
    seed: int = 0


@dataclass
class Sample:
    """One manifest item in memory: the image (its dtype), where it is valid, the reference and where it has a
    class (``labelable``: what the annotator can label and what is scored)."""

    item: ManifestItem
    image: np.ndarray
    valid: np.ndarray
    reference: np.ndarray
    labelable: np.ndarray
    transform: object
    crs: object


def load_samples(items: list[ManifestItem], manifest: Manifest, bands: list[int]) -> list[Sample]:
    samples = []
    for item in items:
        with open_raster(item.image, "manifest") as ds:
            if ds.count < max(bands):
                raise InputError(f"--bands: {item.image} has {ds.count} band(s), fewer than bands {bands}", "bands")
            image = ds.read(bands)
            valid = np.all(ds.read_masks(bands) > 0, axis=0)
            transform, crs = ds.transform, ds.crs
        reference, has_class = read_label(item, manifest)
        if reference.shape != valid.shape:
            raise InputError(
                f"--manifest: {item.label} is {reference.shape[1]} x {reference.shape[0]} pixels but "
                f"{item.image} is {valid.shape[1]} x {valid.shape[0]}; they must match",
                "manifest",
            )
        samples.append(Sample(item, image, valid, reference, has_class & valid, transform, crs))
    return samples


class _Part(Events):
    """The events of one stage (a training run), with progress scaled into the simulation's overall fraction."""

    def __init__(self, parent: Events, start: float, span: float):
        super().__init__(parent.mode, parent.stream)
        self.parent, self.start, self.span = parent, start, span

    def progress(self, stage: str, done: int, total: int, fraction: float | None = None) -> None:
        own = done / total if total else 1.0
        self.parent.progress(stage, done, total, self.start + self.span * own)

    def metric(self, name: str, value: float, **where) -> None:
        pass  # per-epoch losses of the inner runs would drown the per-iteration metrics


@dataclass
class Labels:
    """The labels of one training image: what trains (``pixels``) and the clicks behind them (``clicks``)."""

    pixels: PixelLabels
    clicks: PixelLabels
    click_iteration: np.ndarray
    click_origin: list[str]

    def add(self, pixels: PixelLabels, clicks: PixelLabels, iteration: int, origin: str) -> None:
        self.pixels = self.pixels.extend(pixels.rows, pixels.cols, pixels.classes)
        self.clicks = self.clicks.extend(clicks.rows, clicks.cols, clicks.classes)
        self.click_iteration = np.concatenate([self.click_iteration, np.full(len(clicks), iteration, np.int64)])
        self.click_origin += [origin] * len(clicks)


class Simulation:
    def __init__(
        self,
        manifest: Manifest,
        options: SimulateOptions,
        device: torch.device,
        events: Events,
        out: Path,
        on_row: Callable[[dict], None] | None = None,
    ):
        if options.model not in MODELS:
            raise InputError(f"--model: {options.model} is not one of {', '.join(MODELS)}", "model")
        if options.dense and options.model == "rf":
            raise InputError("--dense trains the network; run it without --model rf", "dense")
        self.manifest, self.options, self.device, self.events = manifest, options, device, events
        self.out, self.on_row = Path(out), on_row
        self.classes: list[ClassInfo] = manifest.classes
        train_items, val_items = manifest.split(options.val_fraction, options.seed)
        with open_raster(train_items[0].image, "manifest") as ds:
            self.bands = options.bands or list(range(1, ds.count + 1))
        self.train_samples = load_samples(train_items, manifest, self.bands)
        self.val_samples = load_samples(val_items, manifest, self.bands)
        self.scored_on = "train" if val_items == train_items else "val"
        self.labelable_pixels = int(sum(s.labelable.sum() for s in self.train_samples))
        self.reference_shares = self._reference_shares()
        if self.labelable_pixels == 0:
            raise InputError(f"--manifest: the training labels of {manifest.path} hold no class pixels", "manifest")
        self.rows: list[dict] = []
        self.dense_miou: float | None = None
        runs = len(options.strategies) * options.iterations + (options.iterations if options.dense else 0)
        self._unit = 1.0 / max(1, runs)
        self._done_units = 0

    # the whole run -------------------------------------------------------------------------------------------

    def run(self) -> list[dict]:
        self.out.mkdir(parents=True, exist_ok=True)
        initial = self._initial_labels()
        if self.options.dense:
            self._run_dense()
        for strategy in self.options.strategies:
            labels = [Labels(lab, lab, np.zeros(len(lab), np.int64), ["seed"] * len(lab)) for lab in initial]
            self._run_strategy(strategy, labels)
        return self.rows

    def _initial_labels(self) -> list[PixelLabels]:
        seeds = [read_seed_points(s.item, self.manifest) for s in self.train_samples]
        if any(len(s) for s in seeds):
            out = []
            for sample, seed in zip(self.train_samples, seeds, strict=True):
                keep = sample.labelable[seed.rows, seed.cols]
                out.append(PixelLabels(seed.rows[keep], seed.cols[keep], seed.classes[keep]))
            return out
        return [
            points_per_class(
                s.reference,
                s.labelable,
                len(self.classes),
                self.options.initial_points,
                np.random.default_rng([self.options.seed, 0, k]),
            )
            for k, s in enumerate(self.train_samples)
        ]

    def _train(self, labels, epochs: int, seed: int, init: Path | None, model_dir: Path, units: int, **overrides):
        part = _Part(self.events, self._done_units * self._unit, units * self._unit)
        rasters = [s.item.image for s in self.train_samples]
        if self.options.model == "rf":
            forest_options = ForestOptions(seed=seed)
            model, config = train_forest(rasters, labels, self.bands, self.classes, forest_options, part)
            save_forest(model_dir, model, config)
            result = _Trained(model, config)
        else:
            options = TrainOptions(**{**asdict(self.options.train), "epochs": epochs, "seed": seed, **overrides})
            trained = train(rasters, labels, self.bands, self.classes, options, self.device, part, init, model_dir)
            result = _Trained(trained.model, trained.config, trained.final_loss)
        self._done_units += units
        return result

    def _run_dense(self) -> None:
        """The same network on every labelled pixel: the issue's reference (cross-entropy, no sparse levers)."""
        cancel.check()
        start = time.monotonic()
        labels = [_dense_labels(s) for s in self.train_samples]
        epochs = self.options.dense_epochs or self.options.train.epochs * self.options.iterations
        result = self._train(
            labels,
            epochs,
            self.options.seed,
            None,
            self.out / "dense" / "model",
            self.options.iterations,
            **DENSE_TRAINING,
        )
        cm = self._score(result.network, result.config)
        self.dense_miou = mean_iou(cm)
        self._add_row(
            "dense",
            self.options.iterations - 1,
            sum(len(lab) for lab in labels),
            0,
            cm,
            result,
            time.monotonic() - start,
            time.monotonic() - start,
        )

    def _run_strategy(self, strategy: str, labels: list[Labels]) -> None:
        folder = self.out / strategy
        model_dir = folder / "model"
        began = time.monotonic()
        for iteration in range(self.options.iterations):
            cancel.check()
            start = time.monotonic()
            init = model_dir if iteration > 0 else None
            result = self._train(
                [lab.pixels for lab in labels],
                self.options.train.epochs,
                self.options.seed + iteration,
                init,
                model_dir,
                1,
            )
            cm = self._score(result.network, result.config)
            clicks = sum(len(lab.clicks) for lab in labels)
            pixels = sum(len(lab.pixels) for lab in labels)
            if iteration + 1 < self.options.iterations:
                self._choose(strategy, labels, result.network, result.config, iteration + 1)
            _write_points(folder / "points.gpkg", labels, self.train_samples, self.classes, strategy)
            now = time.monotonic()
            self._add_row(strategy, iteration, pixels, clicks, cm, result, now - start, now - began)

    # one iteration's parts ------------------------------------------------------------------------------------

    def _predict(self, network, config, sample: Sample, mc_samples: int = 0):
        s = self.options.suggest
        return predict_probabilities(
            network,
            config,
            sample.image.astype(np.float32),
            sample.valid,
            self.device,
            tile_size=s.tile_size,
            overlap=s.overlap,
            batch_size=s.batch_size,
            mc_samples=mc_samples,
        )

    def _score(self, network, config) -> np.ndarray:
        cm = np.zeros((len(self.classes), len(self.classes)), np.int64)
        for sample in self.val_samples:
            cancel.check()
            predicted = np.argmax(self._predict(network, config, sample).probs, axis=0)
            cm += confusion_matrix(predicted, sample.reference, len(self.classes), sample.labelable)
        return cm

    def _choose(self, strategy: str, labels: list[Labels], network, config, iteration: int) -> None:
        """Add the points the strategy chooses (labelled from the reference) to ``labels``."""
        num = len(self.classes)
        if strategy == "error":
            for k, (sample, lab) in enumerate(zip(self.train_samples, labels, strict=True)):
                cancel.check()
                predicted = np.argmax(self._predict(network, config, sample).probs, axis=0)
                rng = np.random.default_rng([self.options.seed, iteration, k])
                done = labelled_mask(lab.pixels, sample.reference.shape)
                new = error_clicks(
                    predicted, sample.reference, sample.labelable, num, self.options.points_per_class, rng, done
                )
                lab.add(new, new, iteration, "user")
            return
        options = SuggestOptions(**{**asdict(self.options.suggest), "strategy": strategy, "budget": self._budget()})
        mc = options.mc_samples if options.needs_mc() else 0
        tiles = []
        for k, (sample, lab) in enumerate(zip(self.train_samples, labels, strict=True)):
            cancel.check()
            prediction = self._predict(network, config, sample, mc)
            rng = np.random.default_rng([self.options.seed, iteration, k])
            done = labelled_mask(lab.pixels, sample.reference.shape)
            tiles.append(
                suggest_tile(
                    sample.image,
                    sample.labelable,
                    prediction.probs,
                    prediction.bald,
                    options,
                    rng,
                    done,
                    keep_segments=self.options.label_regions,
                )
            )
        for sample, lab, tile, taken in zip(self.train_samples, labels, tiles, select(tiles, options), strict=True):
            c = tile.candidates.take(taken)
            done = labelled_mask(lab.pixels, sample.reference.shape)
            clicks = answer(c.rows, c.cols, sample.reference, sample.labelable, done)
            pixels = clicks
            if self.options.label_regions and tile.segments is not None:
                pixels = answer_regions(tile.segments, c.regions, sample.reference, sample.labelable, done)
            lab.add(pixels, clicks, iteration, "suggestion")

    def _budget(self) -> int:
        if self.options.budget is not None:
            return self.options.budget
        return self.options.points_per_class * len(self.classes) * len(self.train_samples)

    # results ---------------------------------------------------------------------------------------------------

    def _add_row(
        self,
        strategy: str,
        iteration: int,
        pixels: int,
        clicks: int,
        cm: np.ndarray,
        result,
        seconds: float,
        elapsed: float,
    ) -> None:
        ious = iou_per_class(cm)
        miou = mean_iou(cm)
        row = {
            "strategy": strategy,
            "iteration": iteration,
            "clicks": clicks,
            "labeled_pixels": pixels,
            "labeled_percent": 100.0 * pixels / self.labelable_pixels,
            "miou": miou,
            "overall_accuracy": overall_accuracy(cm),
            **{f"iou_{c.name}": float(v) for c, v in zip(self.classes, ious, strict=True)},
            **{f"share_{c.name}": float(v) for c, v in zip(self.classes, cm.sum(0) / max(cm.sum(), 1), strict=True)},
            "percent_of_dense": 100.0 * miou / self.dense_miou if self.dense_miou else math.nan,
            "train_loss": result.final_loss,
            "seconds": seconds,
            "elapsed_seconds": elapsed,
        }
        self.rows.append(row)
        self.events.metric("miou", miou, step=iteration, strategy=strategy)
        if self.on_row is not None:
            self.on_row(row)
        self.write_results()

    def _reference_shares(self) -> dict[str, float]:
        """Each class's share of the scored images' labelled pixels (the rows' ``share_`` columns are the
        predictions'; a collapse shows as a class far above its share)."""
        counts = sum(np.bincount(s.reference[s.labelable], minlength=len(self.classes)) for s in self.val_samples)
        return {c.name: float(n) / max(int(counts.sum()), 1) for c, n in zip(self.classes, counts, strict=True)}

    def write_results(self) -> None:
        with atomic_file(self.out / "results.csv") as tmp:
            tmp.write_text(rows_to_csv(self.rows))
        summary = {
            "manifest": str(self.manifest.path),
            "dataset": self.manifest.name,
            "scored_on": self.scored_on,
            "train_images": len(self.train_samples),
            "val_images": len(self.val_samples),
            "labelable_pixels": self.labelable_pixels,
            "reference_shares": self.reference_shares,
            "dense_miou": self.dense_miou,
            "options": plain(asdict(self.options)),
            "rows": self.rows,
        }
        with atomic_file(self.out / "results.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=1, default=str, allow_nan=True))
        plot_learning_curve(
            self.rows, self.out / "learning_curve.png", f"Label efficiency on {self.manifest.name}", self.dense_miou
        )


def _dense_labels(sample: Sample) -> PixelLabels:
    rows, cols = np.nonzero(sample.labelable)
    return PixelLabels(rows.astype(np.int64), cols.astype(np.int64), sample.reference[rows, cols].astype(np.int64))


def rows_to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _write_points(path: Path, labels: list[Labels], samples: list[Sample], classes: list[ClassInfo], strategy: str):
    """The clicks so far as a point layer: class, iteration, origin (seed, user: an error click, suggestion)."""
    frames = []
    for sample, lab in zip(samples, labels, strict=True):
        if not len(lab.clicks):
            continue
        xs, ys = sample.transform * (lab.clicks.cols + 0.5, lab.clicks.rows + 0.5)
        frame = gpd.GeoDataFrame(
            {
                "class": [classes[int(c)].name for c in lab.clicks.classes],
                "iteration": lab.click_iteration,
                "origin": lab.click_origin,
                "strategy": strategy,
                "image": sample.item.image.name,
            },
            geometry=[Point(x, y) for x, y in zip(np.atleast_1d(xs), np.atleast_1d(ys), strict=True)],
            crs=sample.crs,
        )
        frames.append(frame.to_crs(samples[0].crs) if sample.crs != samples[0].crs else frame)
    if not frames:
        return
    points = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=samples[0].crs)
    with atomic_file(path) as tmp:
        points.to_file(tmp, layer="points", driver="GPKG", dataset_options=GPKG_OPTIONS)
