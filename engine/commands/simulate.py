"""`python -m engine simulate`: the labelling loop with a dense reference label playing the annotator."""

import argparse
from pathlib import Path

from engine.commands.training_args import add_training_arguments, training_options
from engine.errors import InputError
from engine.events import Events
from engine.manifest import read_manifest
from engine.raster_io import parse_bands
from engine.simulate import MODELS, STRATEGIES, SimulateOptions, Simulation
from engine.suggest import UNCERTAINTIES, SuggestOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", help="manifest.json of image/label pairs (format of ../shared/data/*)")
    parser.add_argument("--out", help="folder for results.csv, results.json, learning_curve.png, models and points")
    parser.add_argument(
        "--strategy",
        default="error",
        help=f"one or more of {','.join(STRATEGIES)}, comma-separated (one curve each); 'dense' alone: only the "
        "dense-label reference",
    )
    parser.add_argument("--model", choices=MODELS, default="unet", help="unet: the network; rf: the random forest")
    parser.add_argument("--iterations", type=int, default=5, help="train-predict-click rounds per strategy")
    parser.add_argument(
        "--points-per-class",
        type=int,
        default=1,
        help="error: clicks per class per image per iteration; the other strategies get the same "
        "number of clicks in total (unless --budget)",
    )
    parser.add_argument(
        "--initial-points",
        type=int,
        default=1,
        help="random first points per class per image, when the manifest has no seed points",
    )
    parser.add_argument("--budget", type=int, help="clicks per iteration of the non-error strategies")
    parser.add_argument("--label-regions", action="store_true", help="superpixel: label the queried superpixels whole")
    parser.add_argument("--dense", action="store_true", help="also train on the dense labels (percent of dense)")
    parser.add_argument(
        "--dense-epochs", type=int, help="epochs of the dense-label run (default: iterations x epochs, at least)"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of the items held out for scoring when the manifest has no val split "
        "(0: score on the training images)",
    )
    parser.add_argument("--bands", help="1-based bands to use, e.g. 1,2,3 (default: all)")
    group = parser.add_argument_group("training, each iteration")
    add_training_arguments(group, epochs=10)
    group = parser.add_argument_group("suggestions and prediction")
    group.add_argument("--superpixel-size", type=int, default=24)
    group.add_argument("--compactness", type=float, default=0.1)
    group.add_argument("--uncertainty", choices=UNCERTAINTIES, help="superpixel map (default bald)")
    group.add_argument("--mc-samples", type=int, default=8, help="MC dropout samples for bald")
    group.add_argument("--min-distance", type=float, default=16.0, help="pixels between points (entropy, margin)")
    group.add_argument("--tile-size", type=int, default=512)
    group.add_argument("--overlap", type=int, default=64)
    group.add_argument("--predict-batch-size", type=int, default=4)


def options_from(args: argparse.Namespace) -> SimulateOptions:
    strategies = [s.strip() for s in str(args.strategy).split(",") if s.strip()]
    dense = args.dense or "dense" in strategies
    strategies = [s for s in strategies if s != "dense"]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if (not strategies and not dense) or unknown:
        raise InputError(
            f"--strategy: {','.join(unknown) or 'none given'}; use one or more of {','.join(STRATEGIES)}", "strategy"
        )
    checks = [
        ("iterations", args.iterations >= 1, "at least 1"),
        ("points_per_class", args.points_per_class >= 1, "at least 1"),
        ("initial_points", args.initial_points >= 1, "at least 1"),
        ("dense_epochs", args.dense_epochs is None or args.dense_epochs >= 1, "at least 1"),
        ("budget", args.budget is None or args.budget >= 1, "at least 1"),
        ("val_fraction", 0 <= args.val_fraction < 1, "between 0 and 1"),
        ("tile_size", args.tile_size >= 32 and args.tile_size % 32 == 0, "a multiple of 32"),
        ("overlap", 0 <= args.overlap < args.tile_size // 2, "between 0 and half the tile size"),
        ("mc_samples", args.mc_samples >= 0, "0 or more"),
    ]
    for name, ok, what in checks:
        if not ok:
            raise InputError(f"--{name.replace('_', '-')}: {getattr(args, name)} must be {what}", name)
    if args.uncertainty == "bald" and args.mc_samples == 0:
        raise InputError("--uncertainty bald needs --mc-samples of 1 or more", "mc_samples")
    train = training_options(args)
    suggest = SuggestOptions(
        min_distance=args.min_distance,
        superpixel_size=args.superpixel_size,
        compactness=args.compactness,
        uncertainty=args.uncertainty,
        mc_samples=args.mc_samples,
        tile_size=args.tile_size,
        overlap=args.overlap,
        batch_size=args.predict_batch_size,
        seed=args.seed,
    )
    return SimulateOptions(
        strategies=strategies,
        iterations=args.iterations,
        points_per_class=args.points_per_class,
        initial_points=args.initial_points,
        budget=args.budget,
        label_regions=args.label_regions,
        dense=dense,
        dense_epochs=args.dense_epochs,
        model=args.model,
        val_fraction=args.val_fraction,
        train=train,
        suggest=suggest,
        seed=args.seed,
    )


def run(args: argparse.Namespace, events: Events) -> None:
    if not args.manifest:
        raise InputError("--manifest is required: a manifest.json of image/label pairs", "manifest")
    if not args.out:
        raise InputError("--out is required: the folder for the results", "out")
    options = options_from(args)
    manifest = read_manifest(args.manifest)
    if args.bands:
        from engine.raster_io import open_raster

        with open_raster(manifest.items[0].image, "manifest") as ds:
            options.bands = parse_bands(args.bands, ds.count, manifest.items[0].image)
    out = Path(args.out)
    simulation = Simulation(
        manifest,
        options,
        args.torch_device,
        events,
        out,
        on_row=lambda row: events.info(format_row(row, simulation.classes)),
    )
    rows = simulation.run()
    final = {s: rows_of[-1]["miou"] for s in options.strategies if (rows_of := [r for r in rows if r["strategy"] == s])}
    events.result(
        "simulate",
        out=str(out),
        results_csv=str(out / "results.csv"),
        results_json=str(out / "results.json"),
        learning_curve=str(out / "learning_curve.png"),
        final_miou=final,
        dense_miou=simulation.dense_miou,
        rows=len(rows),
        scored_on=simulation.scored_on,
    )


def format_row(row: dict, classes) -> str:
    dense = (
        f" {row['percent_of_dense']:5.1f}% of dense"
        if row.get("percent_of_dense") == row.get("percent_of_dense")
        else ""
    )
    ious = " ".join(f"{c.name}={100 * row[f'iou_{c.name}']:.1f}" for c in classes)
    return (
        f"{row['strategy']:>10} it {row['iteration']}: {row['labeled_pixels']} px "
        f"({row['labeled_percent']:.4f}%) mIoU {100 * row['miou']:.1f}%{dense} [{ious}] {row['seconds']:.0f}s"
    )
