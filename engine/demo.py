"""`make demo` (``python -m engine.demo --out demo``): the click-train-predict loop on a synthetic scene, on a CPU.

1. Draws a georeferenced synthetic aerial scene with its reference label (engine/synthetic.py) and cuts it into
   tiles with a train/val manifest.
2. Runs the simulation (engine/simulate.py): a few clicks per class per tile, train, predict, click where the
   prediction is wrong, train again from the previous model, and so on; prints a table row per iteration.
3. Predicts the whole scene with the last model and suggests where to click next.
4. Leaves in the output folder: scene.tif and reference.tif, prediction.tif, uncertainty.tif, suggestions.gpkg,
   points.gpkg, learning_curve.png, results.csv, and demo.qgs, a QGIS project that opens them all with styles.

The demo trains the network alone, uncorrected (the default before the hybrid): the engine's default adds a random
forest (engine/hybrid.py), which makes every prediction of the loop several times slower on a CPU, a class-prior
correction (engine/prior.py), superpixel smoothing (engine/smoothing.py) and flip averaging (engine/flips.py);
``--forest-ensemble`` runs the demo with all of them.
"""

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import rasterio
import torch

from engine import cancel
from engine.atomic import atomic_file
from engine.events import Events
from engine.manifest import read_manifest
from engine.predict_raster import RasterPredictOptions, predict_raster
from engine.predictor import load_any
from engine.qgis_project import Layer, write_project
from engine.simulate import SimulateOptions, Simulation
from engine.suggest import POINTS_LAYER, SUPERPIXELS_LAYER, SuggestOptions, suggest_rasters, write_gpkg
from engine.synthetic import write_scene
from engine.train import TrainOptions

log = logging.getLogger("engine.demo")

