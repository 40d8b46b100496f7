"""Suggestions of where to click next, over images in memory (simulate) or rasters of any size by windows (suggest).

A tile is the unit the strategies work on: an image of a manifest, or a window of a raster. Per tile the strategy
proposes scored pixels (``suggest_tile``); ``select`` then spends the budget over all tiles: the superpixel strategy
takes the most uncertain tiles first (the dynamic budget), the others take the best scores overall.
"""

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from pyproj import CRS
from rasterio.windows import Window
from shapely.geometry import Point

from engine import cancel
from engine.atomic import atomic_file
from engine.classes import ClassInfo
from engine.events import Events
from engine.models import ModelConfig
from engine.points import PixelLabels
from engine.predict import predict_probabilities
from engine.raster_io import open_raster, read_window
from engine.strategies import Candidates, best_overall, rank_and_cap, superpixel_queries, top_k_spread
from engine.superpixels import segment_polygons
from engine.uncertainty import from_probabilities

logging.getLogger("pyogrio").setLevel(logging.WARNING)  # not a line per GeoPackage layer written

STRATEGIES = ("superpixel", "entropy", "margin", "random")
UNCERTAINTIES = ("bald", "entropy", "margin")
DEFAULT_BUDGET = 100  # entropy, margin and random when no budget is given
POINTS_LAYER, SUPERPIXELS_LAYER = "suggestions", "superpixels"


@dataclass
class SuggestOptions:
    strategy: str = "superpixel"
    budget: int | None = None  # the most suggestions in total; None: the superpixel high groups whole, else 100
    min_distance: float = 16.0  # pixels between two suggestions of entropy, margin and random
    superpixel_size: int = 24  # side of a SLIC superpixel, in pixels
    compactness: float = 0.1
    uncertainty: str | None = None  # the map the superpixels average: default bald (with MC dropout), else entropy
    mc_samples: int = 8  # MC dropout samples for bald (superpixel strategy)
    window_size: int = 1024  # rasters are processed, and superpixel tiles ranked, by windows of this side
    tile_size: int = 512  # the network's tiles inside a window
    overlap: int = 64
    batch_size: int = 4
    seed: int = 0

    def measure(self) -> str:
        """The uncertainty map the strategy ranks by."""
        if self.uncertainty:
            return self.uncertainty
        if self.strategy == "superpixel":
            return "bald" if self.mc_samples > 0 else "entropy"
        return self.strategy if self.strategy in ("entropy", "margin") else "entropy"

    def cap(self) -> int | None:
        if self.budget is not None or self.strategy == "superpixel":
            return self.budget
        return DEFAULT_BUDGET

    def needs_mc(self) -> bool:
        return self.measure() == "bald"


def uncertainty_map(measure: str, probs: np.ndarray, bald: np.ndarray | None) -> np.ndarray:
    if measure == "bald":
        if bald is None:
            raise ValueError("bald uncertainty needs MC dropout samples (mc_samples > 0)")
        return bald
    return from_probabilities(measure, probs)


@dataclass
class TileSuggestions:
    """What a strategy proposes on one tile, in the tile's pixels, best first."""

    candidates: Candidates
    predicted: np.ndarray  # predicted class of each candidate
    uncertainty: np.ndarray  # the pixel uncertainty of each candidate
    mean_uncertainty: float  # over the tile's valid pixels: ranks tiles for the superpixel strategy
    segments: np.ndarray | None = None  # superpixel ids (superpixel strategy), kept only when asked for
    queried: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # queried superpixel ids


def suggest_tile(
    image: np.ndarray,
    valid: np.ndarray,
    probs: np.ndarray,
    bald: np.ndarray | None,
    options: SuggestOptions,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
    keep_segments: bool = False,
) -> TileSuggestions:
    """The strategy's proposals on one tile (bands x H x W raw image, its probabilities and optional BALD)."""
    valid = np.asarray(valid, bool)
    unc = uncertainty_map(options.measure(), probs, bald)
    segments, queried = None, np.zeros(0, np.int64)
    k = options.cap() if options.cap() is not None else int(valid.sum())
    if options.strategy == "superpixel":
        q = superpixel_queries(
            image, unc, valid, region_size=options.superpixel_size, compactness=options.compactness, exclude=exclude
        )
        candidates, queried = q.candidates, q.queried
        segments = q.segments if keep_segments else None
    elif options.strategy in ("entropy", "margin"):
        candidates = top_k_spread(unc, valid, k, options.min_distance, exclude)
    elif options.strategy == "random":
        candidates = top_k_spread(rng.random(valid.shape), valid, k, options.min_distance, exclude)
    else:
        raise ValueError(f"unknown strategy {options.strategy!r}; use one of {', '.join(STRATEGIES)}")
    predicted = np.argmax(probs[:, candidates.rows, candidates.cols], axis=0) if len(candidates) else np.zeros(0, int)
    mean = float(unc[valid].mean()) if valid.any() else float("nan")
    return TileSuggestions(candidates, predicted, unc[candidates.rows, candidates.cols], mean, segments, queried)


