"""Per-band normalisation, robust to outliers: clip to the 1st..99th percentiles, then standardise."""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.raster_io import open_raster, read_overview


@dataclass(frozen=True)
class Normalization:
    low: list[float]
    high: list[float]
    mean: list[float]
    std: list[float]

    def apply(self, data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Normalise bands x H x W (float32 out); invalid pixels become 0."""
        low, high, mean, std = (np.asarray(v, dtype=np.float32)[:, None, None] for v in asdict(self).values())
        out = (np.clip(data, low, high) - mean) / std
        if valid is not None:
            out[:, ~valid] = 0
        return out.astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        return cls(**{key: [float(v) for v in data[key]] for key in ("low", "high", "mean", "std")})


def compute_normalization(
    paths: list[Path], bands: list[int], max_pixels: int = 4_000_000, field: str = "raster"
) -> Normalization:
    """Statistics of the valid pixels of all rasters, each read decimated to a share of ``max_pixels``."""
    per_raster = max(4096, max_pixels // max(1, len(paths)))
    samples = []
    for path in paths:
        with open_raster(path, field) as ds:
            data, valid = read_overview(ds, bands, per_raster)
        samples.append(data[:, valid])
    values = np.concatenate(samples, axis=1)
    if values.shape[1] == 0:
        raise InputError(f"--{field}: every pixel of the raster(s) is nodata; check the nodata value", field)
    low = np.percentile(values, 1, axis=1)
    high = np.percentile(values, 99, axis=1)
    clipped = np.clip(values, low[:, None], high[:, None])
    mean = clipped.mean(axis=1)
    std = np.maximum(clipped.std(axis=1), 1e-6 * np.maximum(1.0, np.abs(mean)))
    return Normalization(low.tolist(), high.tolist(), mean.tolist(), std.tolist())
