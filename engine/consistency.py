"""Consistency regularisation on unlabelled pixels (FixMatch-style).

The network sees each batch twice: as sampled (the weak view) and photometrically jittered, noised and flipped (the
strong view). Where the weak view's prediction is confident (max probability >= threshold), it becomes the target
of the strong view's prediction, so every pixel of the imagery, not only the clicked ones, shapes the model.
"""

import torch
import torch.nn.functional as F


def strong_view(images: torch.Tensor, jitter: float = 0.25, noise: float = 0.1) -> tuple[torch.Tensor, bool]:
    """Images (B x bands x H x W, normalised) with a random gain and offset per band, noise, and maybe a flip."""
    shape = (images.shape[0], images.shape[1], 1, 1)
    gain = 1 + jitter * torch.randn(shape, device=images.device)
    offset = jitter * torch.randn(shape, device=images.device)
    strong = images * gain + offset + noise * torch.randn_like(images)
    flipped = bool(torch.rand(()) < 0.5)
    return (strong.flip(-1) if flipped else strong), flipped


def consistency_loss(
    weak_logits: torch.Tensor, strong_logits: torch.Tensor, flipped: bool, threshold: float = 0.9
) -> torch.Tensor:
    """Cross-entropy of the strong view against the weak view's confident predictions (no gradient to them)."""
    confidence, pseudo = weak_logits.detach().float().softmax(dim=1).max(dim=1)
    if flipped:
        confidence, pseudo = confidence.flip(-1), pseudo.flip(-1)
    losses = F.cross_entropy(strong_logits.float(), pseudo, reduction="none")
    return (losses * (confidence >= threshold)).mean()
