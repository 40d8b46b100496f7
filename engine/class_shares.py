"""The user's expected class shares: ``--class-share road=7`` makes road cover about 7% of the predicted map.

A class weight (engine/class_weights.py) is the direct knob, but its right value depends on the model: on a model
whose pixels sit near the decision boundary a weight of 1.25 can cost 0.07 mIoU. What a user often knows instead is
roughly how much of the area a class covers ("roads are a few percent of this suburb"). Given such a share, the
engine finds the weight that makes the class win the argmax on that share of the pixels and uses it (classes given no
share keep their own weight, 1 by default). ``predict`` predicts the map once into a store of its probabilities
(engine/probability_store.py), fits the weight on them (an even grid of at most SAMPLE_PIXELS of them) and writes
the map from the store with the weight applied to those final probabilities, so the map has the share asked for;
``suggest`` predicts its rasters first (whole up to SAMPLE_PIXELS, else random windows) and applies the weight as a
``--class-weight``, before the superpixel smoothing, so its share is close to the one asked for, not exact.
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
from engine.prior import sample_windows
from engine.raster_io import open_raster, read_window
from engine.tiling import round_up

FIELD = "class_share"
SAMPLE_PIXELS = 4_194_304  # the fit's pixels, at most (suggest: predicted for it; an area this large or smaller whole)
SAMPLE_SIDE = 1024  # the windows of a larger area's sample: 4 of them
STEPS = 24  # bisection steps of a class's log weight: a factor of 1.0002 apart at the end
ROUNDS = 4  # of the bisections, when several classes are given a share
TOLERANCE = 0.002  # a share this close to its target is left as it is


def add_class_share_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class-share", action="append", metavar="CLASS=PERCENT",
                        help="make a class cover about PERCENT of the predicted map (e.g. road=7; repeatable; "
                        "the class's weight is fitted on the predicted probabilities)")  # fmt: skip


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


def share_weights(model, config: ModelConfig, sample: list[tuple], shares: dict[str, float], device, events: Events,
                  tiling: tuple[int, int]) -> dict[str, float]:  # fmt: skip
    """The weights that give the classes of ``shares`` those shares of the argmax over ``sample`` ((raster, rasterio
    Window) pairs, from _sample), as ``model`` predicts them with ``config`` in tiles of ``tiling`` (tile size,
    overlap).

    suggest's fit: an area of up to SAMPLE_PIXELS is predicted whole (the same tiles, blended alike), a larger one by
    a random sample of windows of SAMPLE_SIDE px; smaller windows missed a whole tile's road share by 2.5 to 7.6
    points (docs/benchmarks.md, "Class shares the user states"). ``predict`` fits on the map itself instead
    (engine/predict_raster.py). Progress events (stage "class shares") follow the predicted pixels."""
    events.info(f"fitting the weights of {', '.join(shares)} to the shares asked for: predicting the rasters first")
    probs, masks = [], []
    total = sum(int(window.height) * int(window.width) for _, window in sample)
    done = 0
    for path, windows in groupby(sample, key=lambda item: item[0]):
        with open_raster(path) as ds:
            for _, window in windows:
                row, col, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
                # an area smaller than a tile is read, as the map reads it, to a whole multiple of the model's stride
                read_h, read_w = (round_up(n, stride(model)) if n <= tiling[0] else n for n in (h, w))
                image, valid = read_window(ds, config.bands, row, col, read_h, read_w)
                counted = valid[:h, :w]
                if counted.any():

                    def progress(tiles: int, of: int, before: int = done, pixels: int = h * w) -> None:
                        events.progress("class shares", before + pixels * tiles // of, total)

                    prediction = predict_probabilities(model, config, image, valid, device, tile_size=tiling[0],
                                                       overlap=tiling[1], progress=progress)  # fmt: skip
                    probs.append(prediction.probs[:, :h, :w])
                    masks.append(counted)
                done += h * w
                events.progress("class shares", done, total)
    return fit_shares(probs, masks, config.class_names, shares, events)[1]


def fit_shares(probs: list[np.ndarray], masks: list[np.ndarray], names: list[str], shares: dict[str, float],
               events: Events) -> tuple[np.ndarray, dict[str, float]]:  # fmt: skip
    """The per-class factors of fit_weights for ``shares`` ({class: fraction}) on ``probs`` and ``masks``, and the
    stated classes' factors by name (rounded as the result event gives them); logs each one and the share it gives.
    No pixel to fit on is an InputError."""
    if not any(mask.any() for mask in masks):
        raise InputError("--class-share: the area to predict has no valid pixels to fit the shares on", FIELD)
    targets = np.array([shares.get(name, np.nan) for name in names])
    factor = fit_weights(probs, masks, targets)
    weights = {name: round(float(factor[k]), 4) for k, name in enumerate(names) if name in shares}
    factor = np.array([weights.get(name, 1.0) for name in names])  # what the result event says is what is applied
    before, after = argmax_shares(probs, masks, np.ones(len(names))), argmax_shares(probs, masks, factor)
    for k, name in enumerate(names):
        if name in shares:
            events.info(f"{name}: weight {weights[name]:g} for {100 * shares[name]:g}% of the map (the sample: "
                        f"{100 * before[k]:.1f}% without, {100 * after[k]:.1f}% with it)")  # fmt: skip
    return factor, weights


def _areas(rasters: list, areas) -> list[Window]:
    """``areas``, or each raster's whole extent."""
    if areas is not None:
        return list(areas)
    whole = []
    for path in rasters:
        with open_raster(path) as ds:
            whole.append(Window(0, 0, ds.width, ds.height))
    return whole