def select(tiles: list[TileSuggestions], options: SuggestOptions) -> list[np.ndarray]:
    """Spend the budget over the tiles; returns, per tile, the indexes of its candidates that were taken."""
    indexed = [
        Candidates(t.candidates.rows, t.candidates.cols, t.candidates.scores, np.arange(len(t.candidates)))
        for t in tiles
    ]
    if options.strategy == "superpixel":
        taken = rank_and_cap([(t.mean_uncertainty, c) for t, c in zip(tiles, indexed, strict=True)], options.cap())
    else:
        taken = best_overall(indexed, options.cap())
    return [c.regions for c in taken]


@dataclass
class RasterSuggestions:
    """Suggestions over rasters, ready to write: points (and superpixel polygons) in map coordinates."""

    points: gpd.GeoDataFrame
    superpixels: gpd.GeoDataFrame | None
    windows: int


def suggest_rasters(
    network: torch.nn.Module,
    config: ModelConfig,
    rasters: list[Path],
    options: SuggestOptions,
    device: torch.device,
    events: Events,
    iteration: int = 0,
    exclude: list[PixelLabels] | None = None,
) -> RasterSuggestions:
    """Predict each raster window by window and suggest points over all of them, in the first raster's CRS."""
    rng = np.random.default_rng(options.seed)
    plan = [(k, w) for k, path in enumerate(rasters) for w in _windows(path, options.window_size)]
    tiles: list[TileSuggestions] = []
    polygons: list[list[tuple[int, object]]] = []
    for done, (k, window) in enumerate(plan, start=1):
        cancel.check()
        with open_raster(rasters[k]) as ds:
            tile, polys = _suggest_window(ds, network, config, window, options, device, rng, exclude, k)
        tiles.append(tile)
        polygons.append(polys)
        events.progress("suggest", done, len(plan))
    if options.strategy == "superpixel" or options.min_distance <= 1:
        taken = select(tiles, options)
    else:  # the best overall, keeping the distance between points of neighbouring windows too
        taken = _best_spread(tiles, plan, options.min_distance, options.cap())
    crs = _crs_of(rasters[0])
    points = _points_frame(tiles, taken, plan, rasters, config.classes, options, iteration, crs)
    superpixels = None
    if options.strategy == "superpixel":
        superpixels = _superpixel_frame(tiles, taken, polygons, plan, rasters, options, iteration, crs)
    return RasterSuggestions(points, superpixels, len(plan))


def _windows(path: Path, size: int) -> list[Window]:
    with open_raster(path) as ds:
        height, width = ds.height, ds.width
    return [
        Window(c, r, min(size, width - c), min(size, height - r))
        for r in range(0, height, size)
        for c in range(0, width, size)
    ]


def _suggest_window(ds, network, config, window: Window, options: SuggestOptions, device, rng, exclude, k: int):
    """Predict a window with a margin of context around it, then suggest inside the window."""
    margin = options.overlap
    row, col, h, w = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    image, valid = read_window(ds, config.bands, row - margin, col - margin, h + 2 * margin, w + 2 * margin)
    prediction = predict_probabilities(
        network,
        config,
        image,
        valid,
        device,
        tile_size=options.tile_size,
        overlap=options.overlap,
        batch_size=options.batch_size,
        mc_samples=options.mc_samples if options.needs_mc() else 0,
    )
    inner = (slice(margin, margin + h), slice(margin, margin + w))
    probs = prediction.probs[(slice(None), *inner)]
    bald = prediction.bald[inner] if prediction.bald is not None else None
    excluded = None
    if exclude is not None and k < len(exclude) and len(exclude[k]):
        excluded = np.zeros((h, w), bool)
        r, c = exclude[k].rows - row, exclude[k].cols - col
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        excluded[r[inside], c[inside]] = True
    tile = suggest_tile(
        image[(slice(None), *inner)], valid[inner], probs, bald, options, rng, excluded, keep_segments=True
    )
    polys = []
    if tile.segments is not None:
        polys = segment_polygons(tile.segments, tile.queried, ds.window_transform(window))
        tile.segments = None  # free the window's memory
    return tile, polys


