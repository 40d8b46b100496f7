"""Per-pixel features for the random forest: scikit-image's multiscale_basic_features of each band (the ilastik
recipe: Gaussian-smoothed intensity, gradient magnitude and Hessian eigenvalues at sigmas 1, 2, 4, 8, 16).

A pixel's features depend only on a neighbourhood of ``margin`` pixels, so large rasters are processed by tiles read
with that margin (clipped to the raster): the features of a tile's core equal those of the whole raster.
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from skimage.feature import multiscale_basic_features

from engine.errors import InputError


@dataclass(frozen=True)
class FeatureSettings:
    sigma_min: float = 1.0
    sigma_max: float = 16.0
    num_sigma: int = 5  # sigma_min times powers of two up to sigma_max
    intensity: bool = True
    edges: bool = True
    texture: bool = True

    def __post_init__(self) -> None:
        if not (0 < self.sigma_min <= self.sigma_max):
            raise InputError(f"features: sigmas {self.sigma_min}..{self.sigma_max} must satisfy 0 < min <= max")
        if self.num_sigma < 1:
            raise InputError(f"features: num_sigma {self.num_sigma} must be at least 1")
        if not (self.intensity or self.edges or self.texture):
            raise InputError("features: enable at least one of intensity, edges, texture")

    @property
    def sigmas(self) -> list[float]:
        return np.logspace(np.log2(self.sigma_min), np.log2(self.sigma_max), self.num_sigma, base=2).tolist()

    @property
    def per_sigma(self) -> int:
        """Features per band and sigma: smoothed intensity, gradient magnitude, two Hessian eigenvalues (2-D)."""
        return int(self.intensity) + int(self.edges) + 2 * int(self.texture)

    def n_features(self, n_bands: int) -> int:
        return n_bands * self.num_sigma * self.per_sigma

    @property
    def margin(self) -> int:
        """Pixels of context a feature needs: the Gaussian's truncation radius (4 sigma) plus the Sobel and the two
        finite differences of the Hessian, rounded up."""
        return int(4.0 * self.sigma_max + 0.5) + 4

    def names(self, bands: list[int]) -> list[str]:
        kinds = ["intensity"] * self.intensity + ["edges"] * self.edges
        kinds += ["hessian_eig1", "hessian_eig2"] * self.texture
        return [f"band{b}_sigma{s:g}_{k}" for b in bands for s in self.sigmas for k in kinds]

    def to_dict(self) -> dict:
        return {"method": "skimage.feature.multiscale_basic_features", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSettings":
        return cls(
            float(data["sigma_min"]), float(data["sigma_max"]), int(data["num_sigma"]),
            bool(data["intensity"]), bool(data["edges"]), bool(data["texture"]),
        )  # fmt: skip


def compute_features(image: np.ndarray, settings: FeatureSettings, workers: int = 2) -> np.ndarray:
    """Features of a normalised bands x H x W image: float32 H x W x F (band-major, then sigma, then kind)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    out = multiscale_basic_features(
        image, intensity=settings.intensity, edges=settings.edges, texture=settings.texture,
        sigma_min=settings.sigma_min, sigma_max=settings.sigma_max, num_sigma=settings.num_sigma,
        workers=workers, channel_axis=0,
    )  # fmt: skip
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Tile:
    """A core block of a raster and the block read to compute its features (the core padded by the margin,
    clipped to the raster). Rows and columns are half-open: [row0, row1) x [col0, col1)."""

    row0: int
    col0: int
    row1: int
    col1: int
    pad_row0: int
    pad_col0: int
    pad_row1: int
    pad_col1: int

    @property
    def pad_shape(self) -> tuple[int, int]:
        return self.pad_row1 - self.pad_row0, self.pad_col1 - self.pad_col0

    @property
    def core_in_pad(self) -> tuple[slice, slice]:
        """Where the core lies inside the padded block."""
        r, c = self.row0 - self.pad_row0, self.col0 - self.pad_col0
        return slice(r, r + self.row1 - self.row0), slice(c, c + self.col1 - self.col0)


def tiles(height: int, width: int, size: int, margin: int) -> Iterator[Tile]:
    """Core blocks of ``size`` covering a height x width raster, each with its padded block."""
    if size < 1:
        raise InputError(f"tile size {size} must be at least 1")
    for row0 in range(0, height, size):
        for col0 in range(0, width, size):
            row1, col1 = min(row0 + size, height), min(col0 + size, width)
            yield Tile(row0, col0, row1, col1, max(0, row0 - margin), max(0, col0 - margin),
                       min(height, row1 + margin), min(width, col1 + margin))  # fmt: skip


def tiled_features(image: np.ndarray, settings: FeatureSettings, size: int, workers: int = 2) -> np.ndarray:
    """Features of a whole normalised image computed tile by tile (equal to ``compute_features`` of the whole);
    holds all H x W x F features, so meant for tests and small images."""
    _, height, width = image.shape
    out = np.empty((height, width, settings.n_features(image.shape[0])), np.float32)
    for tile in tiles(height, width, size, settings.margin):
        block = image[:, tile.pad_row0 : tile.pad_row1, tile.pad_col0 : tile.pad_col1]
        out[tile.row0 : tile.row1, tile.col0 : tile.col1] = compute_features(block, settings, workers)[tile.core_in_pad]
    return out
