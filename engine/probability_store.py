"""The blended probabilities of a whole predicted area, kept on disk for a second look before the GeoTIFFs are written.

``predict --class-share`` fits a class's weight on the map's own probabilities (engine/class_shares.py): the tiled
prediction hands its finished blocks to the store instead of the GeoTIFF writer; the fit reads a sample of them; the
store then hands every block back, weighted, to the writer. So the map is predicted once and the share is fitted on
exactly what is written. The store is a float16 file (channels x height x width, about 2 bytes a channel a pixel: a
100-megapixel raster of 5 classes takes 1.1 GB) in a hidden folder of the output folder, removed when the store
closes. A folder without the room for it is refused before anything is written.
"""

import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.prior import adjust
from engine.tiling import Block

SPARE = 256 * 2**20  # bytes left free beside the store, for the outputs' first blocks and the system


class ProbabilityStore:
    """``write(block)`` keeps a finished block (any channels: C probabilities, maybe BALD); ``sample`` and ``blocks``
    read them back. A context manager: the file is removed on leaving it."""

    def __init__(self, folder: Path, channels: int, height: int, width: int, block: int):
        self.folder, self.height, self.width, self.block = Path(folder), height, width, block
        self.channels = channels
        self._dir: Path | None = None
        self.values: np.ndarray | None = None  # channels x H x W float16
        self.valid: np.ndarray | None = None

    def size(self) -> int:
        """Bytes on disk."""
        return self.height * self.width * (2 * self.channels + 1)

    def __enter__(self) -> "ProbabilityStore":
        self.folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.folder).free
        if free < self.size() + SPARE:  # a memory map on a full disk kills the process: refuse before
            raise InputError(f"--out: {self.folder} has {free / 1e9:.1f} GB free, and fitting a class share keeps the "
                             f"map's probabilities there ({self.size() / 1e9:.1f} GB); free some space or choose "
                             "another folder", "out")  # fmt: skip
        self._dir = Path(tempfile.mkdtemp(prefix=".sparse_al_probabilities_", dir=self.folder))
        shape = (self.channels, self.height, self.width)
        self.values = np.lib.format.open_memmap(self._dir / "values.npy", "w+", np.float16, shape)
        self.valid = np.lib.format.open_memmap(self._dir / "valid.npy", "w+", bool, shape[1:])
        return self

    def __exit__(self, *exc) -> None:
        self.values = self.valid = None  # numpy closes the memory maps with the last reference
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def write(self, block: Block) -> None:
        h, w = block.shape
        window = (slice(block.row, block.row + h), slice(block.col, block.col + w))
        self.values[(slice(None), *window)] = np.where(block.valid, block.values, 0.0)
        self.valid[window] = block.valid

    def sample(self, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """(values channels x h x w float32, valid h x w) of every ``step``-th row and column, ``step`` the smallest
        that keeps it to at most ``pixels`` pixels (1: all of them)."""
        step = max(1, math.ceil(math.sqrt(self.height * self.width / pixels)))
        return self.values[:, ::step, ::step].astype(np.float32), np.array(self.valid[::step, ::step])

    def blocks(self, factor: np.ndarray) -> Iterator[Block]:
        """Every block of the area in row-major order, its first ``len(factor)`` channels (the class probabilities)
        times ``factor`` and renormalised, other channels as stored."""
        classes = len(factor)
        for row in range(0, self.height, self.block):
            for col in range(0, self.width, self.block):
                window = (slice(row, row + self.block), slice(col, col + self.block))
                values = self.values[(slice(None), *window)].astype(np.float32)
                values[:classes] = adjust(values[:classes], factor)
                yield Block(row, col, values, np.array(self.valid[window]))

    def block_count(self) -> int:
        return math.ceil(self.height / self.block) * math.ceil(self.width / self.block)
