"""Label efficiency by recipe (issue 6): the engine's default recipe against the random forest and the plain DWCD
loop at every iteration, with the same network trained on the dense labels as the ceiling.

    python -m benchmarks bench_recipes                      # bsb_toy and massachusetts_roads (hours on 2 cores)
    python -m benchmarks bench_recipes --datasets bsb_toy --recipes default,rf
    python -m benchmarks bench_recipes --recipes default,no_flips,rf --seeds 0,1,2   # means over seeds

The seed paper's protocol on each dataset: start from the seed points (bsb_toy: the dataset's own, 1 pixel per class
per training patch; massachusetts_roads: 10 random pixels per class per 512 px crop, the same 0.0076% share), then
6 iterations, each adding error clicks (the same number again) where the current model is wrong, warm-starting the
network. Recipes:

- ``default``: ``python -m engine simulate`` with the engine's default training options (the network and a random
  forest fit on the same clicks, their probabilities averaged: engine/hybrid.py; corrected for the clicks' class
  balance: engine/prior.py; smoothed over superpixels: engine/smoothing.py; the network's probabilities averaged
  over 4 flips of each tile: engine/flips.py; warm starts at learning rate 3e-4, ``--warm-lr``, held near the model
  they continue away from the clicks, ``--distill 1``: engine/distill.py; since session 12 the U-Net's decoder has
  half smp's channels but the last stage's, 128,64,32,16,16: engine.models.DEFAULT_DECODERS);
- ``fast_warm_start``: the default with warm starts at the first training's rate, 1e-3 (the default of session 5);
  the recipes below, measured before session 6, keep that warm start too;
- ``no_flips``: ``fast_warm_start`` without the flip averaging (``--flip-views 1``), the default of session 4;
- ``no_smoothing``: ``no_flips`` without the superpixel smoothing (``--no-superpixel-smoothing``);
- ``hybrid``: ``no_smoothing`` without the class-prior correction (``--no-prior-correction``);
- ``network``: the default's network alone, uncorrected, unsmoothed and unflipped, the default before the hybrid;
- ``plain_dwcd``: the seed repository's loop: DWCD alone, constant learning rate, no expansion, no consistency, no
  forest;
- ``rf``: the random forest (``--model rf``), refit on each iteration's clicks;
- ``dense``: the network trained with cross-entropy on every labelled pixel, for twice the epochs of a whole sparse
  run (``--dense-epochs``);
- levers of the network alone, not run unless named: ``dwcd_ce`` (``network`` without click expansion), ``warmup``
  (``network`` after 300 self-supervised warm-up steps), ``consistency`` (``network`` plus FixMatch-style consistency,
  weight 1), and on top of ``consistency``: ``forest_prior`` (the forest's weak labels), ``consistency_warmup`` (the
  warm-up), ``long`` (twice the epochs); ``network_prior`` (``network`` with the class-prior correction);
  ``forest_expansion`` (``fast_warm_start`` with the forest also fit on the clicks' superpixel expansion);
  ``spread_weight`` (``fast_warm_start`` with the labels spread from the clicks weighted 0.1 instead of 0.3);
  ``budget_x4`` (the default with 4 times the epochs per iteration, nearer the budget of `engine train`'s own
  defaults than the bench's 15 epochs); ``resnet34`` (the default with a resnet34 encoder), ``jitter`` (the default
  with colour augmentation, ``--jitter 0.2``), ``batch_4`` (the default with batches of 4: twice the steps on the
  same pixels), ``mobilenet_v2`` and ``regnetx_002`` (the default with the encoders that train fastest on a CPU),
  ``consensus`` (the default with each click spread only where most of five superpixel sizes agree); these levers
  ran against the default of their session, without distillation; ``no_distill`` (the default before session 11: a
  continued model is not held near the model it continues, ``--distill 0``), ``distill_03`` and ``distill_3`` (the
  default with distillation weights 0.3 and 3 instead of 1), ``distill_gated`` (distillation only where the model
  continued is at least 0.8 confident); ``light_decoder`` (the default with the U-Net's decoder given as
  ``--decoder-channels 128,64,32,16,16``, its default since session 12: the same runs as ``default``, named apart for
  the session-12 comparison), ``heavy_decoder`` (smp's U-Net decoder, 256,128,64,32,16: the default before session
  12; every recipe above that names an earlier default keeps that decoder); ``affinity`` (the default with the
  edge-aware smoothness loss, ``--affinity 1``: engine/affinity.py) and ``time_matched`` (the default at 1.6 times
  the epochs, the time the light decoder saves; session 14, not adopted); ``time_matched_affinity`` (both of the
  last two together; session 15), ``lr_x3`` (the default with three times the learning rate of a model's first
  training, ``--lr 3e-3``: iteration 0 trains from scratch in 60 steps; continued models keep ``--warm-lr``);
  ``budget_x4_now`` (today's default at 4 times the epochs per iteration; ``budget_x4`` ran on session 6's default);
  ``weight_average`` (the default saving the average of its weights over the last quarter of each run's steps,
  ``--weight-average 0.25``: engine/weight_average.py); ``product_budget`` (the default at `engine train`'s own
  budget: 20 epochs of 256 px patches, 32 per epoch, the rasters' area in patches on both datasets; 5.3 times the
  bench's); ``no_spread_corrections`` (the default where a continued model's clicks that it predicts wrong count
  as clicks but do not spread, ``--no-expand-corrections``: engine/corrections.py); ``no_context`` (the default with
  every training patch holding a click, ``--context-fraction 0``, against a quarter drawn anywhere);
  ``distill_batch_stats`` (the model continued distils in train mode, its batch norms on each batch's statistics as
  the student's are, ``--distill-batch-stats``); ``region_16`` (clicks spread over superpixels of 16 px instead of
  10, ``--expansion-region 16``), ``region_16_corrections_10`` (those, but the clicks a continued model predicts
  wrong spread over 10 px superpixels, ``--correction-region 10``).
"""

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.bench_label_efficiency import DATA, _crop_manifest, _run_engine
from benchmarks.machine import describe
from engine.events import plain
from engine.models import DEFAULT_DECODERS, SMP_UNET_DECODER

