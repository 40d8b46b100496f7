"""Which clicks correct the model being continued: those where it predicts another class than the click's.

A later round's clicks go where the map was wrong, and such places are hard ones: the edges of thin classes, the
look-alike pixels beside them. Spread over their superpixels, they carry the wrong class to many pixels (four in ten
of massachusetts_roads' road labels spread from error clicks were background: docs/benchmarks.md, "The
massachusetts_roads collapse at iteration 1, diagnosed"). With ``--no-expand-corrections`` such clicks count as
clicks but do not spread; with ``--correction-region N`` they spread over superpixels of N px; the clicks the model
already gets right spread as before (both measured, off: docs/benchmarks.md).
"""

import numpy as np
import torch

from engine.device import to_layout
from engine.points import PixelLabels
from engine.sampling import RasterSource

WINDOW = 96  # px of context around each click (a multiple of the networks' output stride, 32)
BATCH = 16


@torch.no_grad()
def corrections(network: torch.nn.Module, source: RasterSource, labels: PixelLabels, device: torch.device
                ) -> np.ndarray:  # fmt: skip
    """Bool per label of ``labels``: a click (weight >= 1) where ``network`` predicts another class than its own
    (from a window of WINDOW px around it). Spread labels are never corrections."""
    out = np.zeros(len(labels), bool)
    clicked = np.nonzero(labels.weight_array() >= 1.0)[0]
    was_training = network.training
    network.eval()
    try:
        for start in range(0, len(clicked), BATCH):
            chunk = clicked[start : start + BATCH]
            images = np.stack([source.read(int(labels.rows[i]) - WINDOW // 2, int(labels.cols[i]) - WINDOW // 2,
                                           WINDOW)[0] for i in chunk])  # fmt: skip
            x = to_layout(torch.from_numpy(images).to(device), device)
            predicted = network(x)[:, :, WINDOW // 2, WINDOW // 2].argmax(dim=1).cpu().numpy()
            out[chunk] = predicted != labels.classes[chunk]
    finally:
        network.train(was_training)
    return out
