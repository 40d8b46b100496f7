"""An edge-aware smoothness loss on every pixel of a training patch (a local CRF loss).

A click labels one pixel; its neighbours of the same colour very likely share its class, and a change of class is
likely only where the image has an edge. With ``train --affinity W`` the network pays W times, for each pair of
pixels at most ``RADIUS`` apart, the squared difference of their predicted class probabilities, weighted by how alike
their colours are: w_ij = exp(-beta |I_i - I_j|^2), with beta = 1 / (2 mean |I_i - I_j|^2) over the patch (the
contrast scale of GrabCut, Rother et al. 2004), so a patch of low contrast is judged against its own edges. The
predictions then spread from the clicks through regions of like colour and stop at edges, on every pixel of the
imagery, not only on the clicks and their superpixels (the pairwise terms of Tang et al. 2018, "On regularized losses
for weakly-supervised CNN segmentation", and Obukhov et al. 2019, "Gated CRF loss", on a local window).

The squared difference, not those papers' relaxed Potts term 1 - p_i . p_j: the Potts term also rewards confident
maps, and at weight 4 it made bsb_toy's first model drop the building class (docs/benchmarks.md, "An edge-aware
smoothness loss"); the squared difference is 0 for any map that is constant over a pair, confident or not.
"""

import torch

RADIUS = 2  # pairs within a 5 x 5 window: 12 offsets, each pair counted once


def _offsets(radius: int) -> list[tuple[int, int]]:
    """Half of the window's offsets (the other half are the same pairs the other way round)."""
    return [(dy, dx) for dy in range(0, radius + 1) for dx in range(-radius, radius + 1) if dy > 0 or dx > 0]


def _pairs(tensor: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two ends of every pair of pixels (y, x), (y + dy, x + dx) inside a ... x H x W tensor (dy >= 0)."""
    h, w = tensor.shape[-2:]
    first = tensor[..., : h - dy, max(0, -dx) : w - max(0, dx)]
    second = tensor[..., dy:, max(0, dx) : w - max(0, -dx)]
    return first, second


def affinity_loss(logits: torch.Tensor, images: torch.Tensor, radius: int = RADIUS) -> torch.Tensor:
    """Mean over the pixel pairs within ``radius`` of colour affinity times the squared difference of their class
    probabilities.

    ``logits``: B x C x H x W; ``images``: B x bands x H x W, the network's input (normalised). No gradient flows to
    the images. 0 for a map that is the same at every pixel, whatever the image.
    """
    probs = logits.float().softmax(dim=1)
    images = images.detach().float()
    distances, differences = [], []
    for dy, dx in _offsets(radius):
        a, b = _pairs(images, dy, dx)
        distances.append(((a - b) ** 2).mean(dim=1))
        p, q = _pairs(probs, dy, dx)
        differences.append(((p - q) ** 2).sum(dim=1))
    pairs_per_image = sum(d[0].numel() for d in distances)
    scale = sum(d.sum(dim=(-2, -1)) for d in distances) / pairs_per_image  # the mean distance of each image's pairs
    beta = (1 / (2 * scale.clamp_min(1e-6)))[:, None, None]
    total = sum((torch.exp(-beta * d) * s).sum() for d, s in zip(distances, differences, strict=True))
    return total / (pairs_per_image * logits.shape[0])
