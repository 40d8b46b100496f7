"""Reading rasters by windows: opening with clear errors, boundless window reads with a validity mask."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from engine.errors import InputError, InputFileError


def open_raster(path: str | Path, field: str = "raster", need_crs: bool = True) -> rasterio.DatasetReader:
    """Open a raster GDAL can read, or raise a one-line error naming the file and what to do."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"--{field}: {path} does not exist; check the path", field)
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(
            f"--{field}: {path} is not a raster GDAL can read ({exc}); export it as GeoTIFF", field
        ) from exc
    if need_crs and ds.crs is None:
        ds.close()
        raise InputError(
            f"--{field}: {path} has no CRS; assign one (QGIS: Layer > Set CRS, or gdal_edit.py -a_srs)", field
        )
    return ds


def parse_bands(text: str | list | None, count: int, path: Path | str = "") -> list[int]:
    """1-based band indexes from '1,2,3' (or a list); all bands when empty."""
    if not text:
        return list(range(1, count + 1))
    items = text if isinstance(text, list) else str(text).split(",")
    try:
        bands = [int(b) for b in items]
    except ValueError as exc:
        raise InputError(
            f"--bands: {text!r} is not a comma-separated list of band numbers such as 1,2,3", "bands"
        ) from exc
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise InputError(f"--bands: band(s) {bad} do not exist in {path}, which has {count} band(s)", "bands")
    return bands


@dataclass(frozen=True)
class RasterInfo:
    path: Path
    width: int
    height: int
    count: int
    crs: object
    transform: object
    nodata: float | None
    dtype: str


def raster_info(path: str | Path, field: str = "raster") -> RasterInfo:
    with open_raster(path, field) as ds:
        return RasterInfo(Path(path), ds.width, ds.height, ds.count, ds.crs, ds.transform, ds.nodata, ds.dtypes[0])


def read_window(
    ds: rasterio.DatasetReader, bands: list[int], row: int, col: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window that may extend past the raster. Returns (float32 bands x H x W, bool valid H x W).

    Pixels outside the raster, nodata pixels and masked pixels are invalid and hold 0.
    """
    window = Window(col, row, width, height)
    inside = row >= 0 and col >= 0 and row + height <= ds.height and col + width <= ds.width
    data = ds.read(bands, window=window, boundless=not inside, fill_value=0, out_dtype="float32")
    masks = ds.read_masks(bands, window=window, boundless=not inside)
    valid = np.all(masks > 0, axis=0)
    if not inside:
        valid &= _inside_mask(ds, row, col, height, width)
    data[:, ~valid] = 0
    return data, valid


def _inside_mask(ds, row: int, col: int, height: int, width: int) -> np.ndarray:
    rows = np.arange(row, row + height)
    cols = np.arange(col, col + width)
    return ((rows >= 0) & (rows < ds.height))[:, None] & ((cols >= 0) & (cols < ds.width))[None, :]


def read_overview(ds: rasterio.DatasetReader, bands: list[int], max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole raster decimated to at most ``max_pixels`` pixels (nearest), with its validity mask."""
    scale = max(1.0, float(np.sqrt(ds.width * ds.height / max_pixels)))
    shape = (max(1, int(ds.height / scale)), max(1, int(ds.width / scale)))
    data = ds.read(bands, out_shape=(len(bands), *shape), out_dtype="float32")
    masks = ds.read_masks(bands, out_shape=(len(bands), *shape))
    return data, np.all(masks > 0, axis=0)


def fill_invalid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The image with each invalid pixel (nodata, or padding past the raster's edge) set to its nearest valid
    pixel's values, so that the features near an edge see the raster continued, not a wall of zeros."""
    if valid.all() or not valid.any():
        return image
    rows, cols = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return image[:, rows, cols]
