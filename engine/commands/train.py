"""`python -m engine train`: a model from class points on one or more rasters."""

import argparse
from pathlib import Path

from engine.classes import parse_classes
from engine.errors import InputError
from engine.events import Events
from engine.forest import ForestOptions, save_forest, train_forest
from engine.losses import LOSSES
from engine.models import DEFAULT_ARCH, DEFAULT_ENCODER, load_config
from engine.points import points_to_pixels, read_points
from engine.raster_io import open_raster, parse_bands
from engine.train import TrainOptions, check_init, train


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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=256, help="side of the training patches (multiple of 32)")
    parser.add_argument("--patches-per-epoch", type=int, help="default: the rasters' area in patches (32..512)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--arch", default=DEFAULT_ARCH, help="any segmentation-models-pytorch architecture")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="any segmentation-models-pytorch encoder")
    parser.add_argument("--encoder-weights", help="pretrained encoder weights from the local cache, e.g. imagenet")
    parser.add_argument("--loss", choices=LOSSES, default="dwcd+ce", help="default: DWCD plus partial cross-entropy")
    parser.add_argument("--amplification", type=float, default=5.0, help="DWCD weight for confident, wrong pixels")
    parser.add_argument("--expand-clicks", action="store_true", help="spread each click over its similar superpixel")
    parser.add_argument("--consistency", type=float, default=0.0, help="weight of consistency on unlabelled pixels")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="self-supervised warm-up steps (fresh models)")


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
    _check_numbers(args)
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
    options = TrainOptions(
        arch=args.arch,
        encoder=args.encoder,
        encoder_weights=args.encoder_weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        lr=args.lr,
        loss=args.loss,
        amplification=args.amplification,
        patches_per_epoch=args.patches_per_epoch,
        seed=args.seed,
        expand_clicks=args.expand_clicks,
        consistency=args.consistency,
        pretrain_steps=args.pretrain_steps,
    )
    result = train(rasters, placed.labels, bands, classes, options, args.torch_device, events, init, out)
    counts = {c.name: 0 for c in classes}
    for lab in placed.labels:
        for k in lab.classes:
            counts[classes[k].name] += 1
    events.result(
        "train",
        model_dir=str(out),
        epochs=result.epochs,
        steps=result.steps,
        final_loss=result.final_loss,
        seconds=round(result.seconds, 2),
        points_used=placed.used,
        points_per_class=counts,
        points_dropped={"outside": placed.outside, "nodata": placed.nodata},
    )


def _train_forest(args, rasters, placed, bands, classes, out, events: Events) -> None:
    """--model rf: refit the forest on every point (--init only supplies the classes)."""
    model, config = train_forest(rasters, placed.labels, bands, classes, ForestOptions(seed=args.seed), events)
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


def _check_numbers(args: argparse.Namespace) -> None:
    if args.epochs < 1:
        raise InputError(f"--epochs: {args.epochs} must be at least 1", "epochs")
    if args.batch_size < 1:
        raise InputError(f"--batch-size: {args.batch_size} must be at least 1", "batch_size")
    if args.patch_size < 32 or args.patch_size % 32:
        raise InputError(
            f"--patch-size: {args.patch_size} must be a multiple of 32 (the network's output stride)", "patch_size"
        )
    if args.lr <= 0:
        raise InputError(f"--lr: {args.lr} must be positive", "lr")
