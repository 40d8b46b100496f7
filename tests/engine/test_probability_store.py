"""The store of a predicted area's probabilities (engine/probability_store.py)."""

import numpy as np

from engine.probability_store import ProbabilityStore
from engine.tiling import Block


def _filled(tmp_path, height=300, width=260, block=128):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1], (height, width)).transpose(2, 0, 1).astype(np.float32)
    values = np.concatenate([probs, rng.random((1, height, width), np.float32)])  # two classes and BALD
    valid = rng.random((height, width)) > 0.1
    store = ProbabilityStore(tmp_path, 3, height, width, block).__enter__()
    for row in range(0, height, block):
        for col in range(0, width, block):
            window = (slice(row, row + block), slice(col, col + block))
            store.write(Block(row, col, values[(slice(None), *window)], valid[window]))
    return store, values, valid


def test_blocks_come_back_weighted_and_renormalised_with_bald_untouched(tmp_path):
    store, values, valid = _filled(tmp_path)
    factor = np.array([1.0, 3.0])
    back = {(b.row, b.col): b for b in store.blocks(factor)}
    assert len(back) == store.block_count() == 3 * 3
    block = back[(128, 256)]  # the last column: 4 px wide
    window = (slice(128, 256), slice(256, 260))
    assert block.values.shape == (3, 128, 4)
    np.testing.assert_array_equal(block.valid, valid[window])
    expected = values[:2][(slice(None), *window)] * factor[:, None, None]
    expected /= expected.sum(0)
    ok = block.valid
    np.testing.assert_allclose(block.values[:2][:, ok], expected[:, ok], atol=2e-3)  # stored as float16
    np.testing.assert_allclose(block.values[2][ok], values[2][window][ok], atol=1e-3)
    store.__exit__(None, None, None)


def test_the_sample_is_an_even_grid_within_the_pixels_asked_and_the_file_goes_on_exit(tmp_path):
    store, values, valid = _filled(tmp_path)
    whole, whole_valid = store.sample(300 * 260)
    assert whole.shape == (3, 300, 260) and whole_valid.sum() == valid.sum()
    part, part_valid = store.sample(10_000)  # step 3: 100 x 87 pixels
    assert part.shape == (3, 100, 87) and part.shape[1] * part.shape[2] <= 10_000
    np.testing.assert_array_equal(part_valid, valid[::3, ::3])
    np.testing.assert_allclose(part[:, part_valid], values[:, ::3, ::3][:, part_valid], atol=1e-3)
    store.__exit__(None, None, None)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_room_for_the_store_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import pytest

    from engine.errors import InputError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(InputError, match="--out: .* GB free") as error:
        ProbabilityStore(tmp_path, 3, 4000, 4000, 256).__enter__()
    assert error.value.field == "out" and list(tmp_path.iterdir()) == []
