"""Training patches from sparse labels: patches around labelled points plus random context patches.

Each patch comes with a sparse label mask (``IGNORE_INDEX`` where nothing was clicked) and is flipped and rotated
by multiples of 90 degrees jointly with its mask. With ``jitter`` each band of each patch also gets a random gain
in [1 - jitter, 1 + jitter] and offset in [-jitter, jitter] (normalised units): another light, season or sensor.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from engine.normalization import Normalization
from engine.points import PixelLabels
from engine.raster_io import read_window

IGNORE_INDEX = 255
CACHE_PIXELS = 64_000_000  # rasters up to this many pixels (all bands) are held in memory while training


@dataclass
class Patch:
    image: np.ndarray  # float32, bands x P x P, normalised
    target: np.ndarray  # uint8, P x P, IGNORE_INDEX where unlabelled or invalid
    weight: np.ndarray  # float32, P x P, the loss weight of each labelled pixel (0 elsewhere)


class RasterSource:
    """One raster's normalised pixels by window; small rasters are read once and kept in memory."""

    def __init__(self, path: Path, bands: list[int], normalization: Normalization):
        self.path, self.bands, self.normalization = Path(path), bands, normalization
        self._ds = rasterio.open(self.path)
        self.height, self.width = self._ds.height, self._ds.width
        self._cache = None
        if self.height * self.width * len(bands) <= CACHE_PIXELS:
            data, valid = read_window(self._ds, bands, 0, 0, self.height, self.width)
            self._cache = (normalization.apply(data, valid), valid)

    def read(self, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            data, valid = read_window(self._ds, self.bands, row, col, size, size)
            return self.normalization.apply(data, valid), valid
        return _crop(*self._cache, row, col, size)

    def close(self) -> None:
        self._ds.close()


def _crop(image: np.ndarray, valid: np.ndarray, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A size x size crop that may extend past the array; the outside is 0 and invalid."""
    out = np.zeros((image.shape[0], size, size), np.float32)
    out_valid = np.zeros((size, size), bool)
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + size, image.shape[1]), min(col + size, image.shape[2])
    if r1 > r0 and c1 > c0:
        out[:, r0 - row : r1 - row, c0 - col : c1 - col] = image[:, r0:r1, c0:c1]
        out_valid[r0 - row : r1 - row, c0 - col : c1 - col] = valid[r0:r1, c0:c1]
    return out, out_valid


class PatchSampler:
    """Draws patches: with ``context_fraction`` a random window anywhere, otherwise a window holding a labelled
    point chosen class-balanced (a class uniformly among those labelled, then one of its points)."""

    def __init__(
        self,
        sources: list[RasterSource],
        labels: list[PixelLabels],
        patch_size: int,
        rng: np.random.Generator,
        context_fraction: float = 0.25,
        augment: bool = True,
        jitter: float = 0.0,
    ):
        self.sources, self.labels, self.size = sources, labels, patch_size
        self.rng, self.context_fraction, self.augment, self.jitter = rng, context_fraction, augment, jitter
        owners = [np.full(len(lab), i) for i, lab in enumerate(labels)]
        self._owner = np.concatenate(owners) if owners else np.zeros(0, int)
        self._index = np.concatenate([np.arange(len(lab)) for lab in labels]) if labels else np.zeros(0, int)
        classes = np.concatenate([lab.classes for lab in labels]) if labels else np.zeros(0, int)
        self._by_class = [np.flatnonzero(classes == c) for c in np.unique(classes)]
        areas = np.array([s.height * s.width for s in sources], float)
        self._area_p = areas / areas.sum()

    def sample(self) -> Patch:
        if not self._by_class or self.rng.random() < self.context_fraction:
            k = int(self.rng.choice(len(self.sources), p=self._area_p))
            src = self.sources[k]
            row = int(self.rng.integers(0, max(1, src.height - self.size + 1)))
            col = int(self.rng.integers(0, max(1, src.width - self.size + 1)))
        else:
            members = self._by_class[int(self.rng.integers(len(self._by_class)))]
            j = int(members[self.rng.integers(len(members))])
            k, i = int(self._owner[j]), int(self._index[j])
            lab = self.labels[k]
            row = int(lab.rows[i]) - int(self.rng.integers(0, self.size))
            col = int(lab.cols[i]) - int(self.rng.integers(0, self.size))
            src = self.sources[k]
        image, valid = src.read(row, col, self.size)
        target, weight = self._target(k, row, col, valid)
        if self.jitter > 0:
            image = self._jitter(image, valid)
        if self.augment:
            image, target, weight = self._augment(image, target, weight)
        return Patch(*(np.ascontiguousarray(a) for a in (image, target, weight)))

    def _target(self, k: int, row: int, col: int, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        target = np.full((self.size, self.size), IGNORE_INDEX, np.uint8)
        weight = np.zeros((self.size, self.size), np.float32)
        lab = self.labels[k] if k < len(self.labels) else PixelLabels()
        r, c = lab.rows - row, lab.cols - col
        inside = (r >= 0) & (r < self.size) & (c >= 0) & (c < self.size)
        # Lightest first, so that where a click and a spread label share a pixel the click wins.
        order = np.argsort(lab.weight_array()[inside], kind="stable")
        rr, cc = r[inside][order], c[inside][order]
        target[rr, cc] = lab.classes[inside][order]
        weight[rr, cc] = lab.weight_array()[inside][order]
        target[~valid] = IGNORE_INDEX
        weight[~valid] = 0
        return target, weight

    def _jitter(self, image: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Each band times a random gain plus a random offset, on valid pixels (nodata stays 0)."""
        shape = (image.shape[0], 1, 1)
        gain = self.rng.uniform(1 - self.jitter, 1 + self.jitter, shape).astype(np.float32)
        offset = self.rng.uniform(-self.jitter, self.jitter, shape).astype(np.float32)
        return np.where(valid, image * gain + offset, image)

    def _augment(self, image: np.ndarray, *masks: np.ndarray) -> tuple[np.ndarray, ...]:
        turns = int(self.rng.integers(4))
        flip = self.rng.random() < 0.5
        image, masks = np.rot90(image, turns, axes=(1, 2)), [np.rot90(m, turns) for m in masks]
        if flip:
            image, masks = image[:, :, ::-1], [m[:, ::-1] for m in masks]
        return (image, *masks)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images (B x bands x P x P), targets (B x P x P) and loss weights (B x P x P)."""
        patches = [self.sample() for _ in range(size)]
        return tuple(np.stack([getattr(p, name) for p in patches]) for name in ("image", "target", "weight"))
