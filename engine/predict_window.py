"""The part of a raster to predict: all of it, a bounding box (in any CRS) or the extent of polygons (an AOI).

Windows are whole pixels of the raster's grid: the smallest window holding the area, clipped to the raster.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from engine.errors import InputError, InputFileError

_EPS = 1e-6  # a bound this close to a pixel edge is on it


@dataclass(frozen=True)
class Region:
    """A window of the raster (whole pixels) and, for an AOI, the polygons (in the raster's CRS) to keep."""

    window: Window
    geometries: tuple = ()

    def mask(self, transform, height: int, width: int) -> np.ndarray | None:
        """True inside the AOI for a height x width grid at ``transform``; None without an AOI."""
        if not self.geometries:
            return None
        return geometry_mask(self.geometries, (height, width), transform, invert=True)


def parse_bbox(text: str) -> tuple[tuple[float, float, float, float], CRS | None]:
    """'minx,miny,maxx,maxy[,EPSG:XXXX]' to bounds and a CRS (None: the raster's)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (4, 5):
        raise InputError(f"--bbox: {text!r} is not minx,miny,maxx,maxy or minx,miny,maxx,maxy,EPSG:XXXX", "bbox")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts[:4])
    except ValueError as exc:
        raise InputError(f"--bbox: {text!r} has a coordinate that is not a number", "bbox") from exc
    if not (minx < maxx and miny < maxy):
        raise InputError(f"--bbox: {text!r} must have minx < maxx and miny < maxy", "bbox")
    crs = None
    if len(parts) == 5:
        try:
            crs = CRS.from_user_input(parts[4])
        except CRSError as exc:
            raise InputError(f"--bbox: {parts[4]!r} is not a CRS; give one such as EPSG:4326", "bbox") from exc
    return (minx, miny, maxx, maxy), crs


def bounds_window(ds, bounds: tuple[float, float, float, float], crs: CRS | None, field: str) -> Window:
    """The raster pixels covering ``bounds`` (given in ``crs``, default the raster's), clipped to the raster."""
    if crs is not None and ds.crs is not None and CRS.from_user_input(crs) != ds.crs:
        bounds = transform_bounds(crs, ds.crs, *bounds, densify_pts=21)
    minx, miny, maxx, maxy = bounds
    inverse = ~ds.transform
    corners = [inverse @ (x, y) for x in (minx, maxx) for y in (miny, maxy)]
    cols, rows = [c for c, _ in corners], [r for _, r in corners]
    col0, col1 = max(0, math.floor(min(cols) + _EPS)), min(ds.width, math.ceil(max(cols) - _EPS))
    row0, row1 = max(0, math.floor(min(rows) + _EPS)), min(ds.height, math.ceil(max(rows) - _EPS))
    if col1 <= col0 or row1 <= row0:
        raise InputError(f"--{field}: the area {_fmt(bounds)} lies outside the raster {ds.name} "
                         f"(bounds {_fmt(tuple(ds.bounds))} in {ds.crs}); check the coordinates and their CRS",
                         field)  # fmt: skip
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_aoi(path: Path, ds) -> tuple[tuple, tuple[float, float, float, float]]:
    """Polygons of a vector file, reprojected to the raster's CRS, and their bounds."""
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"--aoi: {path} does not exist; check the path", "aoi")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio/fiona raise their own types for unreadable files
        raise InputFileError(f"--aoi: {path} is not a vector file GDAL can read ({exc}); save it as GeoPackage",
                             "aoi") from exc  # fmt: skip
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InputError(f"--aoi: {path} holds no polygon; draw the area as a polygon layer", "aoi")
    if frame.crs is None:
        raise InputError(f"--aoi: {path} has no CRS; assign one (QGIS: Layer > Set CRS) and save it again", "aoi")
    frame = frame.to_crs(ds.crs)
    return tuple(frame.geometry), tuple(frame.total_bounds)


def region_for(ds, bbox: str | None = None, aoi: Path | None = None) -> Region:
    """The whole raster, or the window of ``bbox`` and/or ``aoi`` (their intersection when both are given)."""
    window = Window(0, 0, ds.width, ds.height)
    geometries: tuple = ()
    if bbox:
        window = bounds_window(ds, *parse_bbox(bbox), "bbox")
    if aoi:
        geometries, bounds = read_aoi(Path(aoi), ds)
        aoi_window = bounds_window(ds, bounds, None, "aoi")
        window = _intersect(window, aoi_window)
    return Region(window, geometries)


def _intersect(a: Window, b: Window) -> Window:
    col0, row0 = max(a.col_off, b.col_off), max(a.row_off, b.row_off)
    col1 = min(a.col_off + a.width, b.col_off + b.width)
    row1 = min(a.row_off + a.height, b.row_off + b.height)
    if col1 <= col0 or row1 <= row0:
        raise InputError("--bbox/--aoi: the bounding box and the AOI do not overlap; give one that covers the other",
                         "bbox")  # fmt: skip
    return Window(col0, row0, col1 - col0, row1 - row0)


def _fmt(bounds: tuple) -> str:
    return ",".join(f"{v:.6g}" for v in bounds)
