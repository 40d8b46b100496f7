"""Overlapping tiles over a region, smooth blending weights, and a blender that hands back finished blocks.

The region (a raster or a window of it) is covered by a grid of equal tiles: starts 0, stride, 2 stride, ... with the
last tile moved back to end on the region's edge, so every tile lies inside the region unless the region is smaller
than a tile (then one tile, padded up to the network's multiple, starts at 0). Each tile's values are weighted by a
raised-cosine ramp over ``overlap`` pixels from its edges and the weighted values summed; a pixel's result is the sum
divided by the sum of weights, so neighbouring tiles fade into each other and leave no seam.

Results are assembled in output blocks (``block`` x ``block``, the GeoTIFF tiles): a block is handed back, and its
memory freed, as soon as the last tile covering it has been added. Adding tiles in row-major order keeps about
``overlap + 2 block`` rows of the region's width in memory, whatever its height.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

WEIGHT_FLOOR = 1e-3  # the weight at a tile's very edge: keeps raster edges (covered by one tile) defined


def round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: a stride of ``tile - overlap``, the last tile ending on the edge."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if length <= tile:
        return [0]
    stride = tile - overlap
    return [*range(0, length - tile, stride), length - tile]


def ramp(length: int, overlap: int) -> np.ndarray:
    """1-D weights: sin^2 rising from WEIGHT_FLOOR to 1 over ``overlap`` pixels at both ends, 1 in between.

    Two tiles overlapping by exactly ``overlap`` pixels have weights summing to 1 there (sin^2 + cos^2).
    """
    if overlap <= 0:
        return np.ones(length, np.float32)
    idx = np.arange(length, dtype=np.float64)
    distance = np.minimum(idx, length - 1 - idx) + 0.5
    w = np.sin(0.5 * math.pi * np.clip(distance / overlap, 0.0, 1.0)) ** 2
    return np.maximum(w, WEIGHT_FLOOR).astype(np.float32)


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """2-D tile weights (height x width): the outer product of the two ramps."""
    return np.outer(ramp(height, overlap), ramp(width, overlap)).astype(np.float32)


@dataclass(frozen=True)
class Tile:
    """A tile of the grid: its row and column in the grid and its top-left pixel, relative to the region."""

    i: int
    j: int
    row: int
    col: int


class TileGrid:
    """The tiles covering a ``height`` x ``width`` region; all tiles share one shape (``tile_h`` x ``tile_w``)."""

    def __init__(self, height: int, width: int, tile_size: int, overlap: int, multiple: int = 32):
        if height < 1 or width < 1:
            raise ValueError(f"empty region {height} x {width}")
        if tile_size % multiple:
            raise ValueError(f"tile size {tile_size} is not a multiple of {multiple}")
        self.height, self.width, self.overlap = height, width, overlap
        self.tile_h = tile_size if height > tile_size else round_up(height, multiple)
        self.tile_w = tile_size if width > tile_size else round_up(width, multiple)
        self.row_starts = axis_starts(height, self.tile_h, overlap) if height > tile_size else [0]
        self.col_starts = axis_starts(width, self.tile_w, overlap) if width > tile_size else [0]

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def __iter__(self) -> Iterator[Tile]:
        """Row-major order, which the Blender needs to keep its memory bounded."""
        for i, row in enumerate(self.row_starts):
            for j, col in enumerate(self.col_starts):
                yield Tile(i, j, row, col)

    def weights(self) -> np.ndarray:
        return blend_weights(self.tile_h, self.tile_w, self.overlap)


@dataclass
class Block:
    """A finished output block: ``values`` (channels x h x w, the weighted mean) and ``valid`` at (row, col)."""

    row: int
    col: int
    values: np.ndarray
    valid: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape


class _Pending:
    __slots__ = ("remaining", "sums", "valid", "weights")

    def __init__(self, channels: int, height: int, width: int, remaining: int):
        self.sums = np.zeros((channels, height, width), np.float32)
        self.weights = np.zeros((height, width), np.float32)
        self.valid = np.zeros((height, width), bool)
        self.remaining = remaining


class Blender:
    """Accumulates weighted tile values into blocks; ``add`` returns the blocks its tile finished.

    A block's pixel is valid when a tile that covered it said so; its value is then the weighted mean of the tiles
    covering it (tiles added with ``values=None``, skipped because they held no valid pixel, count as added).
    """

    def __init__(self, grid: TileGrid, channels: int, block: int = 256):
        self.grid, self.channels, self.block = grid, channels, block
        self._weights = grid.weights()
        self._row_counts = _cover_counts(grid.height, block, grid.row_starts, grid.tile_h)
        self._col_counts = _cover_counts(grid.width, block, grid.col_starts, grid.tile_w)
        self._pending: dict[tuple[int, int], _Pending] = {}

    @property
    def pending_blocks(self) -> int:
        return len(self._pending)

    def add(self, tile: Tile, values: np.ndarray | None, valid: np.ndarray | None) -> list[Block]:
        """Add a tile's values (channels x tile_h x tile_w) and validity (tile_h x tile_w); None for a skipped one."""
        g, b = self.grid, self.block
        weighted = values * self._weights if values is not None else None
        done = []
        r_end, c_end = min(tile.row + g.tile_h, g.height), min(tile.col + g.tile_w, g.width)
        for bi in range(tile.row // b, (r_end - 1) // b + 1):
            for bj in range(tile.col // b, (c_end - 1) // b + 1):
                br, bc = bi * b, bj * b
                bh, bw = min(b, g.height - br), min(b, g.width - bc)
                pending = self._pending.get((bi, bj))
                if pending is None:
                    remaining = self._row_counts[bi] * self._col_counts[bj]
                    pending = self._pending[(bi, bj)] = _Pending(self.channels, bh, bw, remaining)
                if weighted is not None:
                    r0, r1 = max(br, tile.row), min(br + bh, r_end)
                    c0, c1 = max(bc, tile.col), min(bc + bw, c_end)
                    dst = (slice(r0 - br, r1 - br), slice(c0 - bc, c1 - bc))
                    src = (slice(r0 - tile.row, r1 - tile.row), slice(c0 - tile.col, c1 - tile.col))
                    pending.sums[(slice(None), *dst)] += weighted[(slice(None), *src)]
                    pending.weights[dst] += self._weights[src]
                    pending.valid[dst] = valid[src]
                pending.remaining -= 1
                if pending.remaining == 0:
                    del self._pending[(bi, bj)]
                    done.append(_finish(br, bc, pending))
        return done


def _finish(row: int, col: int, pending: _Pending) -> Block:
    covered = pending.weights > 0
    values = np.divide(pending.sums, pending.weights, out=np.zeros_like(pending.sums), where=covered)
    return Block(row, col, values, pending.valid & covered)


def _cover_counts(length: int, block: int, starts: list[int], tile: int) -> list[int]:
    """For each block along an axis, how many tile starts cover part of it."""
    counts = []
    for start in range(0, length, block):
        end = min(start + block, length)
        counts.append(sum(1 for s in starts if s < end and s + tile > start))
    return counts