log = logging.getLogger("benchmarks")

ITERATIONS, EPOCHS = 6, 15
BUDGET = ["--iterations", str(ITERATIONS), "--epochs", str(EPOCHS), "--patch-size", "128", "--patches-per-epoch",
          "32", "--batch-size", "8", "--strategy", "error"]  # fmt: skip
DATASETS = {
    "bsb_toy": ["--tile-size", "256", "--overlap", "32"],
    "massachusetts_roads": ["--tile-size", "512", "--overlap", "32", "--points-per-class", "10",
                            "--initial-points", "10"],
}  # fmt: skip
HEAVY_DECODER = ["--decoder-channels", ",".join(map(str, SMP_UNET_DECODER))]  # the default before session 12
NO_DISTILL = ["--distill", "0", *HEAVY_DECODER]  # before session 11: a continued model was not held near the one it
# continues (and the U-Net had smp's decoder, as every recipe built on this one)
FAST_WARM = ["--warm-lr", "1e-3", *NO_DISTILL]  # warm starts at the first lr, the default before session 6
NO_FLIPS = ["--flip-views", "1", *FAST_WARM]
NETWORK = ["--no-forest-ensemble", "--no-prior-correction", "--no-superpixel-smoothing", *NO_FLIPS]
RECIPES = {
    "default": [],
    "fast_warm_start": FAST_WARM,
    "no_flips": NO_FLIPS,
    "no_smoothing": [*NO_FLIPS, "--no-superpixel-smoothing"],
    "hybrid": [*NO_FLIPS, "--no-prior-correction", "--no-superpixel-smoothing"],
    "network": NETWORK,
    "plain_dwcd": [*NETWORK, "--loss", "dwcd", "--lr-schedule", "constant", "--no-expand-clicks", "--consistency", "0"],
    "rf": ["--model", "rf"],
    "dense": ["--strategy", "dense", "--dense-epochs", str(2 * ITERATIONS * EPOCHS)],
    # levers of the network alone, not run unless named
    "dwcd_ce": [*NETWORK, "--no-expand-clicks"],
    "consistency": [*NETWORK, "--consistency", "1"],
    "forest_prior": [*NETWORK, "--consistency", "1", "--forest-prior"],
    "warmup": [*NETWORK, "--pretrain-steps", "300"],
    "consistency_warmup": [*NETWORK, "--consistency", "1", "--pretrain-steps", "300"],
    "long": [*NETWORK, "--consistency", "1", "--epochs", str(2 * EPOCHS)],
    "network_prior": ["--no-forest-ensemble", "--no-superpixel-smoothing", *NO_FLIPS],
    "forest_expansion": ["--forest-expansion", *FAST_WARM],
    "spread_weight": ["--expansion-weight", "0.1", *FAST_WARM],
    # levers measured against the default of their session (before session 11: without distillation)
    "affinity": ["--affinity", "1"],  # session 13
    "time_matched": ["--epochs", str(round(1.6 * EPOCHS))],  # session 14: the light decoder's saved time as epochs
    "time_matched_affinity": ["--epochs", str(round(1.6 * EPOCHS)), "--affinity", "1"],  # session 15
    "lr_x3": ["--lr", "3e-3"],  # session 15: a first training from scratch has 60 steps
    "weight_average": ["--weight-average", "0.25"],  # session 18: the weights averaged over the last quarter
    "product_budget": ["--epochs", "20", "--patch-size", "256"],  # session 18: `engine train`'s own budget here
    "no_spread_corrections": ["--no-expand-corrections"],  # session 18: clicks the model got wrong do not spread
    "no_context": ["--context-fraction", "0"],  # session 19: every patch holds a click
    "distill_batch_stats": ["--distill-batch-stats"],  # session 19: teacher and student normalise alike
    "region_16": ["--expansion-region", "16"],  # session 19: clicks spread over larger superpixels
    "region_16_corrections_10": ["--expansion-region", "16", "--correction-region", "10"],  # session 20: the
    # larger superpixels, but a continued model's error clicks (near class edges) spread over the default's
    "warm_lr_1e4": ["--warm-lr", "1e-4"],  # session 21: a continued model trains at a third of the default's
    "corrections_6": ["--correction-region", "6"],  # session 22: a continued model's error clicks (near class
    # edges, where a spread label is most often wrong) spread over smaller superpixels than the other clicks
    "budget_x4": ["--epochs", str(4 * EPOCHS), *NO_DISTILL],
    "budget_x4_now": ["--epochs", str(4 * EPOCHS)],  # session 16: how far more training takes today's default
    "resnet34": ["--encoder", "resnet34", *NO_DISTILL],
    "jitter": ["--jitter", "0.2", *NO_DISTILL],
    "batch_4": ["--batch-size", "4", *NO_DISTILL],  # twice the steps on the same pixels
    "mobilenet_v2": ["--encoder", "mobilenet_v2", *NO_DISTILL],
    "regnetx_002": ["--encoder", "tu-regnetx_002", *NO_DISTILL],
    "consensus": ["--expansion-consensus", *NO_DISTILL],
    "no_distill": NO_DISTILL,
    "distill_03": ["--distill", "0.3", *HEAVY_DECODER],
    "distill_3": ["--distill", "3", *HEAVY_DECODER],
    "distill_gated": ["--distill-threshold", "0.8", *HEAVY_DECODER],
    "heavy_decoder": HEAVY_DECODER,
    "light_decoder": ["--decoder-channels", ",".join(map(str, DEFAULT_DECODERS["Unet"]))],  # the default since 12
}
PEERS = ("rf", "plain_dwcd")  # what the default must beat (issue 6)
COMPARED = ("default", *PEERS)
# options added with a default unlike the behaviour before them: a stored run that lacks one ran like this
BEFORE = {"forest_ensemble": False, "prior_correction": False, "superpixel_smoothing": False, "flip_views": 1,
          "forest_expansion": False, "warm_lr": None, "distill": 0.0, "decoder_channels": None,
          "affinity": 0.0, "weight_average": 0.0, "expand_corrections": True}  # fmt: skip


