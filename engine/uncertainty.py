"""Per-pixel uncertainty from class probabilities, every measure scaled to [0, 1] (1 = most uncertain).

``probs`` is C x ... (class first), as numpy arrays or torch tensors; the result has the remaining shape.
"""

import math

import numpy as np

METHODS = ("entropy", "margin", "bald")
_EPS = 1e-12


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy divided by log C: 0 for a one-hot distribution, 1 for the uniform one."""
    probs = np.asarray(probs, dtype=np.float32)
    classes = probs.shape[0]
    if classes < 2:
        return np.zeros(probs.shape[1:], np.float32)
    h = -np.sum(probs * np.log(np.clip(probs, _EPS, 1.0)), axis=0)
    return np.clip(h / math.log(classes), 0.0, 1.0).astype(np.float32)


def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (p1 - p2), p1 and p2 the two largest probabilities: 0 when one class is certain, 1 on a tie."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape[0] < 2:
        return np.zeros(probs.shape[1:], np.float32)
    top2 = np.partition(probs, probs.shape[0] - 2, axis=0)[-2:]
    return np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0).astype(np.float32)


def bald(samples: np.ndarray) -> np.ndarray:
    """BALD mutual information of S Monte Carlo samples (S x C x ...): H(mean p) - mean H(p), divided by log C.

    0 when every sample agrees; at most 1 (samples that are one-hot on different classes, evenly split).
    """
    samples = np.asarray(samples, dtype=np.float32)
    classes = samples.shape[1]
    if classes < 2:
        return np.zeros(samples.shape[2:], np.float32)
    mean_p = samples.mean(axis=0)
    h_mean = -np.sum(mean_p * np.log(np.clip(mean_p, _EPS, 1.0)), axis=0)
    mean_h = -np.sum(samples * np.log(np.clip(samples, _EPS, 1.0)), axis=1).mean(axis=0)
    return np.clip((h_mean - mean_h) / math.log(classes), 0.0, 1.0).astype(np.float32)


def from_probabilities(method: str, probs: np.ndarray) -> np.ndarray:
    """``entropy`` or ``margin`` of C x ... probabilities (``bald`` needs Monte Carlo samples: see predict)."""
    if method == "entropy":
        return entropy(probs)
    if method == "margin":
        return margin(probs)
    raise ValueError(f"uncertainty {method!r} cannot be computed from probabilities alone; use entropy or margin")
