"""Class points from a vector file to labelled pixels of each raster, across CRSs."""

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.transform import rowcol

from engine.classes import ClassInfo, class_index
from engine.errors import InputError, InputFileError
from engine.raster_io import open_raster


@dataclass
class PixelLabels:
    """Labelled pixels of one raster: row, column and class index of each (int arrays of one length), and
    optionally a loss weight of each (1 for a click; below 1 for labels spread from a click)."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def weight_array(self) -> np.ndarray:
        return np.ones(len(self.rows), np.float32) if self.weights is None else self.weights.astype(np.float32)

    def extend(self, rows, cols, classes, weights=None) -> "PixelLabels":
        added = np.ones(len(rows), np.float32) if weights is None else np.asarray(weights, np.float32)
        return PixelLabels(
            np.concatenate([self.rows, np.asarray(rows, np.int64)]),
            np.concatenate([self.cols, np.asarray(cols, np.int64)]),
            np.concatenate([self.classes, np.asarray(classes, np.int64)]),
            None if self.weights is None and weights is None else np.concatenate([self.weight_array(), added]),
        )


@dataclass
class PointsOnRasters:
    labels: list[PixelLabels]  # one per raster, in the order given
    total: int
    outside: int
    nodata: int

    @property
    def used(self) -> int:
        return sum(len(lab) for lab in self.labels)


def read_points(path: str | Path, class_field: str, classes: list[ClassInfo]) -> gpd.GeoDataFrame:
    """Read a point layer; returns its points (in the file's CRS) with a ``class_index`` column."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"--points: {path} does not exist; check the path", "points")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError and friends
        raise InputFileError(f"--points: {path} is not a vector file GDAL can read ({exc})", "points") from exc
    if frame.crs is None:
        raise InputError(f"--points: {path} has no CRS; assign one (QGIS: Layer > Set CRS) and save it again", "points")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty].explode(index_parts=False)
    frame = frame[frame.geometry.geom_type == "Point"]
    if frame.empty:
        raise InputError(f"--points: {path} has no points; click some points of each class first", "points")
    if class_field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != "geometry")
        raise InputError(f"--class-field: {path} has no field {class_field!r}; its fields are {fields}", "class_field")
    values = frame[class_field]
    if values.isna().any():
        raise InputError(
            f"--points: {int(values.isna().sum())} point(s) in {path} have no {class_field}; set one", "points"
        )
    frame = frame.assign(class_index=[class_index(v, classes, class_field) for v in values])
    return frame


def points_to_pixels(frame: gpd.GeoDataFrame, rasters: list[Path]) -> PointsOnRasters:
    """Assign each point to the first raster where it lands on a valid pixel; count the others."""
    remaining = pd.Series(True, index=range(len(frame)))
    frame = frame.reset_index(drop=True)
    labels, on_nodata = [], np.zeros(len(frame), bool)
    for path in rasters:
        with open_raster(path) as ds:
            xy = frame.geometry.to_crs(ds.crs)
            rows, cols = rowcol(ds.transform, xy.x.to_numpy(), xy.y.to_numpy(), op=np.floor)
            rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
            inside = remaining.to_numpy() & (rows >= 0) & (rows < ds.height) & (cols >= 0) & (cols < ds.width)
            valid = inside.copy()
            for i in np.flatnonzero(inside):
                mask = ds.read_masks(window=((rows[i], rows[i] + 1), (cols[i], cols[i] + 1)))
                valid[i] = bool(np.all(mask > 0))
            on_nodata |= inside & ~valid
            on_nodata &= ~valid
        take = np.flatnonzero(valid)
        labels.append(PixelLabels(rows[take], cols[take], frame["class_index"].to_numpy()[take].astype(np.int64)))
        remaining &= ~valid
    nodata = int(on_nodata.sum())
    outside = int(remaining.sum()) - nodata
    return PointsOnRasters(labels, len(frame), outside, nodata)