def main(argv: list[str]) -> None:
    options = _parse(argv)
    log.info("machine: %s", describe())
    for name in options.datasets.split(","):
        manifest = Path(options.data) / name / "manifest.json"
        if not manifest.exists():
            log.info("%s: %s is missing, skipped", name, manifest)
            continue
        folder = Path(options.out) / name
        if name == "massachusetts_roads":  # 1500 px tiles: 512 px crops of 10 of them, 4 to score, 6 to train
            manifest = _crop_manifest(manifest, folder / "crops", count=10, val=4)
        seeds = [int(s) for s in options.seeds.split(",")]
        by_seed = {}
        for seed in seeds:
            results = {}
            for recipe in options.recipes.split(","):
                run = folder / (recipe if seed == 0 else f"{recipe}_seed{seed}")
                argv_sim = ["simulate", "--events", "json", "--device", options.device, "--manifest", str(manifest),
                            "--out", str(run), *BUDGET, "--seed", str(seed), *DATASETS[name],
                            *RECIPES[recipe]]  # fmt: skip
                results[recipe] = _run_or_reuse(argv_sim, run)
            _report(name, results, folder, seed)
            by_seed[seed] = results
        if len(seeds) > 1:
            _across_seeds(name, by_seed)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_recipes")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default="/tmp/sparse_al_recipes")
    parser.add_argument("--datasets", default="bsb_toy,massachusetts_roads")
    parser.add_argument("--recipes", default="default,no_flips,network,rf,plain_dwcd,dense")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", "--seed", default="0", help="one seed or several, e.g. 0,1,2: each seed's table "
                        "(runs of seed N > 0 go to RECIPE_seedN folders), then the means over the seeds (single runs "
                        "swing by up to 0.25 at an iteration: compare recipes over seeds)")  # fmt: skip
    return parser.parse_known_args(argv)[0]  # other benchmarks' options are ignored


