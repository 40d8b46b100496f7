import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.tiling import Blender, TileGrid, axis_starts, blend_weights, ramp


@given(length=st.integers(1, 3000), tile=st.integers(2, 600), overlap_share=st.floats(0, 0.9))
def test_axis_starts_cover_the_axis_with_the_overlap(length, tile, overlap_share):
    overlap = int(tile * overlap_share)
    starts = axis_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts == sorted(set(starts))
    if length > tile:
        assert starts[-1] + tile == length  # the last tile ends on the edge, inside the axis
        assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))  # overlap kept
    else:
        assert starts == [0]


def test_axis_starts_refuses_overlap_as_large_as_the_tile():
    with pytest.raises(ValueError):
        axis_starts(100, 32, 32)


def test_ramps_of_two_tiles_sum_to_one_over_their_overlap():
    tile, overlap = 64, 16
    w = ramp(tile, overlap)
    left_tail, right_head = w[tile - overlap :], w[:overlap]
    np.testing.assert_allclose(left_tail + right_head, 1.0, atol=2e-3)
    assert w[overlap:-overlap].min() == 1.0
    assert 0 < w[0] < 0.01


def test_blend_weights_without_overlap_are_flat():
    assert (blend_weights(32, 64, 0) == 1).all()


def test_grid_pads_a_region_smaller_than_a_tile_to_the_multiple():
    grid = TileGrid(40, 200, tile_size=128, overlap=16, multiple=32)
    assert (grid.tile_h, grid.tile_w) == (64, 128)
    assert grid.row_starts == [0]
    assert grid.col_starts[-1] == 200 - 128


def test_grid_refuses_tile_not_multiple_of_stride():
    with pytest.raises(ValueError, match="multiple"):
        TileGrid(100, 100, tile_size=100, overlap=8, multiple=32)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(1, 300), width=st.integers(1, 300), tile=st.sampled_from([32, 64, 96]),
    overlap=st.integers(0, 31), block=st.sampled_from([16, 48, 256]),
)  # fmt: skip
def test_blender_returns_every_block_once_with_the_field_tiles_were_cut_from(height, width, tile, overlap, block):
    """Tiles cut from a known field, blended back: every pixel comes back exactly once with its value."""
    yy, xx = np.mgrid[0 : height + tile, 0 : width + tile].astype(np.float32)
    field = np.stack([yy * 1000 + xx, np.sin(xx / 7.0)])
    grid = TileGrid(height, width, tile, overlap, multiple=32)
    blender = Blender(grid, channels=2, block=block)
    out = np.full((2, height, width), np.nan, np.float32)
    seen = np.zeros((height, width), int)
    for tile_ in grid:
        values = field[:, tile_.row : tile_.row + grid.tile_h, tile_.col : tile_.col + grid.tile_w]
        valid = np.ones(values.shape[1:], bool)
        for b in blender.add(tile_, values, valid):
            h, w = b.shape
            out[:, b.row : b.row + h, b.col : b.col + w] = b.values
            seen[b.row : b.row + h, b.col : b.col + w] += 1
            assert b.valid.all()
    assert blender.pending_blocks == 0
    assert (seen == 1).all()
    np.testing.assert_allclose(out, field[:, :height, :width], rtol=1e-5, atol=1e-3)


def test_blender_marks_pixels_of_skipped_tiles_invalid():
    grid = TileGrid(64, 128, tile_size=64, overlap=0, multiple=32)
    blender = Blender(grid, channels=1, block=32)
    tiles = list(grid)
    blocks = blender.add(tiles[0], np.ones((1, 64, 64), np.float32), np.ones((64, 64), bool))
    blocks += blender.add(tiles[1], None, None)
    valid = np.zeros((64, 128), bool)
    for b in blocks:
        valid[b.row : b.row + b.shape[0], b.col : b.col + b.shape[1]] = b.valid
    assert valid[:, :64].all() and not valid[:, 64:].any()
