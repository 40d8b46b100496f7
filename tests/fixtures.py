"""Generators of tiny georeferenced test data (seeded, written to a temporary folder)."""

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point

UTM_CRS = "EPSG:32633"
ORIGIN = (500_000.0, 4_650_000.0)  # top-left corner, metres in UTM 33N


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None = UTM_CRS,
    pixel: float = 1.0,
    nodata=None,
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    """Write bands x H x W (or H x W) as a GeoTIFF with a north-up transform."""
    data = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": from_origin(*origin, pixel, pixel),
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return Path(path)


def write_points(
    path: Path, xy: list[tuple[float, float]], classes: list, crs: str | None = UTM_CRS, field: str = "class"
) -> Path:
    frame = gpd.GeoDataFrame({field: classes}, geometry=[Point(x, y) for x, y in xy], crs=crs)
    frame.to_file(path)
    return Path(path)


def pixel_center(row: int, col: int, pixel: float = 1.0) -> tuple[float, float]:
    return ORIGIN[0] + (col + 0.5) * pixel, ORIGIN[1] - (row + 0.5) * pixel


@dataclass
class Scene:
    image: Path
    label: np.ndarray  # H x W class index
    colors: np.ndarray  # class x 3


def write_scene(folder: Path, size: int = 128, seed: int = 0) -> Scene:
    """Three classes with distinct colours and textures: background (noisy grey), blobs of 'red' (class 1) and
    stripes of 'blue' (class 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    label = np.zeros((size, size), np.uint8)
    for _ in range(6):
        cy, cx, r = [*rng.integers(0, size, 2).tolist(), int(rng.integers(size // 16, size // 8))]
        label[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    stripes = ((xx + yy) // (size // 8)) % 4 == 0
    label[stripes & (label == 0)] = 2
    colors = np.array([[120, 120, 120], [200, 40, 40], [40, 60, 200]], np.float32)
    image = colors[label].transpose(2, 0, 1) + rng.normal(0, 18, (3, size, size))
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Scene(write_raster(Path(folder) / "scene.tif", image), label, colors)


def clicks_per_class(label: np.ndarray, per_class: int, seed: int = 0):
    """``per_class`` random labelled pixels of each class present in ``label`` (seeded), as PixelLabels."""
    from engine.points import PixelLabels

    rng = np.random.default_rng(seed)
    rows, cols, classes = [], [], []
    for c in np.unique(label):
        r, k = np.nonzero(label == c)
        pick = rng.choice(len(r), per_class, replace=False)
        rows += r[pick].tolist()
        cols += k[pick].tolist()
        classes += [int(c)] * per_class
    return PixelLabels(np.array(rows), np.array(cols), np.array(classes))
