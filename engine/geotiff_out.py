"""The GeoTIFFs of a prediction, written block by block under temporary names and renamed into place at the end.

- ``prediction.tif``: uint8 class index, nodata 255, a colour table from the class colours, the class names in the
  metadata (``CLASS_NAMES`` as a JSON list, ``CLASS_<i>`` each, ``CLASSES`` with colours) and the band description.
- ``uncertainty.tif``: float32 in [0, 1], nodata NaN; the measure in the ``UNCERTAINTY`` tag and band description.
- ``probabilities.tif`` (optional): float32, one band per class named after it, nodata NaN.

All are tiled (256 x 256), DEFLATE-compressed (level 1: on float noise higher levels cost time and gain little),
BigTIFF when needed, with internal overviews (nearest for classes, average for the rest); with ``cog`` they are Cloud
Optimized GeoTIFFs. Blocks arrive aligned to the 256 x 256 tiles, so every tile is compressed once.
"""

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from engine import cancel, uncertainty
from engine.atomic import atomic_file
from engine.classes import ClassInfo
from engine.tiling import Block

BLOCK = 256
PREDICTION_NODATA = 255
FLOAT_NODATA = float("nan")
MIN_OVERVIEW = 128  # overviews are added while their longer side is at least this many pixels
GDAL_ENV = {"GDAL_PAM_ENABLED": "NO", "GDAL_CACHEMAX": 64, "GDAL_NUM_THREADS": "ALL_CPUS"}


def overview_factors(width: int, height: int) -> list[int]:
    factors, f = [], 2
    while math.ceil(max(width, height) / f) >= MIN_OVERVIEW:
        factors.append(f)
        f *= 2
    return factors


def hex_to_rgba(color: str) -> tuple[int, int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), 255


@dataclass
class OutputSpec:
    """Where and what to write: the grid (CRS, transform, size) and the content."""

    out_dir: Path
    crs: object
    transform: object
    width: int
    height: int
    classes: list[ClassInfo]
    uncertainty: str = "entropy"
    probabilities: bool = False
    cog: bool = False
    tags: dict = field(default_factory=dict)

    def paths(self) -> dict[str, Path]:
        names = ["prediction", "uncertainty"] + (["probabilities"] if self.probabilities else [])
        return {name: Path(self.out_dir) / f"{name}.tif" for name in names}