def _sample(rasters: list, areas, seed: int) -> list[tuple]:
    """(raster, Window) to predict: each raster's whole area when they add up to at most SAMPLE_PIXELS, else that
    many pixels in windows of SAMPLE_SIDE px drawn at random from a grid over all the areas (in raster order)."""
    areas = _areas(rasters, areas)
    if sum(int(a.height) * int(a.width) for a in areas) <= SAMPLE_PIXELS:
        return list(zip(rasters, areas, strict=True))
    windows = sample_windows(rasters, np.random.default_rng(seed), SAMPLE_PIXELS // SAMPLE_SIDE**2, SAMPLE_SIDE, areas)
    return [(path, Window(col, row, w, h)) for path, row, col, h, w in windows]


def weigh_classes(model, config: ModelConfig, weights: dict[str, float], shares: dict[str, float], rasters: list,
                  device, events: Events,
                  tiling: tuple[int, int]) -> tuple[ModelConfig, dict[str, float], Events]:  # fmt: skip
    """suggest's ``config`` with the user's weights and the weights fitted to the user's shares over the whole
    ``rasters`` (share_weights), all those weights by class, in the model's class order, and the events for the work
    that follows: with shares, the fit takes the first part of the progress bar (its share of the pixels predicted in
    all) and the rest continues it."""
    config = with_class_weights(config, weights)
    if not shares:
        return config, {name: weights[name] for name in config.class_names if name in weights}, events
    areas = _areas(rasters, None)
    sample = _sample(rasters, areas, seed=0)
    fitted_pixels = sum(int(window.height) * int(window.width) for _, window in sample)
    split = fitted_pixels / (fitted_pixels + sum(int(area.height) * int(area.width) for area in areas))
    fitted = share_weights(model, config, sample, shares, device, events.span(0.0, split), tiling)
    both = weights | fitted
    weighed = {name: both[name] for name in config.class_names if name in both}
    return with_class_weights(config, fitted), weighed, events.span(split, 1.0)


def _percent(name: str, text: str) -> float:
    try:
        value = float(text.strip().rstrip("%").replace(",", "."))
    except ValueError:
        value = math.nan
    if not 0 < value < 100:  # NaN fails too
        raise InputError(f"--class-share: the share of {name} ({text!r}) must be a percentage above 0 and below 100, "
                         "e.g. 7 for 7% of the map", FIELD)  # fmt: skip
    return value
