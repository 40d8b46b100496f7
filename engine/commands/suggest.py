"""`python -m engine suggest`: a GeoPackage of points to click next (and the queried superpixels' outlines)."""

import argparse
from pathlib import Path

from engine.class_shares import add_class_share_argument, parse_class_shares, percents, weigh_classes
from engine.class_weights import add_class_weight_argument, parse_class_weights
from engine.errors import InputError
from engine.events import Events
from engine.points import points_to_pixels, read_points
from engine.predictor import load_any
from engine.raster_io import open_raster
from engine.suggest import (
    POINTS_LAYER,
    STRATEGIES,
    SUPERPIXELS_LAYER,
    UNCERTAINTIES,
    SuggestOptions,
    suggest_rasters,
    write_gpkg,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model directory (from train)")
    parser.add_argument("--raster", action="extend", nargs="+", help="raster(s) to suggest points on")
    parser.add_argument("--out", help="GeoPackage to write: layer 'suggestions' (points), 'superpixels' (polygons)")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="superpixel",
        help="superpixel: dynamic budget over SLIC superpixels; entropy/margin: most uncertain "
        "pixels, spread out; random: the baseline",
    )
    parser.add_argument("--budget", type=int, help="the most points in total (default: superpixel none, others 100)")
    parser.add_argument(
        "--min-distance", type=float, default=16.0, help="pixels between two points (entropy, margin, random)"
    )
    parser.add_argument("--superpixel-size", type=int, default=24, help="side of a superpixel in pixels")
    parser.add_argument("--compactness", type=float, default=0.1, help="SLIC compactness (higher: squarer)")
    parser.add_argument("--uncertainty", choices=UNCERTAINTIES, help="map the superpixels average (default bald)")
    parser.add_argument("--mc-samples", type=int, default=8, help="MC dropout samples for bald")
    parser.add_argument("--points", help="points already clicked (their pixels are not suggested again)")
    parser.add_argument("--class-field", default="class", help="the --points field with the class")
    parser.add_argument("--iteration", type=int, default=0, help="written to every suggestion")
    parser.add_argument("--window-size", type=int, default=1024, help="rasters are read by windows of this side")
    parser.add_argument("--tile-size", type=int, default=512, help="side of the network's tiles")
    parser.add_argument("--overlap", type=int, default=64, help="overlap between tiles, blended")
    parser.add_argument("--batch-size", type=int, default=4)
    add_class_weight_argument(parser)
    add_class_share_argument(parser)


def run(args: argparse.Namespace, events: Events) -> None:
    if not args.model:
        raise InputError("--model is required: the model directory written by train", "model")
    if not args.raster:
        raise InputError("--raster is required: the raster(s) to suggest points on", "raster")
    if not args.out:
        raise InputError("--out is required: the GeoPackage to write, e.g. suggestions.gpkg", "out")
    rasters = [Path(r) for r in args.raster]
    network, config = load_any(Path(args.model), args.torch_device)
    weights = parse_class_weights(args.class_weight, config.class_names)
    shares = parse_class_shares(args.class_share, config.class_names, weights)
    for path in rasters:
        with open_raster(path) as ds:
            if ds.count < max(config.bands):
                raise InputError(
                    f"--raster: {path} has {ds.count} band(s); the model reads bands {config.bands}", "raster"
                )
    options = _options(args)
    config, weights, plan_events = weigh_classes(network, config, weights, shares, rasters, args.torch_device, events,
                                                 (options.tile_size, options.overlap))  # fmt: skip
    exclude = None
    if args.points:
        exclude = points_to_pixels(read_points(args.points, args.class_field, config.classes), rasters).labels
    result = suggest_rasters(network, config, rasters, options, args.torch_device, plan_events, args.iteration,
                             exclude)  # fmt: skip
    out = write_gpkg(Path(args.out), {POINTS_LAYER: result.points, SUPERPIXELS_LAYER: result.superpixels})
    events.result(
        "suggest",
        path=str(out),
        layers=[POINTS_LAYER] + ([SUPERPIXELS_LAYER] if result.superpixels is not None else []),
        strategy=options.strategy,
        suggestions=len(result.points),
        windows=result.windows,
        crs=result.points.crs.to_string(),
        class_weights=weights,
        class_shares=percents(shares),
    )


def _options(args: argparse.Namespace) -> SuggestOptions:
    if args.budget is not None and args.budget < 1:
        raise InputError(f"--budget: {args.budget} must be at least 1", "budget")
    if args.min_distance < 0:
        raise InputError(f"--min-distance: {args.min_distance} must be 0 or more", "min_distance")
    if args.superpixel_size < 4:
        raise InputError(f"--superpixel-size: {args.superpixel_size} must be at least 4 pixels", "superpixel_size")
    if args.mc_samples < 0:
        raise InputError(f"--mc-samples: {args.mc_samples} must be 0 or more", "mc_samples")
    if args.uncertainty == "bald" and args.mc_samples == 0:
        raise InputError("--uncertainty bald needs --mc-samples of 1 or more", "mc_samples")
    if args.window_size < 64:
        raise InputError(f"--window-size: {args.window_size} must be at least 64", "window_size")
    if args.tile_size < 32 or args.tile_size % 32:
        raise InputError(f"--tile-size: {args.tile_size} must be a multiple of 32", "tile_size")
    if not 0 <= args.overlap < args.tile_size // 2:
        raise InputError(f"--overlap: {args.overlap} must be between 0 and half the tile size", "overlap")
    return SuggestOptions(
        strategy=args.strategy,
        budget=args.budget,
        min_distance=args.min_distance,
        superpixel_size=args.superpixel_size,
        compactness=args.compactness,
        uncertainty=args.uncertainty,
        mc_samples=args.mc_samples,
        window_size=args.window_size,
        tile_size=args.tile_size,
        overlap=args.overlap,
        batch_size=args.batch_size,
        seed=args.seed,
    )