def _run_or_reuse(argv_sim: list[str], folder: Path) -> dict:
    """Run `engine simulate` unless ``folder`` holds a finished run with the same options."""
    from engine.cli import build_parser
    from engine.commands.simulate import options_from

    args = build_parser().parse_args(argv_sim)
    wanted = plain(asdict(options_from(args)))
    done = folder / "results.json"
    if done.exists():
        summary = json.loads(done.read_text())
        finished = len(summary["rows"]) >= (1 if "dense" in argv_sim else ITERATIONS)
        if finished and _same_options(summary["options"], wanted):
            log.info("%s: reusing the finished run", folder)
            return summary
    log.info("python -m engine %s", " ".join(argv_sim))
    started = time.monotonic()
    _run_engine(argv_sim, folder.with_suffix(".events.jsonl"))
    log.info("%s: %.0f s", folder.name, time.monotonic() - started)
    return json.loads(done.read_text())


def _same_options(stored: dict, wanted: dict) -> bool:
    """Whether a stored run had the wanted options, among those that shape its results: the forest ignores the
    network's training options, the dense-only run the sparse-label ones. An option the stored run's engine did not
    have yet counts as its default (the behaviour before the option existed)."""
    from engine.simulate import DENSE_TRAINING, SimulateOptions

    defaults = plain(asdict(SimulateOptions()))
    defaults["train"].update(BEFORE)
    stored, wanted = (_filled(o, defaults) for o in (stored, wanted))
    ignored = set()
    if wanted.get("model") == "rf":
        ignored = {f"train.{k}" for k in defaults["train"]}
    elif wanted.get("dense") and not wanted.get("strategies"):
        ignored = {f"train.{k}" for k in (*DENSE_TRAINING, "consistency_threshold", "warm_lr")}  # one training
    for key, value in wanted.items():
        if isinstance(value, dict):
            known = stored.get(key, {})
            if any(known.get(k, defaults[key].get(k)) != v for k, v in value.items() if f"{key}.{k}" not in ignored):
                return False
        elif stored.get(key, defaults.get(key)) != value:
            return False
    return True


def _filled(options: dict, defaults: dict) -> dict:
    """``options`` with what a None meant written out: a warm-start learning rate of None (warm starts at ``lr``) as
    that rate, a U-Net's decoder channels of None (before session 12: smp's decoder) as smp's channels."""
    train = {**defaults["train"], **options.get("train", {})}
    if train["warm_lr"] is None:
        train["warm_lr"] = train["lr"]
    if train["decoder_channels"] is None and train["arch"] == "Unet":
        train["decoder_channels"] = list(SMP_UNET_DECODER)
    return {**options, "train": train}


