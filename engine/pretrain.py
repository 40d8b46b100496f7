"""Self-supervised warm-up on the session's own imagery, before any click is used.

Masked-image reconstruction: a network of the same architecture learns to restore random square holes in
patches of the rasters; its encoder and decoder then start the segmentation network (its head starts fresh).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from engine import cancel
from engine.device import memory_format, to_layout
from engine.events import Events
from engine.models import build_network
from engine.points import PixelLabels
from engine.sampling import PatchSampler, RasterSource


def mask_blocks(images: torch.Tensor, block: int, ratio: float) -> torch.Tensor:
    """A B x 1 x H x W mask, 1 where square blocks of side ``block`` are hidden (about ``ratio`` of them)."""
    b, _, h, w = images.shape
    coarse = torch.rand(b, 1, math.ceil(h / block), math.ceil(w / block), device=images.device) < ratio
    return F.interpolate(coarse.float(), scale_factor=block, mode="nearest")[:, :, :h, :w]


def pretrain(
    network: torch.nn.Module, arch: str, encoder: str, sources: list[RasterSource], steps: int, batch_size: int,
    patch_size: int, device: torch.device, events: Events, rng: np.random.Generator, lr: float = 1e-3,
) -> float:  # fmt: skip
    """Warm ``network``'s encoder and decoder up by masked reconstruction; returns the last reconstruction loss."""
    bands = sources[0].normalization
    recon = build_network(arch, encoder, len(bands.mean), len(bands.mean))
    recon.to(device, memory_format=memory_format(device)).train()
    sampler = PatchSampler(sources, [PixelLabels() for _ in sources], patch_size, rng, context_fraction=1.0)
    optimizer = torch.optim.Adam(recon.parameters(), lr=lr)
    loss = torch.zeros(())
    for step in range(1, steps + 1):
        cancel.check()
        images = to_layout(torch.from_numpy(sampler.batch(batch_size)[0]).to(device), device)
        hidden = mask_blocks(images, block=max(4, patch_size // 16), ratio=0.5)
        output = recon(images * (1 - hidden))
        loss = (((output - images) ** 2) * hidden).sum() / hidden.sum().clamp_min(1) / images.shape[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        events.progress("pretrain", step, steps)
    shared = {k: v for k, v in recon.state_dict().items() if not k.startswith("segmentation_head.")}
    network.load_state_dict(shared, strict=False)
    return float(loss.detach())