def _best_spread(tiles, plan, min_distance: float, budget: int | None) -> list[np.ndarray]:
    """The best candidates over all windows, greedily, none closer than ``min_distance`` to a better one of the
    same raster (each window's candidates are already spread among themselves)."""
    entries = []
    for t, tile in enumerate(tiles):
        k, window = plan[t]
        c = tile.candidates
        for i in range(len(c)):
            entries.append((-c.scores[i], t, i, k, c.rows[i] + window.row_off, c.cols[i] + window.col_off))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    kept: list[list[int]] = [[] for _ in tiles]
    accepted: dict[int, list[tuple[float, float]]] = {}
    left = np.inf if budget is None else budget
    for _, t, i, k, r, c in entries:
        if left <= 0:
            break
        near = accepted.setdefault(k, [])
        if any((r - r2) ** 2 + (c - c2) ** 2 < min_distance**2 for r2, c2 in near):
            continue
        near.append((r, c))
        kept[t].append(i)
        left -= 1
    return [np.asarray(sorted(x), np.int64) for x in kept]


def _crs_of(path: Path) -> CRS:
    with open_raster(path) as ds:
        return CRS.from_user_input(ds.crs)


def _points_frame(
    tiles, taken, plan, rasters, classes: list[ClassInfo], options, iteration: int, crs
) -> gpd.GeoDataFrame:
    frames = []
    for t, idx in enumerate(taken):
        if len(idx) == 0:
            continue
        k, window = plan[t]
        c = tiles[t].candidates
        with open_raster(rasters[k]) as ds:
            transform = ds.window_transform(window)
            raster_crs = CRS.from_user_input(ds.crs)
        xs, ys = transform * (c.cols[idx] + 0.5, c.rows[idx] + 0.5)
        frame = gpd.GeoDataFrame(
            {
                "score": c.scores[idx].astype(float),
                "uncertainty": tiles[t].uncertainty[idx].astype(float),
                "strategy": options.strategy,
                "predicted_class": [classes[int(p)].name for p in tiles[t].predicted[idx]],
                "iteration": int(iteration),
                "raster": rasters[k].name,
            },
            geometry=[Point(x, y) for x, y in zip(np.atleast_1d(xs), np.atleast_1d(ys), strict=True)],
            crs=raster_crs,
        )
        frames.append(frame.to_crs(crs))
    if not frames:
        return _empty_points(crs)
    points = pd.concat(frames, ignore_index=True).sort_values("score", ascending=False, kind="stable")
    points = points.reset_index(drop=True)
    points.insert(0, "rank", np.arange(1, len(points) + 1))
    return gpd.GeoDataFrame(points, geometry="geometry", crs=crs)


def _empty_points(crs) -> gpd.GeoDataFrame:
    columns = {
        "rank": pd.Series(dtype="int64"),
        "score": pd.Series(dtype=float),
        "uncertainty": pd.Series(dtype=float),
        "strategy": pd.Series(dtype=str),
        "predicted_class": pd.Series(dtype=str),
        "iteration": pd.Series(dtype="int64"),
        "raster": pd.Series(dtype=str),
    }
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _superpixel_frame(tiles, taken, polygons, plan, rasters, options, iteration: int, crs) -> gpd.GeoDataFrame:
    """The queried superpixels' outlines; ``suggested`` tells those that got a point within the budget."""
    frames = []
    for t, polys in enumerate(polygons):
        if not polys:
            continue
        k, _ = plan[t]
        c = tiles[t].candidates
        chosen = set(c.regions[taken[t]].tolist())
        score = dict(zip(c.regions.tolist(), c.scores.tolist(), strict=True))
        regions = [region for region, _ in polys]
        with open_raster(rasters[k]) as ds:
            raster_crs = CRS.from_user_input(ds.crs)
        frame = gpd.GeoDataFrame(
            {
                "score": [score.get(r, math.nan) for r in regions],
                "strategy": options.strategy,
                "suggested": [r in chosen for r in regions],
                "iteration": int(iteration),
                "raster": rasters[k].name,
                "superpixel": regions,
            },
            geometry=[geometry for _, geometry in polys],
            crs=raster_crs,
        )
        frames.append(frame.to_crs(crs))
    if not frames:
        columns = {
            "score": pd.Series(dtype=float),
            "strategy": pd.Series(dtype=str),
            "suggested": pd.Series(dtype=bool),
            "iteration": pd.Series(dtype="int64"),
            "raster": pd.Series(dtype=str),
            "superpixel": pd.Series(dtype="int64"),
        }
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)


GEOMETRY_TYPES = {POINTS_LAYER: "Point", SUPERPIXELS_LAYER: "Polygon"}
# GeoPackage 1.2: what the GDAL of older QGIS releases reads without a warning (newer GDALs write 1.4 by default)
GPKG_OPTIONS = {"VERSION": "1.2"}


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame | None]) -> Path:
    """Write the layers into one GeoPackage, atomically (the previous file stays until the new one is complete)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        for name, frame in layers.items():
            if frame is not None:
                frame.to_file(
                    tmp,
                    layer=name,
                    driver="GPKG",
                    geometry_type=GEOMETRY_TYPES.get(name, "Unknown"),
                    dataset_options=GPKG_OPTIONS,
                )
    return path
