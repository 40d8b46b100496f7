"""The user's expected class shares: ``--class-share road=7`` makes road cover about 7% of the predicted map.

A class weight (engine/class_weights.py) is the direct knob, but its right value depends on the model: on a model
whose pixels sit near the decision boundary a weight of 1.25 can cost 0.07 mIoU. What a user often knows instead is
roughly how much of the area a class covers ("roads are a few percent of this suburb"). Given such a share, the
engine predicts a sample of the map's tiles, finds the weight that makes the class win the argmax on that share
of the sampled pixels, and predicts with that weight (classes given no share keep their own weight, 1 by default).
This is the per-class threshold that docs/benchmarks.md ("A threshold, not a ranking, problem") found worth up to
+0.07 mIoU on bsb_toy, with the reference's shares; measured with shares off by a quarter ("Class shares the user
states"), most of that gain stays, and on models whose shares were already right little is lost.
"""

import argparse
import math
from itertools import groupby

import numpy as np
from rasterio.windows import Window

from engine.class_weights import LIMITS as WEIGHT_LIMITS
from engine.class_weights import with_class_weights
from engine.errors import InputError
from engine.events import Events
from engine.models import ModelConfig
from engine.predict import predict_probabilities
from engine.predictor import stride
from engine.raster_io import open_raster, read_window
from engine.tiling import TileGrid

FIELD = "class_share"
SAMPLE_PIXELS = 4_000_000  # the tiles predicted to fit the shares, at most (the whole area when it is smaller)
STEPS = 24  # bisection steps of a class's log weight: a factor of 1.0002 apart at the end
ROUNDS = 4  # of the bisections, when several classes are given a share
TOLERANCE = 0.002  # a share this close to its target is left as it is


def add_class_share_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class-share", action="append", metavar="CLASS=PERCENT",
                        help="make a class cover about PERCENT of the predicted map (e.g. road=7; repeatable; the "
                        "engine fits the class's weight on a sample of the area)")  # fmt: skip


def parse_class_shares(values: list[str] | None, class_names: list[str], weights: dict[str, float]) -> dict[str, float]:
    """``["road=7", "building=20%"]`` to {class: fraction} in the model's class order; an unknown class, a share
    outside (0, 100), shares that add up to more than 100, or a class that also has a --class-weight is an
    InputError."""
    if not values:
        return {}
    shares = {}
    for text in (str(v) for v in values):
        name, sep, value = text.rpartition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--class-share: {text!r} is not CLASS=PERCENT; give e.g. road=7", FIELD)
        if name not in class_names:
            raise InputError(f"--class-share: the model has no class {name!r}; its classes are "
                             f"{', '.join(class_names)}", FIELD)  # fmt: skip
        if name in weights:
            raise InputError(f"--class-share: {name} also has a --class-weight; give one of the two", FIELD)
        shares[name] = _percent(name, value) / 100
    if sum(shares.values()) > 1.0 + 1e-6:
        raise InputError(f"--class-share: the shares add up to {100 * sum(shares.values()):g}%, more than the whole "
                         "map; lower them", FIELD)  # fmt: skip
    return {name: shares[name] for name in class_names if name in shares}


def percents(shares: dict[str, float]) -> dict[str, float]:
    """{class: fraction} to {class: percent}, as the result events give them."""
    return {name: round(100 * share, 4) for name, share in shares.items()}


