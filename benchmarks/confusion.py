"""Where a trained model errs on a manifest's validation images: per-class IoU, predicted against reference class
shares, the confusion matrix, and how far a perfect class-prior correction could take it.

    .venv/bin/python -m benchmarks.confusion --manifest DATA/manifest.json MODEL_DIR [MODEL_DIR ...]

MODEL_DIR is any model directory (network, forest or hybrid), e.g. a stored bench_recipes run's
``<recipe>/error/model`` or ``dense/dense/model``. The validation images are the ones `engine simulate` scores
(the manifest's split, default fraction and seed). The model predicts as `engine predict` does (its flips, prior
correction and smoothing).

"One-class weights" approximates what a user's `--class-weight` does (engine/class_weights.py): the mIoU when one
class's probabilities are multiplied by each of WEIGHTS, the others left alone. The engine multiplies before its
superpixel smoothing, this table after it (one prediction per model instead of one per weight); the two agreed to
three decimals where compared (docs/benchmarks.md, "Class weights the user sets").

"One class's share stated" approximates what a user's `--class-share` does (engine/class_shares.py): the mIoU when
one class's share is stated as its reference share times 0.75, 1 or 1.25 and its weight fitted to it.

"Oracle shares" is an upper bound, not a method: per-class factors on the probabilities, fitted on the validation
images themselves so that the predicted class shares equal the reference's. It answers "is this class missed because
the model cannot tell it apart, or only because its threshold is off?" (docs/benchmarks.md, "Why bsb_toy stays far
from dense").
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from engine.class_shares import fit_weights
from engine.errors import InputError
from engine.manifest import read_manifest
from engine.metrics import confusion_matrix, iou_per_class
from engine.models import load_config
from engine.predict import predict_probabilities
from engine.predictor import load_any
from engine.simulate import SimulateOptions, load_samples

log = logging.getLogger("benchmarks")
WEIGHTS = (0.5, 0.8, 1.25, 1.5, 2.0)  # the one-class weights tried
SCALES = (0.75, 1.0, 1.25)  # a stated share off by a quarter either way, and right


def _confusion(probs, samples, factor: np.ndarray) -> np.ndarray:
    n = len(factor)
    cm = np.zeros((n, n), np.int64)
    for p, s in zip(probs, samples, strict=True):
        cm += confusion_matrix(np.argmax(p * factor[:, None, None], 0), s.reference, n, s.labelable)
    return cm


def stated_shares(probs, samples, reference: np.ndarray, scales=SCALES) -> np.ndarray:
    """classes x scales: the mIoU when one class's share is stated as its reference share times a scale (what
    `--class-share` fits, engine/class_shares.py, here on all the pixels rather than a sample), the others free."""
    n = probs[0].shape[0]
    masks = [s.labelable for s in samples]
    table = np.zeros((n, len(scales)))
    for c in range(n):
        for j, scale in enumerate(scales):
            target = np.full(n, np.nan)
            target[c] = min(reference[c] * scale, 0.99)
            table[c, j] = iou_per_class(_confusion(probs, samples, fit_weights(probs, masks, target))).mean()
    return table


def one_class_weights(probs, samples, weights=WEIGHTS) -> np.ndarray:
    """classes x weights: the mIoU with one class's probabilities multiplied by a weight, the others by 1."""
    n = probs[0].shape[0]
    table = np.zeros((n, len(weights)))
    for c in range(n):
        for j, weight in enumerate(weights):
            factor = np.ones(n)
            factor[c] = weight
            table[c, j] = iou_per_class(_confusion(probs, samples, factor)).mean()
    return table


def _row(values) -> str:
    return " ".join(f"{v:6.3f}" for v in values)


def report(model_dir: Path, samples) -> None:
    model, config = load_any(model_dir)
    names = [c.name for c in config.classes]
    probs = [
        predict_probabilities(model, config, s.image.astype(np.float32), s.valid, "cpu", tile_size=256, overlap=32)
        .probs for s in samples
    ]  # fmt: skip
    cm = _confusion(probs, samples, np.ones(len(names)))
    reference = cm.sum(1) / max(cm.sum(), 1)
    log.info("%s: mIoU %.3f", model_dir, iou_per_class(cm).mean())
    log.info("  %-16s %s", "class", " ".join(f"{n[:6]:>6}" for n in names))
    log.info("  %-16s %s", "IoU", _row(iou_per_class(cm)))
    log.info("  %-16s %s", "reference share", _row(reference))
    log.info("  %-16s %s", "predicted share", _row(cm.sum(0) / max(cm.sum(), 1)))
    log.info("  confusion (rows: reference, each summing to 1; columns: predicted)")
    for name, row in zip(names, cm / np.maximum(cm.sum(1, keepdims=True), 1), strict=True):
        log.info("  %-16s %s", name, _row(row))
    log.info("  one-class weights (mIoU): %s", "  ".join(f"x{w:g}" for w in WEIGHTS))
    for name, row in zip(names, one_class_weights(probs, samples), strict=True):
        log.info("  %-16s %s", name, _row(row))
    log.info("  one class's share stated (mIoU), at its reference share: %s", "  ".join(f"x{s:g}" for s in SCALES))
    for name, row in zip(names, stated_shares(probs, samples, reference), strict=True):
        log.info("  %-16s %s", name, _row(row))
    factor = fit_weights(probs, [s.labelable for s in samples], reference)
    oracle = _confusion(probs, samples, factor)
    log.info("  oracle shares (upper bound): mIoU %.3f with factors %s", iou_per_class(oracle).mean(),
             _row(factor / factor.mean()))  # fmt: skip
    log.info("  %-16s %s", "IoU then", _row(iou_per_class(oracle)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.confusion", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="the dataset's manifest.json (the one the model ran on)")
    parser.add_argument("models", nargs="+", type=Path, help="model directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = read_manifest(args.manifest)
        options = SimulateOptions()
        _, val = manifest.split(options.val_fraction, options.seed)
        for model_dir in args.models:
            report(model_dir, load_samples(val, manifest, load_config(model_dir).bands))
    except InputError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
