"""`python -m engine train`: a model from class points on one or more rasters."""

import argparse
from pathlib import Path

from engine.classes import parse_classes
from engine.commands.training_args import add_training_arguments, training_options
from engine.errors import InputError
from engine.events import Events
from engine.forest import ForestOptions, save_forest, train_forest
from engine.models import load_config
from engine.points import points_to_pixels, read_points
from engine.raster_io import open_raster, parse_bands
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import settings as smoothing_settings
from engine.train import check_init, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raster", action="extend", nargs="+", help="raster(s) to train on (GeoTIFF or any GDAL raster)"
    )
    parser.add_argument("--points", help="point layer (GeoPackage, GeoJSON, Shapefile) with a class per point")
    parser.add_argument("--classes", help="class names in index order, e.g. background,car,road (colour: car:#ff0000)")
    parser.add_argument("--class-field", default="class", help="the points' field with the class name or 0-based index")
    parser.add_argument(
        "--model",
        choices=("unet", "rf"),
        default="unet",
        help="unet: the segmentation network (default); rf: the random-forest baseline",
    )
    parser.add_argument("--out", help="model directory to write (replaced whole, only when training completes)")
    parser.add_argument("--init", help="model directory to continue from (warm start)")
    parser.add_argument("--bands", help="1-based bands to use, e.g. 1,2,3 (default: all)")
    add_training_arguments(parser)


def run(args: argparse.Namespace, events: Events) -> None:
    rasters, points, out = _require(args)
    with open_raster(rasters[0]) as ds:
        bands = parse_bands(args.bands, ds.count, rasters[0])
    for path in rasters:
        with open_raster(path) as ds:
            if ds.count < max(bands):
                raise InputError(f"--raster: {path} has {ds.count} band(s); all rasters need bands {bands}", "raster")
    init = Path(args.init) if args.init else None
    init_config = load_config(init, "init") if init is not None else None
    if args.classes:
        classes = parse_classes(args.classes)
    elif init_config is not None:
        classes = init_config.classes
    else:
        raise InputError("--classes is required: the class names in index order, e.g. background,car,road", "classes")
    if init_config is not None:
        check_init(init_config, init, classes, bands)
    training_options(args)  # checks the numbers before any file is read
    frame = read_points(points, args.class_field, classes)
    placed = points_to_pixels(frame, rasters)
    if placed.used == 0:
        raise InputError(
            f"--points: none of the {placed.total} point(s) in {points} lies on a valid pixel of the "
            f"raster(s) ({placed.outside} outside, {placed.nodata} on nodata); check the layers overlap",
            "points",
        )
    if placed.outside or placed.nodata:
        events.warning(
            f"{placed.outside + placed.nodata} of {placed.total} points were not used: "
            f"{placed.outside} outside every raster, {placed.nodata} on nodata pixels"
        )
    if args.model == "rf":
        _train_forest(args, rasters, placed, bands, classes, out, events)
        return
    options = training_options(args)
    result = train(rasters, placed.labels, bands, classes, options, args.torch_device, events, init, out)
    events.result(
        "train",
        model_dir=str(out),
        epochs=result.epochs,
        steps=result.steps,
        final_loss=result.final_loss,
        seconds=round(result.seconds, 2),
        points_used=placed.used,
        points_per_class=_per_class(placed, classes),
        points_dropped={"outside": placed.outside, "nodata": placed.nodata},
    )


def _train_forest(args, rasters, placed, bands, classes, out, events: Events) -> None:
    """--model rf: refit the forest on every point (--init only supplies the classes); its predictions are smoothed
    over superpixels as the default's are (unless --no-superpixel-smoothing: simulate's forest baseline is not)."""
    model, config = train_forest(rasters, placed.labels, bands, classes, ForestOptions(seed=args.seed), events)
    if args.superpixel_smoothing:
        config.trained[SMOOTHING_KEY] = smoothing_settings()
    save_forest(out, model, config)
    events.result(
        "train",
        model_dir=str(out),
        model="rf",
        trees=model.n_trees,
        nodes=model.n_nodes,
        seconds=config.trained["seconds"],
        points_used=placed.used,
        points_per_class=_per_class(placed, classes),
        points_dropped={"outside": placed.outside, "nodata": placed.nodata},
    )


def _per_class(placed, classes) -> dict[str, int]:
    counts = {c.name: 0 for c in classes}
    for lab in placed.labels:
        for k in lab.classes:
            counts[classes[k].name] += 1
    return counts


def _require(args: argparse.Namespace) -> tuple[list[Path], Path, Path]:
    if not args.raster:
        raise InputError("--raster is required: the raster(s) the points were clicked on", "raster")
    if not args.points:
        raise InputError("--points is required: a point layer with a class per point", "points")
    if not args.out:
        raise InputError("--out is required: the model directory to write", "out")
    return [Path(r) for r in args.raster], Path(args.points), Path(args.out)
