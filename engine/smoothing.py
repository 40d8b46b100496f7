"""Superpixel smoothing of the predicted class probabilities: each pixel's probabilities are averaged with the mean
of its superpixel's (SLIC of the image, about ``region`` x ``region`` pixels), half and half by default.

Pixels of one superpixel look alike and almost always belong to one class, but both models of the default scatter
isolated wrong pixels over them (the forest per pixel, the network where its few labels leave it unsure). Pulling
each pixel halfway towards its superpixel's mean removes most of that speckle and keeps thin objects that a full
average would swallow (docs/benchmarks.md, "Superpixel smoothing"). The mean over a superpixel keeps its sum, so the
classes' shares of the map (engine/prior.py) do not change.

Training stores the settings in config.json (``trained.superpixel_smoothing``); every prediction path applies them:
on the whole image in memory (simulate, suggest), per tile in a raster's tiled prediction (the tiles' overlaps are
blended, so a superpixel cut by a tile's edge only loses a little of its reach).
"""

import numpy as np

from engine.superpixels import segment, segment_means

KEY = "superpixel_smoothing"
REGION = 12  # superpixel side in pixels
WEIGHT = 0.5  # share of the superpixel's mean in a pixel's probabilities
COMPACTNESS = 0.1  # as engine/superpixels.segment (suggest's superpixels): follows colour edges closely


def settings(region: int = REGION, weight: float = WEIGHT) -> dict:
    return {"region": int(region), "weight": float(weight)}


def smooth(probs: np.ndarray, image: np.ndarray, valid: np.ndarray | None, options: dict | None) -> np.ndarray:
    """Probabilities (C x H x W) smoothed over the superpixels of ``image`` (bands x H x W, raw or normalised) as
    ``options`` says (``settings()``; None: unchanged). Invalid pixels keep their values."""
    if options is None:
        return probs
    valid = np.ones(probs.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        return probs
    segments = segment(image, valid, region_size=int(options["region"]), compactness=COMPACTNESS)
    weight = float(options["weight"])
    out = np.array(probs, np.float32, copy=True)
    for c in range(probs.shape[0]):
        means = segment_means(segments, probs[c])[segments[valid]]  # valid pixels all lie in a superpixel
        out[c][valid] = (1.0 - weight) * probs[c][valid] + weight * means
    return out


def smooth_batch(probs: np.ndarray, images: np.ndarray, valid: list[np.ndarray] | None, options: dict | None):
    """:func:`smooth` of each tile of a B x C x h x w batch (images B x bands x h x w, ``valid`` one mask per tile
    or None)."""
    if options is None:
        return probs
    return np.stack([smooth(p, image, None if valid is None else valid[k], options)
                     for k, (p, image) in enumerate(zip(probs, images, strict=True))])  # fmt: skip