def fit_weights(probs: list[np.ndarray], masks: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
    """Per-class factors on ``probs`` (each C x H x W) whose argmax covers ``targets`` (fractions; NaN: no target,
    factor 1) of the ``masks``' pixels, as closely as the argmax's jumps allow; within the class weights' limits.

    A class's share grows with its own factor, so each stated class's factor is bisected (in log space) to its
    target, the others held; with several stated classes the rounds repeat, each starting from the last. A class
    already within TOLERANCE of its target keeps its factor (1 at first)."""
    stated = np.flatnonzero(~np.isnan(targets))
    factor = np.ones(len(targets))
    low, high = np.log(WEIGHT_LIMITS)
    for _ in range(ROUNDS if len(stated) > 1 else 1):
        for c in stated:
            if abs(argmax_shares(probs, masks, factor)[c] - targets[c]) <= TOLERANCE:
                continue
            lo, hi = low, high
            for _ in range(STEPS):
                factor[c] = np.exp((lo + hi) / 2)
                if argmax_shares(probs, masks, factor)[c] < targets[c]:
                    lo = np.log(factor[c])
                else:
                    hi = np.log(factor[c])
            factor[c] = np.exp((lo + hi) / 2)
    return factor


def argmax_shares(probs: list[np.ndarray], masks: list[np.ndarray], factor: np.ndarray) -> np.ndarray:
    """Each class's share of the pixels in ``masks`` where it has the largest ``probs`` times ``factor``."""
    counts = np.zeros(len(factor), np.int64)
    for p, mask in zip(probs, masks, strict=True):
        counts += np.bincount(np.argmax(p * factor[:, None, None], 0)[mask], minlength=len(factor))
    return counts / max(counts.sum(), 1)


def share_weights(model, config: ModelConfig, rasters: list, shares: dict[str, float], device, events: Events,
                  tiling: tuple[int, int], areas=None, aoi=None, seed: int = 0) -> dict[str, float]:  # fmt: skip
    """The weights that give the classes of ``shares`` those shares of the argmax over a sample of the tiles that
    predicting ``rasters`` in tiles of ``tiling`` (tile size, overlap) reads (within ``areas``, one rasterio Window
    per raster, if given; counting only the pixels inside the AOI of ``aoi(transform, height, width)``, a bool
    mask, if given), as ``model`` predicts them with ``config``.

    Each sampled tile is read and predicted as the map's own tiles are (engine/predict_raster.py), context included:
    windows predicted on their own, without what surrounds them, gave road on 14.2% of a map that has 18.6%
    (docs/benchmarks.md, "Class shares the user states")."""
    if not shares:
        return {}
    events.info(f"fitting the weights of {', '.join(shares)} to the shares asked for, on a sample of the map")
    probs, masks = [], []
    for path, tiles in groupby(_sample_tiles(rasters, areas, tiling, stride(model), seed), key=lambda t: t[0]):
        with open_raster(path) as ds:
            for _, (row0, col0), grid, tile in tiles:
                row, col = row0 + tile.row, col0 + tile.col
                image, valid = read_window(ds, config.bands, row, col, grid.tile_h, grid.tile_w)
                counted = valid & _own_pixels(grid, tile)
                if aoi is not None:  # the AOI masks the map, not the network's input
                    counted &= aoi(ds.window_transform(Window(col, row, grid.tile_w, grid.tile_h)), grid.tile_h,
                                   grid.tile_w)  # fmt: skip
                if counted.any():
                    probs.append(predict_probabilities(model, config, image, valid, device, tile_size=tiling[0],
                                                       overlap=tiling[1]).probs)  # fmt: skip
                    masks.append(counted)
    if not probs:
        raise InputError("--class-share: the area to predict has no valid pixels to fit the shares on", FIELD)
    names = config.class_names
    targets = np.array([shares.get(name, np.nan) for name in names])
    factor = fit_weights(probs, masks, targets)
    before, after = argmax_shares(probs, masks, np.ones(len(names))), argmax_shares(probs, masks, factor)
    weights = {name: round(float(factor[k]), 4) for k, name in enumerate(names) if name in shares}
    for k, name in enumerate(names):
        if name in shares:
            events.info(f"{name}: weight {weights[name]:g} for {100 * shares[name]:g}% of the map (the sample: "
                        f"{100 * before[k]:.1f}% without, {100 * after[k]:.1f}% with it)")  # fmt: skip
    return weights


def _own_pixels(grid: TileGrid, tile) -> np.ndarray:
    """The pixels of ``tile`` that the map takes from it alone: inside the area and outside the overlaps with its
    neighbours (where the map blends tiles)."""
    own = np.zeros((grid.tile_h, grid.tile_w), bool)
    top = grid.overlap if tile.i > 0 else 0
    left = grid.overlap if tile.j > 0 else 0
    bottom = grid.overlap if tile.i < len(grid.row_starts) - 1 else 0
    right = grid.overlap if tile.j < len(grid.col_starts) - 1 else 0
    own[top : grid.tile_h - bottom, left : grid.tile_w - right] = True
    own[grid.height - tile.row :, :] = False  # past the area: context, not map
    own[:, grid.width - tile.col :] = False
    return own


def _sample_tiles(rasters: list, areas, tiling: tuple[int, int], multiple: int, seed: int) -> list:
    """(raster, area origin, TileGrid, Tile) of up to SAMPLE_PIXELS / tile area tiles, drawn at random from the tile
    grids of all the rasters' areas (in raster and grid order)."""
    tiles = []
    for k, path in enumerate(rasters):
        if areas is None:
            with open_raster(path) as ds:
                area = Window(0, 0, ds.width, ds.height)
        else:
            area = areas[k]
        grid = TileGrid(int(area.height), int(area.width), tiling[0], tiling[1], multiple)
        tiles += [(path, (int(area.row_off), int(area.col_off)), grid, tile) for tile in grid]
    count = max(1, SAMPLE_PIXELS // (tiles[0][2].tile_h * tiles[0][2].tile_w))
    if len(tiles) <= count:
        return tiles
    return [tiles[i] for i in sorted(np.random.default_rng(seed).choice(len(tiles), count, replace=False))]


def weigh_classes(model, config: ModelConfig, weights: dict[str, float], shares: dict[str, float], rasters: list,
                  device, events: Events, tiling: tuple[int, int], areas=None,
                  aoi=None) -> tuple[ModelConfig, dict[str, float]]:  # fmt: skip
    """``config`` with the user's weights and the weights fitted to the user's shares (share_weights), and all
    those weights by class, in the model's class order."""
    config = with_class_weights(config, weights)
    fitted = share_weights(model, config, rasters, shares, device, events, tiling, areas, aoi)
    both = weights | fitted
    return with_class_weights(config, fitted), {name: both[name] for name in config.class_names if name in both}


def _percent(name: str, text: str) -> float:
    try:
        value = float(text.strip().rstrip("%").replace(",", "."))
    except ValueError:
        value = math.nan
    if not 0 < value < 100:  # NaN fails too
        raise InputError(f"--class-share: the share of {name} ({text!r}) must be a percentage above 0 and below 100, "
                         "e.g. 7 for 7% of the map", FIELD)  # fmt: skip
    return value
