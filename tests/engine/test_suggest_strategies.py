import numpy as np
import pytest

from engine.strategies import (
    Candidates,
    allocate,
    best_overall,
    random_pixels,
    rank_and_cap,
    superpixel_queries,
    top_k_spread,
)


def _pairwise_min_distance(c: Candidates) -> float:
    xy = np.stack([c.rows, c.cols], 1).astype(float)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    d[np.eye(len(c), dtype=bool)] = np.inf
    return float(d.min())


def test_top_k_spread_respects_budget_and_spacing():
    rng = np.random.default_rng(0)
    score = rng.random((80, 90))
    score[40:44, 40:44] = 5.0  # a cluster of top scores: only one of it may be chosen
    valid = np.ones_like(score, bool)
    picked = top_k_spread(score, valid, k=12, min_distance=10)
    assert len(picked) == 12
    assert _pairwise_min_distance(picked) >= 10
    assert picked.scores[0] == 5.0 and np.sum(picked.scores == 5.0) == 1
    assert np.all(np.diff(picked.scores) <= 0)  # greedy: best first


def test_top_k_spread_is_greedy_by_score():
    score = np.zeros((20, 20))
    score[5, 5], score[5, 8], score[15, 15] = 3.0, 2.0, 1.0
    picked = top_k_spread(score, np.ones_like(score, bool), k=2, min_distance=4)
    assert list(zip(picked.rows.tolist(), picked.cols.tolist(), strict=True)) == [(5, 5), (15, 15)]


def test_top_k_spread_skips_invalid_and_excluded_pixels():
    score = np.arange(100, dtype=float).reshape(10, 10)
    valid = np.ones((10, 10), bool)
    valid[9] = False
    exclude = np.zeros((10, 10), bool)
    exclude[8, 9] = True
    picked = top_k_spread(score, valid, k=1, exclude=exclude)
    assert (picked.rows[0], picked.cols[0]) == (8, 8)


def test_top_k_spread_stops_when_space_runs_out():
    picked = top_k_spread(np.random.default_rng(1).random((10, 10)), np.ones((10, 10), bool), k=50, min_distance=6)
    assert 1 <= len(picked) < 50
    assert _pairwise_min_distance(picked) >= 6 if len(picked) > 1 else True


def test_random_pixels_budget_valid_and_reproducible():
    valid = np.zeros((30, 30), bool)
    valid[10:20, 5:25] = True
    a = random_pixels(valid, 25, np.random.default_rng(3))
    b = random_pixels(valid, 25, np.random.default_rng(3))
    assert len(a) == 25 and valid[a.rows, a.cols].all()
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
    assert len({(r, c) for r, c in zip(a.rows, a.cols, strict=True)}) == 25
    assert len(random_pixels(valid, 10_000, np.random.default_rng(0))) == valid.sum()


