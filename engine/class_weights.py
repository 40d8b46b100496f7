"""The user's class weights: ``--class-weight building=2`` paints more building, ``=0.5`` less, without retraining.

A model learns its classes' balance from the clicks, and the clicks' balance is not the map's (engine/prior.py
corrects what it can estimate). What no label-free estimate catches, the user sees on the map: a class the model
ranks well but whose probability is spread thin rarely wins the argmax (docs/benchmarks.md, "A threshold, not a
ranking, problem"). A weight multiplies that class's probabilities before they are renormalised, on top of the
model's class-prior factor, so the prediction, its entropy or margin uncertainty, suggestions ranked by those, and
the class every suggestion shows follow it. BALD (the disagreement of the dropout samples, which the superpixel
strategy ranks by default) is computed from the samples before any correction, so a weight does not move it.
"""

import argparse
import math
from dataclasses import replace

import numpy as np

from engine.errors import InputError
from engine.models import ModelConfig
from engine.prior import KEY as PRIOR_KEY

FIELD = "class_weight"
LIMITS = (0.01, 100.0)


def add_class_weight_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class-weight", action="append", metavar="CLASS=WEIGHT",
                        help="multiply a class's probabilities (2: paint more of it, 0.5: less; repeatable; no "
                        "retraining)")  # fmt: skip


def parse_class_weights(values: list[str] | None, class_names: list[str]) -> dict[str, float]:
    """``["building=2", "road=0.5"]`` (the command line, or a job file's list) to {class: weight} in the model's class
    order (a class given twice: the last); a name the model does not know, or a weight outside LIMITS, is an
    InputError."""
    if not values:
        return {}
    weights = {}
    for name, text in (_split(str(v)) for v in values):
        name = name.strip()
        if name not in class_names:
            raise InputError(f"--class-weight: the model has no class {name!r}; its classes are "
                             f"{', '.join(class_names)}", FIELD)  # fmt: skip
        weights[name] = _weight(name, text)
    return {name: weights[name] for name in class_names if name in weights}


def with_class_weights(config: ModelConfig, weights: dict[str, float]) -> ModelConfig:
    """``config`` whose class-prior factor (engine/prior.py; 1 where the model has none) is multiplied by the
    weights; ``config`` itself is left as it is."""
    if not weights:
        return config
    factor = np.asarray(config.trained.get(PRIOR_KEY) or np.ones(len(config.classes)), np.float64)
    factor = factor * np.array([weights.get(name, 1.0) for name in config.class_names])
    return replace(config, trained={**config.trained, PRIOR_KEY: factor.tolist()})


def _split(text: str) -> tuple[str, str]:
    name, sep, value = text.rpartition("=")
    if not sep or not name.strip():
        raise InputError(f"--class-weight: {text!r} is not CLASS=WEIGHT; give e.g. building=2", FIELD)
    return name, value


def _weight(name: str, text: str) -> float:
    low, high = LIMITS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise InputError(f"--class-weight: the weight of {name} ({text!r}) must be a number from {low:g} to "
                         f"{high:g}; 1 leaves the class as the model predicts it", FIELD)  # fmt: skip
    return value
