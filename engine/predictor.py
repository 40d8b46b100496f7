"""One interface over the engine's kinds of model: a segmentation network (smp), the random forest, and the hybrid
of both (a network's model directory with a forest/ folder, engine/hybrid.py).

``predict``, ``suggest`` and ``simulate`` load any of them from a model directory (config.json says which) and
hand it to the tiled prediction, which only needs a batch inference and the side tiles must be a multiple of.
"""

import numpy as np
import torch
from torch import nn

from engine.features import FeatureSettings
from engine.flips import views_of
from engine.forest import KIND, ForestModel, load_forest, predict_block
from engine.hybrid import HybridInference, HybridModel, has_forest, load_hybrid
from engine.models import ModelConfig, load_config, load_model, output_stride
from engine.predict import Inference
from engine.prior import KEY as PRIOR_KEY
from engine.prior import adjust
from engine.smoothing import KEY as SMOOTHING_KEY
from engine.smoothing import smooth_batch

Model = nn.Module | ForestModel | HybridModel


def load_any(directory, device: torch.device | str = "cpu", field_name: str = "model") -> tuple[Model, ModelConfig]:
    """The network, the forest or the hybrid in a model directory, with its (the network's) config."""
    if load_config(directory, field_name).kind == KIND:
        return load_forest(directory, field_name)
    network, config = load_model(directory, device, field_name)
    if "forest" in config.trained or has_forest(directory):
        return load_hybrid(directory, network, field_name), config
    return network, config


def is_forest(model: Model) -> bool:
    return isinstance(model, ForestModel)


def stride(model: Model) -> int:
    """The factor tile sides must be a multiple of (1 for the forest, which works per pixel)."""
    if isinstance(model, HybridModel):
        return output_stride(model.network)
    return 1 if is_forest(model) else output_stride(model)


def make_inference(model: Model, config: ModelConfig, device: torch.device | str, mc_samples: int = 0):
    """The batch inference of the tiled prediction, corrected by the model's class-prior factor (engine/prior.py)
    and smoothed over each tile's superpixels (engine/smoothing.py) where the model's config asks for them."""
    inference = _inference(model, config, device, mc_samples)
    factor, smoothing = config.trained.get(PRIOR_KEY), config.trained.get(SMOOTHING_KEY)
    if factor is None and smoothing is None:
        return inference

    def corrected(images, valid=None):
        probs, bald = inference(images, valid)
        return smooth_batch(adjust(probs, factor), images, valid, smoothing), bald

    return corrected


def _inference(model: Model, config: ModelConfig, device: torch.device | str, mc_samples: int = 0):
    """The batch inference of the tiled prediction: the network's (MC dropout with ``mc_samples``; averaged over the
    flips its config names, engine/flips.py) or the forest's (BALD from its trees when ``mc_samples`` > 0), or both
    blended for the hybrid."""
    views = views_of(config.trained)
    if isinstance(model, HybridModel):
        forest = ForestInference(model.forest, model.forest_config, bald=mc_samples > 0)
        return HybridInference(Inference(model.network, device, mc_samples, views=views), forest, model.weight)
    if is_forest(model):
        return ForestInference(model, config, bald=mc_samples > 0)
    return Inference(model, device, mc_samples, views=views)


class ForestInference:
    """The forest with the interface of engine.predict.Inference: called with a B x bands x h x w batch of
    normalised tiles, returns (probabilities B x C x h x w, BALD B x h x w or None). Each tile's features see only
    the tile, so pixels near a tile's border differ slightly from the whole raster's; the blended overlaps of the
    tiled prediction hide that (give an overlap of at least ``margin`` pixels to make the difference negligible)."""

    def __init__(self, model: ForestModel, config: ModelConfig, bald: bool = False, workers: int = 2):
        self.model, self.bald, self.workers = model, bald, workers
        self.settings = FeatureSettings.from_dict(config.features)

    def __call__(self, images: np.ndarray, valid: list[np.ndarray] | None = None):
        """``valid``: each tile's input validity (pixels past the raster's edge or nodata are filled from their
        nearest valid neighbour before the features); None: all valid."""
        batch, _, height, width = images.shape
        probs = np.zeros((batch, self.model.n_classes, height, width), np.float32)
        bald = np.zeros((batch, height, width), np.float32) if self.bald else None
        whole = (slice(None), slice(None))
        for k in range(batch):
            ok = np.ones((height, width), bool) if valid is None else valid[k]
            predict_block(self.model, self.settings, images[k], ok, whole, np.ones((height, width), bool), probs[k],
                          None if bald is None else bald[k], self.workers)  # fmt: skip
        return probs, bald
