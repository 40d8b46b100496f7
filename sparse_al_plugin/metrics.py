"""Scores of a prediction against a reference label raster (class indices), read block by block with GDAL.

The reference is warped onto each prediction's grid (nearest neighbour, through a virtual raster), so it may have
another CRS, extent or resolution. Reference pixels that are nodata or not a class index are left out.
"""

import math

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
BLOCK = 512
PREDICTION_NODATA = 255


def confusion(prediction: str, reference: str, n_classes: int) -> np.ndarray:
    """Counts [reference class, predicted class] over the pixels both rasters cover."""
    pred = gdal.Open(prediction)
    ref_src = gdal.Open(reference)
    width, height = pred.RasterXSize, pred.RasterYSize
    gt = pred.GetGeoTransform()
    bounds = (gt[0], gt[3] + height * gt[5], gt[0] + width * gt[1], gt[3])
    ref_nodata = ref_src.GetRasterBand(1).GetNoDataValue()
    warped = gdal.Warp("", ref_src, format="VRT", outputBounds=bounds, width=width, height=height,
                       dstSRS=pred.GetProjection() or None, resampleAlg="near", srcNodata=ref_nodata,
                       dstNodata=-1, outputType=gdal.GDT_Int32)  # fmt: skip
    matrix = np.zeros((n_classes, n_classes), np.int64)
    pband, rband = pred.GetRasterBand(1), warped.GetRasterBand(1)
    for y in range(0, height, BLOCK):
        h = min(BLOCK, height - y)
        for x in range(0, width, BLOCK):
            w = min(BLOCK, width - x)
            p = _read(pband, x, y, w, h)
            r = _read(rband, x, y, w, h)
            valid = (r >= 0) & (r < n_classes) & (p >= 0) & (p < n_classes)
            matrix += np.bincount(r[valid] * n_classes + p[valid], minlength=n_classes * n_classes).reshape(
                n_classes, n_classes
            )
    return matrix


def _read(band, x: int, y: int, w: int, h: int) -> np.ndarray:
    """A block as int32 without GDAL's numpy module (whose build may not match the numpy at hand)."""
    data = band.ReadRaster(x, y, w, h, buf_type=gdal.GDT_Int32)
    return np.frombuffer(data, dtype=np.int32).astype(np.int64)


def scores(matrix: np.ndarray, names: list[str]) -> dict:
    """Overall accuracy, IoU per class and their mean over the classes present in the reference or prediction."""
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = {name: (float(tp[k] / union[k]) if union[k] > 0 else None) for k, name in enumerate(names)}
    present = [v for v in iou.values() if v is not None]
    return {
        "accuracy": float(tp.sum() / total) if total else None,
        "miou": float(sum(present) / len(present)) if present else None,
        "iou": iou,
        "pixels": int(total),
    }


def scores_for(predictions: list[str], reference: str, names: list[str]) -> dict:
    matrix = sum((confusion(p, reference, len(names)) for p in predictions), np.zeros((len(names),) * 2, np.int64))
    return scores(matrix, names)


def percent(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"
