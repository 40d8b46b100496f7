"""Engine jobs (the JSON files of CONTRACT.md) for train, predict and suggest. Plain Python."""

import json
from dataclasses import dataclass
from pathlib import Path

from .classes import Classes


@dataclass(frozen=True)
class TrainOptions:
    """Training settings (Sparse AL settings dialog); 0 or "" leaves the engine's default."""

    epochs: int = 20
    patch_size: int = 256
    batch_size: int = 8
    patches_per_epoch: int = 0
    encoder: str = ""
    # "unet": the network with a random forest fit on the same clicks, averaged (the engine's default, most accurate);
    # "network": the network alone (faster prediction); "rf": the random forest alone (seconds per iteration on a CPU)
    model: str = "unet"
    flip_views: int = 0  # the network's predictions averaged over 4 or 2 flips of each tile, 1: off; 0: engine default


@dataclass(frozen=True)
class EngineStep:
    """One engine run: ``python -m engine <command> --job <job_file>``; its stderr goes to ``log_file``."""

    command: str
    job: dict
    job_file: Path
    label: str
    raster: str = ""  # the input raster, for predict and suggest

    @property
    def log_file(self) -> Path:
        return self.job_file.with_suffix(".log")


def train_job(rasters: list[str], points: Path, classes: Classes, out: Path, init: Path | None,
              options: TrainOptions) -> dict:  # fmt: skip
    names = [{"name": c.name, "color": c.color} for c in classes]  # weights belong to predictions, not training
    job = {"raster": list(rasters), "points": str(points), "classes": names, "class_field": "class", "out": str(out)}
    if options.model == "rf":  # refit on every point: nothing to warm-start, no network options
        return {**job, "model": "rf"}
    job.update(epochs=options.epochs, patch_size=options.patch_size, batch_size=options.batch_size)
    if options.model == "network":
        job["forest_ensemble"] = False
    if options.flip_views:
        job["flip_views"] = options.flip_views
    if options.patches_per_epoch:
        job["patches_per_epoch"] = options.patches_per_epoch
    if options.encoder and init is None:
        job["encoder"] = options.encoder
    if init is not None:
        job["init"] = str(init)
    return job


def predict_job(model: Path, raster: str, out: Path, bbox: str | None = None, weights: list[str] = (),
                shares: list[str] = ()) -> dict:  # fmt: skip
    """``weights``, ``shares``: the engine's --class-weight and --class-share values (classes.class_weights and
    class_shares)."""
    job = {"model": str(model), "raster": raster, "out": str(out)}  # one raster: --raster is not repeatable here
    if bbox:
        job["bbox"] = bbox
    return _with_class_settings(job, weights, shares)


def suggest_job(model: Path, rasters: list[str], out: Path, strategy: str, budget: int, iteration: int,
                points: Path | None = None, weights: list[str] = (), shares: list[str] = ()) -> dict:  # fmt: skip
    """All rasters in one run (--raster repeats; --budget is the total). Pixels of ``points`` are not suggested;
    ``weights`` and ``shares`` as in predict_job (suggestions show the weighted classes)."""
    job = {"model": str(model), "raster": list(rasters), "out": str(out), "strategy": strategy,
           "budget": int(budget), "iteration": int(iteration)}  # fmt: skip
    if points is not None:
        job["points"] = str(points)
    return _with_class_settings(job, weights, shares)


def _with_class_settings(job: dict, weights: list[str], shares: list[str]) -> dict:
    if weights:
        job["class_weight"] = list(weights)
    if shares:
        job["class_share"] = list(shares)
    return job


def bbox_text(xmin: float, ymin: float, xmax: float, ymax: float, authid: str) -> str:
    """The engine's --bbox: minx,miny,maxx,maxy,EPSG:xxxx."""
    return f"{xmin:.6f},{ymin:.6f},{xmax:.6f},{ymax:.6f},{authid}"


def model_classes(model_dir: Path) -> list[str] | None:
    """Class names of a model directory (its config.json), or None when it is not readable."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        return [str(c["name"]) for c in config["classes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_kind(model_dir: Path) -> str | None:
    """ "unet" for a network's model directory (with or without its forest), "rf" for the random forest's, None when
    it is not readable."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        return "rf" if config.get("kind") == "random_forest" else "unet"
    except (OSError, ValueError, AttributeError):
        return None


def warm_start(previous_model: Path | None, classes: Classes, kind: str = "unet") -> Path | None:
    """The previous iteration's network when its classes are the session's (same names, same order, as the engine's
    --init requires), else None: a changed class list, a forest, or another kind of model starts a fresh model.
    ``kind``: the settings' model; "unet" and "network" both continue the previous network."""
    if previous_model is None or kind == "rf" or model_kind(previous_model) != "unet":
        return None
    names = model_classes(previous_model)
    return Path(previous_model) if names == [c.name for c in classes] else None
