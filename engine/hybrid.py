"""The default model: the segmentation network and a random forest fit on the same clicks, their class probabilities
averaged.

From a few hundred clicks the two err in different places: the forest's hand-made multiscale features generalise
from few points but blur shapes, the network learns shapes but overfits its few labels. Averaging their
probabilities beat both models alone in the mean over the iterations on both benchmark datasets (docs/benchmarks.md,
"Label efficiency by recipe"). The forest costs seconds to fit, but tens of seconds per megapixel to predict on a CPU
(its 60 features and 100 trees): the default predicts in about 1.5 times the network's time there (both with their
flip averaging and smoothing; docs/benchmarks.md, "Flip averaging").

A hybrid model directory is a network's (config.json, weights.safetensors) with the forest's model directory in its
``forest/`` folder; the forest reads the network's normalisation, so both see the same normalised tiles. A warm start
continues the network and refits the forest on all the clicks.

Uncertainty: BALD of the mixture of both ensembles (the network's dropout samples and the forest's trees, weighted
``1 - weight`` and ``weight``): H(mixture) - E[H(member)], where each model's mean member entropy is its predictive
entropy minus its own BALD. Entropies are divided by log C, as each model's BALD is.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from engine.errors import InputFileError
from engine.forest import ForestModel, load_forest, write_forest
from engine.models import ModelConfig, save_model

FOREST_DIR = "forest"
FOREST_WEIGHT = 0.5  # the forest's share of the averaged probabilities


@dataclass
class HybridModel:
    network: nn.Module
    forest: ForestModel
    forest_config: ModelConfig
    weight: float = FOREST_WEIGHT


def has_forest(directory: Path) -> bool:
    return (Path(directory) / FOREST_DIR / "config.json").exists()


def save_hybrid(directory: Path, model: HybridModel, config: ModelConfig) -> None:
    """The network's model directory with the forest inside, written atomically as one."""
    save_model(directory, model.network, config, lambda tmp: write_forest(tmp / FOREST_DIR, model.forest,
                                                                          model.forest_config))  # fmt: skip


def load_hybrid(directory: Path, network: nn.Module, field_name: str = "model") -> HybridModel:
    folder = Path(directory) / FOREST_DIR
    if not (folder / "config.json").exists():  # the network's config.trained says it was trained with a forest
        raise InputFileError(f"--{field_name}: {folder / 'config.json'} is missing but the model has a forest; "
                             "the model directory is damaged: train it again", field_name)  # fmt: skip
    forest, forest_config = load_forest(folder, field_name)
    return HybridModel(network, forest, forest_config)


def blend(
    net_probs: np.ndarray, forest_probs: np.ndarray, weight: float = FOREST_WEIGHT,
    net_bald: np.ndarray | None = None, forest_bald: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Averaged probabilities (classes on axis -3: C x H x W or B x C x H x W) and, when both models give one, the
    mixture's BALD (see the module's docstring)."""
    probs = ((1.0 - weight) * net_probs + weight * forest_probs).astype(np.float32)
    if net_bald is None or forest_bald is None:
        return probs, None
    classes = probs.shape[-3]
    if classes < 2:
        return probs, np.zeros_like(net_bald, np.float32)

    def entropy(p: np.ndarray) -> np.ndarray:
        return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-3) / np.log(classes)

    member = (1.0 - weight) * (entropy(net_probs) - net_bald) + weight * (entropy(forest_probs) - forest_bald)
    return probs, np.clip(entropy(probs) - member, 0.0, 1.0).astype(np.float32)


class HybridInference:
    """Both models' batch inferences (engine.predictor.make_inference) with the interface of either: called with a
    batch of normalised tiles (and their input validity), returns the blended probabilities and BALD."""

    def __init__(self, network_inference, forest_inference, weight: float = FOREST_WEIGHT):
        self.network, self.forest, self.weight = network_inference, forest_inference, weight

    def __call__(self, images: np.ndarray, valid: list[np.ndarray] | None = None):
        net_probs, net_bald = self.network(images, valid)
        forest_probs, forest_bald = self.forest(images, valid)
        return blend(net_probs, forest_probs, self.weight, net_bald, forest_bald)