def _checkerboard(size=128, cell=32, seed=0):
    """An image of cell x cell squares of random colours, and the square index of every pixel."""
    rng = np.random.default_rng(seed)
    n = size // cell
    colors = rng.integers(0, 255, (n * n, 3))
    square = (np.arange(size)[:, None] // cell) * n + np.arange(size)[None, :] // cell
    image = colors[square].transpose(2, 0, 1).astype(np.float32)
    return image, square


def test_superpixel_groups_split_on_a_constructed_uncertainty_map():
    image, square = _checkerboard()
    hot = [1, 6, 11]  # three squares of high uncertainty; the rest is low
    rng = np.random.default_rng(0)
    uncertainty = np.where(np.isin(square, hot), 0.8, 0.1) + rng.uniform(0, 0.05, square.shape)
    peaks = {1: (10, 50), 6: (40, 75), 11: (70, 110)}  # the most uncertain pixel of each hot square
    for r, c in peaks.values():
        uncertainty[r, c] = 1.0
    valid = np.ones(square.shape, bool)
    result = superpixel_queries(image, uncertainty, valid, region_size=16)
    assert 0.1 <= result.threshold < 0.2  # the largest mean of the low group
    queried_pixels = np.isin(result.segments, result.queried)
    # every queried superpixel lies in a hot square, and every hot square's pixels are all queried
    assert np.isin(square[queried_pixels], hot).all()
    assert queried_pixels[np.isin(square, hot)].all()
    # one suggestion per queried superpixel, at its most uncertain pixel, best mean first
    c = result.candidates
    assert len(c) == result.queried.size
    assert np.all(np.diff(c.scores) <= 0)
    for r, col, region in zip(c.rows, c.cols, c.regions, strict=True):
        inside = result.segments == region
        assert result.segments[r, col] == region
        assert uncertainty[r, col] == uncertainty[inside].max()
    assert {tuple(p) for p in peaks.values()} <= set(zip(c.rows.tolist(), c.cols.tolist(), strict=True))


def test_superpixel_budget_follows_difficulty():
    image, square = _checkerboard()
    valid = np.ones(square.shape, bool)
    easy = np.where(square == 0, 0.9, 0.05)
    hard = np.where(np.isin(square, [0, 1, 2, 3, 4, 5, 6, 7]), 0.9, 0.05)
    assert len(superpixel_queries(image, hard, valid, region_size=16).candidates) > 2 * len(
        superpixel_queries(image, easy, valid, region_size=16).candidates
    )


def test_superpixel_skips_labelled_pixels_and_flat_maps():
    image, square = _checkerboard()
    valid = np.ones(square.shape, bool)
    flat = superpixel_queries(image, np.full(square.shape, 0.5), valid, region_size=16)
    assert len(flat.candidates) == 0
    uncertainty = np.where(square == 5, 0.9, 0.1)
    uncertainty[40, 40] = 1.0
    labelled = np.zeros(square.shape, bool)
    labelled[40, 40] = True
    result = superpixel_queries(image, uncertainty, valid, region_size=16, exclude=labelled)
    assert len(result.candidates) > 0
    assert not labelled[result.candidates.rows, result.candidates.cols].any()


def test_rank_and_cap_takes_most_uncertain_tiles_first_up_to_the_budget():
    tiles = [
        (0.2, Candidates([0, 1, 2], [0, 0, 0], [0.5, 0.4, 0.3])),
        (0.9, Candidates([5, 6], [1, 1], [0.9, 0.8])),
        (0.5, Candidates([7, 8, 9], [2, 2, 2], [0.7, 0.6, 0.2])),
    ]
    taken = rank_and_cap(tiles, budget=4)
    assert [len(t) for t in taken] == [0, 2, 2]
    assert taken[2].rows.tolist() == [7, 8]
    assert sum(len(t) for t in rank_and_cap(tiles, budget=None)) == 8
    assert sum(len(t) for t in rank_and_cap(tiles, budget=0)) == 0


@pytest.mark.parametrize("budget", [0, 1, 3, 7, 100])
def test_best_overall_respects_the_budget(budget):
    tiles = [Candidates([0, 1, 2], [0, 0, 0], [0.5, 0.4, 0.3]), Candidates([5, 6], [1, 1], [0.9, 0.1])]
    taken = best_overall(tiles, budget)
    assert sum(len(t) for t in taken) == min(budget, 5)
    kept = np.concatenate([t.scores for t in taken])
    dropped = sorted(set([0.5, 0.4, 0.3, 0.9, 0.1]) - set(kept.tolist()))
    assert not dropped or not kept.size or kept.min() >= max(dropped)


def test_allocate_sums_to_the_budget():
    counts = allocate(100, [1, 0, 3], np.random.default_rng(0))
    assert sum(counts) == 100 and counts[1] == 0 and counts[2] > counts[0]


def test_superpixels_of_a_partly_invalid_image_cover_only_its_valid_pixels_and_follow_an_edge():
    from engine.superpixels import segment

    rng = np.random.default_rng(3)
    image = rng.normal(0, 0.02, (3, 96, 96)).astype(np.float32)
    image[:, :, 48:] += 1.0  # a strong vertical edge at column 48
    valid = np.ones((96, 96), bool)
    valid[:30, :20] = False  # a nodata corner, as orthophotos' collars
    segments = segment(image, valid, region_size=12, compactness=0.1)
    assert np.all(segments[~valid] == 0) and np.all(segments[valid] > 0)
    left, right = set(np.unique(segments[:, :48])) - {0}, set(np.unique(segments[:, 48:]))
    assert not left & right  # no superpixel crosses the edge
    assert 40 <= len(left | right) <= 90  # about 96 * 96 / 12**2 = 64
