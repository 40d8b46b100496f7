"""`python -m engine predict`: class prediction and uncertainty GeoTIFFs on a raster's grid, by tiles."""

import argparse
from pathlib import Path

import torch

from engine.class_shares import add_class_share_argument, parse_class_shares, percents
from engine.class_weights import add_class_weight_argument, parse_class_weights, with_class_weights
from engine.errors import InputError
from engine.events import Events
from engine.predict import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_TILE_SIZE
from engine.predict_raster import RasterPredictOptions, predict_raster
from engine.predict_window import region_for
from engine.predictor import load_any
from engine.raster_io import open_raster
from engine.uncertainty import METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model directory written by train")
    parser.add_argument("--raster", help="raster to predict (GeoTIFF or any GDAL raster, any size)")
    parser.add_argument("--out", help="folder for prediction.tif, uncertainty.tif (and probabilities.tif)")
    parser.add_argument("--uncertainty", choices=METHODS, default="entropy",
                        help="entropy (default), margin, or bald (MC dropout, --mc-samples passes)")  # fmt: skip
    parser.add_argument("--mc-samples", type=int, default=8, help="MC dropout samples for --uncertainty bald")
    parser.add_argument("--probabilities", action="store_true", help="also write probabilities.tif, a band a class")
    parser.add_argument("--cog", action="store_true", help="write Cloud Optimized GeoTIFFs")
    parser.add_argument("--bbox", help="predict only minx,miny,maxx,maxy (raster CRS, or append ,EPSG:XXXX)")
    parser.add_argument("--aoi", help="predict only the extent of the polygons in this vector file (outside: nodata)")
    parser.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE, help="tile side (multiple of 32)")
    parser.add_argument("--overlap", type=int, help=f"pixels neighbouring tiles share (default {DEFAULT_OVERLAP}, at "
                        "most a quarter of the tile size)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="tiles per network pass")
    add_class_weight_argument(parser)
    add_class_share_argument(parser)


def run(args: argparse.Namespace, events: Events) -> None:
    for name in ("model", "raster", "out"):
        if not getattr(args, name):
            raise InputError(f"--{name} is required; see --help", name)
    model, raster, out = Path(args.model), Path(args.raster), Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is a file; give a folder for the outputs", "out")
    if args.mc_samples < 0:
        raise InputError(f"--mc-samples: {args.mc_samples} must not be negative", "mc_samples")
    torch.manual_seed(args.seed)  # MC dropout masks
    network, config = load_any(model, args.torch_device)
    weights = parse_class_weights(args.class_weight, config.class_names)
    shares = parse_class_shares(args.class_share, config.class_names, weights)
    with open_raster(raster) as ds:
        region = region_for(ds, args.bbox, args.aoi)
    overlap = args.overlap if args.overlap is not None else default_overlap(args.tile_size)
    options = RasterPredictOptions(
        tile_size=args.tile_size, overlap=overlap, batch_size=args.batch_size, uncertainty=args.uncertainty,
        mc_samples=args.mc_samples, probabilities=args.probabilities, cog=args.cog,
    )  # fmt: skip
    summary = predict_raster(network, with_class_weights(config, weights), raster, out, region, args.torch_device,
                             options, events, str(model), shares)  # fmt: skip
    both = weights | summary.pop("share_weights", {})
    events.result(
        "predict",
        model_dir=str(model),
        raster=str(raster),
        class_weights={name: both[name] for name in config.class_names if name in both},
        class_shares=percents(shares),
        **summary,
    )


def default_overlap(tile_size: int) -> int:
    return max(0, min(DEFAULT_OVERLAP, tile_size // 4))