class PredictionWriter:
    """Use as a context manager: ``write(block)`` from one thread at a time; ``finish()`` before leaving.

    Leaving without ``finish()``, or with an exception (a cancel included), removes every temporary file and leaves
    the previous outputs, if any, untouched; leaving after ``finish()`` renames all outputs into place.
    """

    def __init__(self, spec: OutputSpec):
        self.spec = spec
        self.class_pixels = np.zeros(len(spec.classes), np.int64)
        self.uncertainty_sum = 0.0
        self._stack = contextlib.ExitStack()
        self._datasets: dict[str, rasterio.io.DatasetWriter] = {}
        self._targets: dict[str, Path] = {}
        self._finished = False

    def __enter__(self) -> "PredictionWriter":
        self._stack.__enter__()
        try:
            self._stack.enter_context(rasterio.Env(**GDAL_ENV))
            Path(self.spec.out_dir).mkdir(parents=True, exist_ok=True)
            for name, path in self.spec.paths().items():
                target = self._stack.enter_context(atomic_file(path))
                self._targets[name] = target
                source = self._source_path(target)
                if source != target:
                    self._stack.callback(_remove, source)
                self._datasets[name] = rasterio.open(source, "w", **self._profile(name))
                self._stack.callback(self._datasets[name].close)
            self._describe()
        except BaseException:
            self._stack.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and not self._finished:  # never rename unfinished outputs into place
            error = RuntimeError("PredictionWriter left before finish()")
            self._stack.__exit__(RuntimeError, error, None)
            raise error
        return self._stack.__exit__(exc_type, exc, tb)

    def _source_path(self, target: Path) -> Path:
        """Where the blocks go: the target itself, or for a COG an intermediate GeoTIFF beside it."""
        return target.with_name(target.stem + ".blocks.tif") if self.spec.cog else target

    def _profile(self, name: str) -> dict:
        s = self.spec
        profile = {"driver": "GTiff", "width": s.width, "height": s.height, "crs": s.crs, "transform": s.transform,
                   "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate", "zlevel": 1,
                   "BIGTIFF": "IF_SAFER"}  # fmt: skip
        if name == "prediction":
            return {**profile, "count": 1, "dtype": "uint8", "nodata": PREDICTION_NODATA}
        count = len(s.classes) if name == "probabilities" else 1
        return {**profile, "count": count, "dtype": "float32", "nodata": FLOAT_NODATA, "predictor": 3}

    def _describe(self) -> None:
        s = self.spec
        names = [c.name for c in s.classes]
        pred = self._datasets["prediction"]
        pred.write_colormap(1, {**{i: hex_to_rgba(c.color) for i, c in enumerate(s.classes)},
                                PREDICTION_NODATA: (0, 0, 0, 0)})  # fmt: skip
        pred.set_band_description(1, "class")
        pred.update_tags(
            CLASS_NAMES=json.dumps(names), CLASSES=json.dumps([c.to_dict() for c in s.classes]),
            **{f"CLASS_{i}": name for i, name in enumerate(names)}, **s.tags,
        )  # fmt: skip
        unc = self._datasets["uncertainty"]
        unc.set_band_description(1, f"uncertainty ({s.uncertainty})")
        unc.update_tags(UNCERTAINTY=s.uncertainty, RANGE="0..1, 1 = most uncertain", **s.tags)
        if "probabilities" in self._datasets:
            probs = self._datasets["probabilities"]
            for i, name in enumerate(names, start=1):
                probs.set_band_description(i, name)
            probs.update_tags(CLASS_NAMES=json.dumps(names), **s.tags)

    def write(self, block: Block) -> None:
        """Write a finished block: C probability channels, plus BALD as the last channel when asked for."""
        classes = len(self.spec.classes)
        probs = block.values[:classes]
        valid = block.valid
        window = Window(block.col, block.row, block.shape[1], block.shape[0])
        prediction = np.where(valid, probs.argmax(axis=0), PREDICTION_NODATA).astype(np.uint8)
        self.class_pixels += np.bincount(prediction[valid], minlength=classes)[:classes]
        if self.spec.uncertainty == "bald":
            unc = block.values[classes].astype(np.float32, copy=True)
        else:
            unc = uncertainty.from_probabilities(self.spec.uncertainty, probs)
        unc[~valid] = FLOAT_NODATA
        self.uncertainty_sum += float(unc[valid].sum(dtype=np.float64))
        self._datasets["prediction"].write(prediction, 1, window=window)
        self._datasets["uncertainty"].write(unc, 1, window=window)
        if "probabilities" in self._datasets:
            out = np.where(valid[None], probs, FLOAT_NODATA).astype(np.float32)
            self._datasets["probabilities"].write(out, window=window)

    def finish(self, progress=None) -> dict[str, Path]:
        """Overviews (or COG conversion) for every output; the renames happen when the context is left."""
        steps = len(self._datasets)
        for k, (name, ds) in enumerate(self._datasets.items()):
            cancel.check()
            resampling = Resampling.nearest if name == "prediction" else Resampling.average
            factors = overview_factors(ds.width, ds.height)
            if self.spec.cog:
                ds.close()
                _to_cog(Path(ds.name), self._targets[name], resampling)
            else:
                if factors:
                    ds.build_overviews(factors, resampling)
                    ds.update_tags(ns="rio_overview", resampling=resampling.name)
                ds.close()
            if progress is not None:
                progress(k + 1, steps)
        self._finished = True
        return self.spec.paths()


def _to_cog(source: Path, target: Path, resampling: Resampling) -> None:
    rasterio.shutil.copy(
        source, target, driver="COG", COMPRESS="DEFLATE", LEVEL=1, BLOCKSIZE=BLOCK, BIGTIFF="IF_SAFER",
        OVERVIEW_RESAMPLING=resampling.name.upper(), OVERVIEWS="IGNORE_EXISTING",
    )  # fmt: skip
    _remove(source)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
