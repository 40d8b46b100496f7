"""Where to click next: pure functions from an uncertainty map (and the image, for superpixels) to scored pixels.

- ``top_k_spread``: the highest-scoring pixels, no two closer than a minimum distance (entropy, margin).
- ``random_pixels``: the baseline.
- ``superpixel_queries``: the dynamic-budget method of Wang and Stavness: SLIC superpixels, mean uncertainty per
  superpixel, two-class natural breaks on those means, the high group queried at its most uncertain pixel.
- ``rank_and_cap``: tiles ranked by mean uncertainty, their queries taken in that order up to a budget.
"""

from dataclasses import dataclass, field

import numpy as np

from engine.natural_breaks import two_class_breaks
from engine.superpixels import segment, segment_means


@dataclass
class Candidates:
    """Suggested pixels of one image: row, column, score and the superpixel each came from (-1: none)."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    regions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        self.rows = np.asarray(self.rows, np.int64)
        self.cols = np.asarray(self.cols, np.int64)
        self.scores = np.asarray(self.scores, np.float64)
        regions = np.asarray(self.regions, np.int64)
        self.regions = regions if regions.size == self.rows.size else np.full(self.rows.size, -1, np.int64)

    def __len__(self) -> int:
        return int(self.rows.size)

    def take(self, index) -> "Candidates":
        return Candidates(self.rows[index], self.cols[index], self.scores[index], self.regions[index])

    def best_first(self) -> "Candidates":
        return self.take(np.argsort(-self.scores, kind="stable"))

    def shifted(self, row: int, col: int) -> "Candidates":
        return Candidates(self.rows + row, self.cols + col, self.scores, self.regions)


def _open_pixels(score: np.ndarray, valid: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    usable = np.asarray(valid, bool) & np.isfinite(score)
    if exclude is not None:
        usable &= ~np.asarray(exclude, bool)
    return usable


def top_k_spread(
    score: np.ndarray, valid: np.ndarray, k: int, min_distance: float = 0.0, exclude: np.ndarray | None = None
) -> Candidates:
    """The ``k`` highest-scoring usable pixels, greedily, skipping any closer than ``min_distance`` pixels
    (Euclidean) to one already chosen. Ties go to the earlier pixel in row-major order."""
    score = np.asarray(score, np.float64)
    flat = np.flatnonzero(_open_pixels(score, valid, exclude))
    if k <= 0 or flat.size == 0:
        return Candidates()
    order = flat[np.argsort(-score.ravel()[flat], kind="stable")]
    width = score.shape[1]
    if min_distance <= 1:
        chosen = order[:k]
        return Candidates(chosen // width, chosen % width, score.ravel()[chosen])
    reach = int(np.ceil(min_distance)) - 1
    offsets = np.arange(-reach, reach + 1)
    stamp = offsets[:, None] ** 2 + offsets[None, :] ** 2 < min_distance**2
    blocked = np.zeros((score.shape[0] + 2 * reach, width + 2 * reach), bool)  # padded by ``reach``
    chosen: list[int] = []
    for start in range(0, order.size, 4096):
        chunk = order[start : start + 4096]
        chunk = chunk[~blocked[chunk // width + reach, chunk % width + reach]]
        for pixel in chunk:
            r, c = divmod(int(pixel), width)
            if blocked[r + reach, c + reach]:
                continue
            chosen.append(int(pixel))
            blocked[r : r + 2 * reach + 1, c : c + 2 * reach + 1] |= stamp
            if len(chosen) == k:
                break
        if len(chosen) == k:
            break
    chosen_arr = np.asarray(chosen, np.int64)
    return Candidates(chosen_arr // width, chosen_arr % width, score.ravel()[chosen_arr])


def random_pixels(
    valid: np.ndarray,
    k: int,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    score: np.ndarray | None = None,
) -> Candidates:
    """``k`` usable pixels drawn uniformly without replacement; scored by ``score`` when given, else 0."""
    usable = np.asarray(valid, bool) if exclude is None else np.asarray(valid, bool) & ~np.asarray(exclude, bool)
    flat = np.flatnonzero(usable)
    if k <= 0 or flat.size == 0:
        return Candidates()
    chosen = np.sort(rng.choice(flat, size=min(k, flat.size), replace=False))
    width = usable.shape[1]
    values = np.zeros(chosen.size) if score is None else np.asarray(score, np.float64).ravel()[chosen]
    return Candidates(chosen // width, chosen % width, values)


@dataclass
class SuperpixelQueries:
    """The superpixels of one image and the queried ones: the high group of the natural breaks on their means."""

    segments: np.ndarray  # int H x W, 0 outside the valid pixels, 1.. superpixel ids
    means: np.ndarray  # mean uncertainty of each superpixel id (index 0 unused, NaN)
    threshold: float  # natural break: superpixels with a mean above it are queried
    queried: np.ndarray  # ids of the queried superpixels, highest mean first
    candidates: Candidates  # one point per queried superpixel (its most uncertain open pixel), highest mean first
    mean_uncertainty: float  # of the image's valid pixels: the rank of this image among the others


def superpixel_queries(
    image: np.ndarray,
    uncertainty: np.ndarray,
    valid: np.ndarray,
    *,
    region_size: int = 24,
    compactness: float = 0.1,
    exclude: np.ndarray | None = None,
) -> SuperpixelQueries:
    """Dynamic budget on one image (bands x H x W): the number of queries follows how many superpixels stand out.

    Each queried superpixel is suggested at its most uncertain pixel outside ``exclude`` (already labelled pixels);
    a superpixel with no such pixel is not suggested. The candidates' score is the superpixel's mean uncertainty.
    """
    valid = np.asarray(valid, bool)
    uncertainty = np.asarray(uncertainty, np.float64)
    segments = segment(image, valid, region_size=region_size, compactness=compactness)
    means = segment_means(segments, uncertainty)
    ids = np.flatnonzero(~np.isnan(means))
    split = two_class_breaks(means[ids])
    queried = ids[split.high]
    queried = queried[np.argsort(-means[queried], kind="stable")]
    candidates = _most_uncertain_pixels(segments, uncertainty, queried, means, exclude)
    mean_unc = float(uncertainty[valid].mean()) if valid.any() else float("nan")
    return SuperpixelQueries(segments, means, split.threshold, queried, candidates, mean_unc)


def _most_uncertain_pixels(
    segments: np.ndarray, uncertainty: np.ndarray, queried: np.ndarray, means: np.ndarray, exclude: np.ndarray | None
) -> Candidates:
    if queried.size == 0:
        return Candidates()
    rank = np.full(means.size, -1, np.int64)
    rank[queried] = np.arange(queried.size)
    inside = rank[segments] >= 0
    if exclude is not None:
        inside &= ~np.asarray(exclude, bool)
    flat = np.flatnonzero(inside)
    seg = segments.ravel()[flat]
    unc = uncertainty.ravel()[flat]
    order = np.lexsort((flat, -unc, seg))  # by superpixel, then most uncertain first, then row-major
    seg_sorted = seg[order]
    first = order[np.r_[True, seg_sorted[1:] != seg_sorted[:-1]]] if order.size else order
    pixels, regions = flat[first], seg[first]
    by_rank = np.argsort(rank[regions], kind="stable")
    pixels, regions = pixels[by_rank], regions[by_rank]
    width = segments.shape[1]
    return Candidates(pixels // width, pixels % width, means[regions], regions)


def rank_and_cap(tiles: list[tuple[float, Candidates]], budget: int | None) -> list[Candidates]:
    """Take the tiles' candidates tile by tile, most uncertain tile first (each tile's own order kept), until
    ``budget`` candidates are taken; returns the part of each tile (in the input order) that was taken."""
    order = sorted(range(len(tiles)), key=lambda t: (_descending(tiles[t][0]), t))
    left = np.inf if budget is None else max(0, int(budget))
    taken: list[Candidates] = [Candidates() for _ in tiles]
    for t in order:
        if left <= 0:
            break
        candidates = tiles[t][1]
        count = int(min(len(candidates), left))
        taken[t] = candidates.take(np.arange(count))
        left -= count
    return taken


def best_overall(tiles: list[Candidates], budget: int | None) -> list[Candidates]:
    """The ``budget`` highest-scoring candidates over all tiles (ties: earlier tile, earlier candidate)."""
    if budget is None:
        return tiles
    scores = np.concatenate([c.scores for c in tiles]) if tiles else np.zeros(0)
    owner = np.concatenate([np.full(len(c), t) for t, c in enumerate(tiles)]) if tiles else np.zeros(0, int)
    index = np.concatenate([np.arange(len(c)) for c in tiles]) if tiles else np.zeros(0, int)
    keep = np.argsort(-scores, kind="stable")[: max(0, int(budget))]
    return [tiles[t].take(np.sort(index[keep][owner[keep] == t])) for t in range(len(tiles))]


def allocate(budget: int, weights: list[float], rng: np.random.Generator) -> list[int]:
    """Split ``budget`` among tiles in proportion to ``weights`` (e.g. valid pixels), at random (multinomial)."""
    weights_arr = np.asarray(weights, np.float64)
    if budget <= 0 or weights_arr.sum() <= 0:
        return [0] * len(weights)
    return rng.multinomial(int(budget), weights_arr / weights_arr.sum()).tolist()


def _descending(value: float) -> float:
    return -value if np.isfinite(value) else np.inf
