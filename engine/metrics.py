"""Scores of a predicted class map against a reference: confusion matrix, per-class IoU and mean IoU."""

import numpy as np


def confusion_matrix(
    predicted: np.ndarray, reference: np.ndarray, num_classes: int, valid: np.ndarray | None = None
) -> np.ndarray:
    """Counts (num_classes x num_classes, int64): rows are the reference class, columns the predicted one.

    Pixels outside ``valid``, or whose reference is not a class index (an ignore value such as 255), do not count.
    """
    predicted = np.asarray(predicted).ravel().astype(np.int64)
    reference = np.asarray(reference).ravel().astype(np.int64)
    if predicted.shape != reference.shape:
        raise ValueError(f"prediction has {predicted.size} pixels, reference {reference.size}")
    keep = (reference >= 0) & (reference < num_classes)
    if valid is not None:
        keep &= np.asarray(valid, bool).ravel()
    if np.any((predicted[keep] < 0) | (predicted[keep] >= num_classes)):
        raise ValueError(f"predicted classes must be in 0..{num_classes - 1}")
    flat = reference[keep] * num_classes + predicted[keep]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of each class: TP / (TP + FP + FN); NaN for a class neither present nor predicted."""
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of the per-class IoUs over the classes that are present or predicted (NaN if none)."""
    ious = iou_per_class(matrix)
    return float(np.nanmean(ious)) if np.any(~np.isnan(ious)) else float("nan")


def overall_accuracy(matrix: np.ndarray) -> float:
    total = float(np.sum(matrix))
    return float(np.trace(matrix)) / total if total else float("nan")