def _report(name: str, results: dict[str, dict], folder: Path, seed: int = 0) -> None:
    dense = results.get("dense")
    dense_miou = dense["dense_miou"] if dense else None
    curves = {r: s["rows"] for r, s in results.items() if r != "dense"}
    columns = list(dict.fromkeys(r for r in (*COMPARED, *curves) if r in curves))
    summary = next(iter(results.values()))
    log.info("%s (%s): %s train / %s val images; dense-label mIoU %s", name, describe(), summary.get("train_images"),
             summary.get("val_images"), f"{dense_miou:.3f}" if dense_miou is not None else "not run")  # fmt: skip
    log.info("| iteration | labelled pixels | labelled %% | %s |%s", " | ".join(f"{c} mIoU" for c in columns),
             " default % of dense |" if dense_miou and "default" in curves else "")  # fmt: skip
    log.info("|%s", "---|" * (3 + len(columns) + int(bool(dense_miou and "default" in curves))))
    for i in range(ITERATIONS):
        row = {c: next((r for r in curves[c] if r["iteration"] == i), None) for c in columns}
        first = next((r for r in row.values() if r is not None), None)
        if first is None:
            continue
        cells = " | ".join(f"{row[c]['miou']:.3f}" if row[c] else "" for c in columns)
        share = ""
        if dense_miou and row.get("default"):
            share = f" {100 * row['default']['miou'] / dense_miou:.1f} |"
        log.info("| %d | %d | %.4f | %s |%s", i, first["labeled_pixels"], first["labeled_percent"], cells, share)
    _verdict(curves, dense_miou)
    _plot(name, curves, dense_miou, folder / ("learning_curve.png" if seed == 0 else f"learning_curve_seed{seed}.png"))


def _across_seeds(name: str, by_seed: dict[int, dict[str, dict]]) -> None:
    """Each recipe's mean mIoU over the iterations, per seed and over the seeds, its lowest iteration, and the
    default's wins against its peers counted over all seeds' iterations."""
    seeds = list(by_seed)
    curves = {s: {r: {row["iteration"]: row["miou"] for row in res["rows"]} for r, res in by_seed[s].items()
                  if r != "dense"} for s in seeds}  # fmt: skip
    recipes = [r for r in curves[seeds[0]] if all(r in curves[s] for s in seeds)]
    log.info("%s over seeds %s: mean mIoU over the iterations", name, ",".join(map(str, seeds)))
    log.info("| recipe | %s | mean | lowest iteration |", " | ".join(f"seed {s}" for s in seeds))
    log.info("|%s", "---|" * (3 + len(seeds)))
    for recipe in recipes:
        means = [sum(curves[s][recipe].values()) / max(1, len(curves[s][recipe])) for s in seeds]
        lowest = min(m for s in seeds for m in curves[s][recipe].values())
        log.info("| %s | %s | %.3f | %.3f |", recipe, " | ".join(f"{m:.3f}" for m in means),
                 sum(means) / len(means), lowest)  # fmt: skip
    for peer in (p for p in PEERS if "default" in recipes and p in recipes):
        wins, total = map(sum, zip(*(_wins(curves[s]["default"], curves[s][peer]) for s in seeds), strict=True))
        log.info("default beats %s at %d of %d iterations over %d seeds", peer, wins, total, len(seeds))


def _wins(mine: dict[int, float], theirs: dict[int, float]) -> tuple[int, int]:
    """(iterations where ``mine`` is above ``theirs``, iterations both have), both mIoU by iteration."""
    shared = [i for i in mine if i in theirs]
    return sum(mine[i] > theirs[i] for i in shared), len(shared)


def _verdict(curves: dict[str, list[dict]], dense_miou: float | None) -> None:
    if "default" not in curves:
        return
    mine = {r["iteration"]: r["miou"] for r in curves["default"]}
    for peer in (p for p in PEERS if p in curves):
        wins, total = _wins(mine, {r["iteration"]: r["miou"] for r in curves[peer]})
        log.info("default beats %s at %d of %d iterations", peer, wins, total)
    if dense_miou and ITERATIONS - 1 in mine:
        log.info("default at iteration %d: %.1f%% of dense (goal 95%%)", ITERATIONS - 1,
                 100 * mine[ITERATIONS - 1] / dense_miou)  # fmt: skip


def _plot(name: str, curves: dict[str, list[dict]], dense_miou: float | None, path: Path) -> None:
    from engine.learning_curve import plot_learning_curve

    rows = [{**r, "strategy": recipe} for recipe, rows in curves.items() for r in rows]
    if rows:
        plot_learning_curve(rows, path, f"{name}: recipes, error clicks", dense_miou)
        log.info("learning curve: %s", path)