# Sized to finish in about five minutes on two CPU cores (docs/benchmarks.md has the measured time).
DEMO_TRAIN = {
    "arch": "Unet",
    "encoder": "resnet18",
    "epochs": 4,
    "batch_size": 16,
    "patch_size": 64,
    "patches_per_epoch": 400,
    "lr": 1e-3,
    "forest_ensemble": False,
    "prior_correction": False,
    "superpixel_smoothing": False,
    "flip_views": 1,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="output folder (its files are overwritten)")
    parser.add_argument("--size", type=int, default=2048, help="side of the synthetic scene in pixels (0.25 m)")
    parser.add_argument("--tile-size", type=int, default=256, help="side of the manifest's tiles")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=DEMO_TRAIN["epochs"], help="epochs per iteration")
    parser.add_argument("--patches-per-epoch", type=int, default=DEMO_TRAIN["patches_per_epoch"])
    parser.add_argument("--encoder", default=DEMO_TRAIN["encoder"])
    parser.add_argument("--forest-ensemble", action=argparse.BooleanOptionalAction, default=False,
                        help="the default's forest, prior correction, smoothing and flips (slower)")  # fmt: skip
    parser.add_argument("--strategy", default="error", help="simulate strategies, e.g. error or error,superpixel")
    parser.add_argument("--budget", type=int, default=60, help="suggestions on the scene after the last iteration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for noisy in ("pyogrio", "rasterio", "fiona"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cancel.install_handlers()
    from engine.device import pick_device

    run_demo(Path(args.out), args, pick_device(args.device))
    return 0


def run_demo(out: Path, args: argparse.Namespace, device: torch.device) -> dict:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    log.info("1/4 drawing a %d x %d synthetic scene (seed %d) and its tiles", args.size, args.size, args.seed)
    files = write_scene(out / "data", size=args.size, seed=args.seed, tile_size=args.tile_size)
    manifest = read_manifest(files.manifest)
    train = TrainOptions(
        **{
            **DEMO_TRAIN,
            "epochs": args.epochs,
            "patches_per_epoch": args.patches_per_epoch,
            "encoder": args.encoder,
            "forest_ensemble": args.forest_ensemble,
            "prior_correction": args.forest_ensemble,
            "superpixel_smoothing": args.forest_ensemble,
            "flip_views": TrainOptions.flip_views if args.forest_ensemble else 1,
            "seed": args.seed,
        }
    )
    suggest = SuggestOptions(tile_size=256, overlap=32, batch_size=8, mc_samples=4, seed=args.seed)
    options = SimulateOptions(
        strategies=args.strategy.split(","), iterations=args.iterations, train=train, suggest=suggest, seed=args.seed
    )
    log.info(
        "2/4 simulating %d iterations of %s on %d tiles (%s)",
        args.iterations,
        args.strategy,
        len(manifest.items),
        device,
    )
    log.info("%10s %4s %7s %10s %7s  %s", "strategy", "iter", "clicks", "labelled", "mIoU", "IoU per class (%)")
    simulation = Simulation(
        manifest,
        options,
        device,
        Events("text"),
        out / "simulation",
        on_row=lambda row: _print_row(row, manifest.classes),
    )
    simulation.run()
    strategy = options.strategies[0]
    model_dir = out / "simulation" / strategy / "model"
    log.info("3/4 predicting the whole scene and suggesting where to click next")
    network, config = load_any(model_dir, device)
    _predict_scene(network, config, files.image, out, device, model_dir)
    result = suggest_rasters(
        network,
        config,
        [files.image],
        SuggestOptions(**{**suggest.__dict__, "budget": args.budget}),
        device,
        Events("text"),
        iteration=args.iterations,
    )
    write_gpkg(out / "suggestions.gpkg", {POINTS_LAYER: result.points, SUPERPIXELS_LAYER: result.superpixels})
    _copy(out / "simulation" / strategy / "points.gpkg", out / "points.gpkg")
    _copy(out / "simulation" / "learning_curve.png", out / "learning_curve.png")
    _copy(out / "simulation" / "results.csv", out / "results.csv")
    _copy(files.image, out / "scene.tif")
    _copy(files.label, out / "reference.tif")
    log.info("4/4 writing the QGIS project")
    project = _project(out, manifest.classes, files.image)
    seconds = time.monotonic() - started
    log.info(
        "done in %.0f s: open %s in QGIS (%d suggestions, final mIoU %.1f%%)",
        seconds,
        project,
        len(result.points),
        100 * simulation.rows[-1]["miou"],
    )
    return {"seconds": seconds, "project": project, "rows": simulation.rows}


def _print_row(row: dict, classes) -> None:
    ious = " ".join(f"{c.name}={100 * row[f'iou_{c.name}']:.0f}" for c in classes)
    log.info(
        "%10s %4d %7d %9.4f%% %6.1f%%  %s",
        row["strategy"],
        row["iteration"],
        row["clicks"],
        row["labeled_percent"],
        100 * row["miou"],
        ious,
    )


def _predict_scene(network, config, scene: Path, out: Path, device, model_dir: Path) -> dict:
    """prediction.tif (class index, with the class colours) and uncertainty.tif (normalised entropy, 0..1), the
    outputs of ``python -m engine predict``."""
    options = RasterPredictOptions(tile_size=512, overlap=64, batch_size=4, uncertainty="entropy")
    return predict_raster(network, config, scene, out, None, device, options, Events("text"), str(model_dir))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _copy(source: Path, target: Path) -> None:
    with atomic_file(target) as tmp:
        shutil.copyfile(source, tmp)


def _project(out: Path, classes, scene: Path) -> Path:
    with rasterio.open(scene) as ds:
        crs, bounds = ds.crs.to_string(), ds.bounds
    layers = [
        Layer(
            "suggestions: click here next", out / "suggestions.gpkg", "marker", layer_name=POINTS_LAYER, color="#ffff00"
        ),
        Layer("points (simulated clicks)", out / "points.gpkg", "categorized", layer_name="points", classes=classes),
        Layer(
            "suggested superpixels",
            out / "suggestions.gpkg",
            "outline",
            layer_name=SUPERPIXELS_LAYER,
            subset='"suggested" = 1',
            color="#00ffff",
        ),
        Layer("prediction", out / "prediction.tif", "paletted", classes=classes),
        Layer("uncertainty (entropy)", out / "uncertainty.tif", "ramp", visible=False),
        Layer("reference label", out / "reference.tif", "paletted", classes=classes, visible=False),
        Layer("scene", out / "scene.tif", "rgb"),
    ]
    return write_project(out / "demo.qgs", "Sparse AL demo", crs, tuple(bounds), layers)


if __name__ == "__main__":
    sys.exit(main())
