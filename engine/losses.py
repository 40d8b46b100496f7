"""Losses over sparse labels: only labelled pixels count; unlabelled ones carry ``ignore_index``.

The Dynamic Weighted Confidence Dice loss (DWCD, de Carvalho et al.), per labelled pixel and class, with p the
softmax probability and y the one-hot label:
    confidence c = |p - 1/C| / (1 - 1/C)          (in [0, 1]; 2|p - 0.5| for two classes)
    correctness e = |p - y|
    weight w = 1 - c (1 - e), times ``amplification`` where c > 0.8 and e > 0.5 (confident and wrong)
    weights normalised to mean 1 over the labelled pixels
    loss_k = 1 - (2 sum(w p y) + eps) / (sum(w (p + y)) + eps), averaged over the classes.
Softmax is applied once, here: the network outputs logits. Every loss takes an optional per-pixel ``weight``
(B x H x W): 1 for a clicked pixel, less for a label spread from a click; DWCD multiplies its weights by it and
partial cross-entropy becomes a weighted mean.
"""

import torch
import torch.nn.functional as F
from torch import nn


def dwcd_weights(probs: torch.Tensor, onehot: torch.Tensor, amplification: float) -> torch.Tensor:
    """Weights (N x C) for labelled pixels' probabilities and one-hot labels (both N x C)."""
    num_classes = probs.shape[1]
    confidence = (probs - 1.0 / num_classes).abs() / (1.0 - 1.0 / num_classes)
    error = (probs - onehot).abs()
    weights = 1.0 - confidence * (1.0 - error)
    weights = torch.where((confidence > 0.8) & (error > 0.5), weights * amplification, weights)
    return weights / weights.mean().clamp_min(1e-12)


def _labelled(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Logits of labelled pixels (N x C), their labels (N) and their weights (N, or None)."""
    num_classes = logits.shape[1]
    flat = logits.permute(0, 2, 3, 1).reshape(-1, num_classes)
    labels = target.reshape(-1)
    keep = labels != ignore_index
    return flat[keep], labels[keep].long(), None if weight is None else weight.reshape(-1)[keep].float()


class DWCDLoss(nn.Module):
    def __init__(
        self, amplification: float = 5.0, eps: float = 1.0, ignore_index: int = 255, weight_grad: bool = False
    ):
        super().__init__()
        self.amplification = amplification
        self.eps = eps
        self.ignore_index = ignore_index
        self.weight_grad = weight_grad

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        flat, labels, pixel_weight = _labelled(logits.float(), target, weight, self.ignore_index)
        if labels.numel() == 0:
            return logits.sum() * 0.0
        probs = flat.softmax(dim=1)
        onehot = F.one_hot(labels, probs.shape[1]).to(probs.dtype)
        weights = dwcd_weights(probs if self.weight_grad else probs.detach(), onehot, self.amplification)
        if pixel_weight is not None:
            weights = weights * pixel_weight[:, None]
        intersection = (weights * probs * onehot).sum(dim=0)
        total = (weights * (probs + onehot)).sum(dim=0)
        dice = (2.0 * intersection + self.eps) / (total + self.eps)
        return (1.0 - dice).mean()


class PartialCELoss(nn.Module):
    """Cross-entropy over labelled pixels only; zero (not NaN) for a batch without any."""

    def __init__(self, ignore_index: int = 255):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        flat, labels, pixel_weight = _labelled(logits.float(), target, weight, self.ignore_index)
        if labels.numel() == 0:
            return logits.sum() * 0.0
        if pixel_weight is None:
            return F.cross_entropy(flat, labels)
        losses = F.cross_entropy(flat, labels, reduction="none")
        return (losses * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


class SumLoss(nn.Module):
    def __init__(self, *losses: nn.Module):
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return sum(loss(logits, target, weight) for loss in self.losses)


LOSSES = ("dwcd", "ce", "dwcd+ce")


def make_loss(name: str, amplification: float = 5.0, ignore_index: int = 255) -> nn.Module:
    if name == "dwcd":
        return DWCDLoss(amplification, ignore_index=ignore_index)
    if name == "ce":
        return PartialCELoss(ignore_index)
    if name == "dwcd+ce":
        return SumLoss(DWCDLoss(amplification, ignore_index=ignore_index), PartialCELoss(ignore_index))
    raise ValueError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
