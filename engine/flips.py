"""Flip averaging (test-time augmentation): the network's class probabilities averaged over flipped copies of each
tile, each flipped back before the average.

A network trained on a few hundred clicks is unsure in many places, and where it is unsure its answer depends on
details a flip changes (which side of a border, which way a shadow falls); averaging the flipped views removes that
part of its error. The random forest's features do not change under a flip, so the hybrid flips the network only.
Measured on the final models of four label-efficiency runs, four views lifted mIoU on every one, by 0.003 to 0.031
(docs/benchmarks.md, "Flip averaging"); each view costs one more pass of the network.

Training stores the number of views in config.json (``trained.flip_views``); every prediction path reads it.
"""

import torch

KEY = "flip_views"
VIEWS = 4  # the default: the tile, flipped left-right, flipped up-down, and both (a half turn)
CHOICES = (1, 2, 4)
_FLIPS = ((), (-1,), (-2,), (-2, -1))  # dims of a B x C x H x W tensor to flip, in the order views are added


def views_of(trained: dict) -> int:
    """The views a model's ``config.trained`` asks for (1, no averaging, when it names none)."""
    return int(trained.get(KEY, 1))


def flip_mean(forward, x: torch.Tensor, views: int, first: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over the first ``views`` flips of softmax(forward(flipped x)), each flipped back (float32,
    B x C x H x W). ``first``: the unflipped view's probabilities when already computed."""
    if views not in CHOICES:
        raise ValueError(f"flip views must be one of {CHOICES}, not {views}")
    total = first if first is not None else torch.softmax(forward(x).float(), dim=1)
    for dims in _FLIPS[1:views]:
        total = total + torch.softmax(forward(x.flip(dims)).float(), dim=1).flip(dims)
    return total / views
