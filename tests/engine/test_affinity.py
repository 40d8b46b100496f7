"""The edge-aware smoothness loss: pairs of like colour pay for different predictions, pairs across an edge hardly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.affinity import affinity_loss


def _two_regions(size: int = 16, noise: float = 0.05) -> torch.Tensor:
    """A 1 x 3 x size x size image, dark on the left half, bright on the right, with a little noise."""
    generator = torch.Generator().manual_seed(0)
    image = torch.full((1, 3, size, size), -1.0)
    image[..., size // 2 :] = 1.0
    return image + noise * torch.randn(image.shape, generator=generator)


def _split_at(column: int, size: int = 16, confidence: float = 20.0) -> torch.Tensor:
    """Two-class logits: class 0 left of ``column``, class 1 from it on, near certain."""
    logits = torch.zeros(1, 2, size, size)
    logits[:, 0, :, :column] = confidence
    logits[:, 1, :, column:] = confidence
    return logits


def test_matches_the_pairs_counted_one_by_one():
    torch.manual_seed(0)
    logits, image = torch.randn(2, 3, 5, 6), torch.randn(2, 4, 5, 6)
    probs = logits.softmax(dim=1)
    expected = []
    for b in range(2):
        pairs = [((y, x), (y2, x2)) for y in range(5) for x in range(6) for y2 in range(5) for x2 in range(6)
                 if (y2, x2) > (y, x) and abs(y2 - y) <= 2 and abs(x2 - x) <= 2]  # fmt: skip
        distances = [float(((image[b, :, y, x] - image[b, :, y2, x2]) ** 2).mean()) for (y, x), (y2, x2) in pairs]
        beta = 1 / (2 * np.mean(distances))
        expected += [np.exp(-beta * d) * float(((probs[b, :, y, x] - probs[b, :, y2, x2]) ** 2).sum())
                     for d, ((y, x), (y2, x2)) in zip(distances, pairs, strict=True)]  # fmt: skip
    assert float(affinity_loss(logits, image)) == pytest.approx(np.mean(expected), rel=1e-5)


@pytest.mark.parametrize("confidence", [30.0, 0.0])  # certain of one class, or unsure everywhere alike
def test_a_map_that_is_the_same_everywhere_costs_nothing(confidence):
    logits = torch.zeros(1, 3, 12, 12)
    logits[:, 1] = confidence
    assert float(affinity_loss(logits, _two_regions(12))) == pytest.approx(0.0, abs=1e-6)


def test_a_class_boundary_on_the_edge_costs_far_less_than_one_inside_a_region():
    image = _two_regions()
    on_edge = float(affinity_loss(_split_at(8), image))
    inside = float(affinity_loss(_split_at(5), image))
    assert on_edge < 0.05 * inside


def test_the_images_get_no_gradient():
    image = _two_regions().requires_grad_(True)
    logits = torch.zeros(1, 2, 16, 16, requires_grad=True)
    affinity_loss(logits, image).backward()
    assert image.grad is None and logits.grad is not None


def _fit_free_map(affinity: float, steps: int = 300) -> torch.Tensor:
    """Per-pixel logits fit to one click per region (CE) plus ``affinity`` times the loss; their probabilities."""
    image = _two_regions()
    logits = torch.zeros(1, 2, 16, 16, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    clicks = [((8, 2), 0), ((8, 13), 1)]
    for _ in range(steps):
        loss = sum(F.cross_entropy(logits[:, :, y, x], torch.tensor([c])) for (y, x), c in clicks)
        loss = loss + affinity * affinity_loss(logits, image)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return logits.detach().softmax(dim=1)[0]


def test_the_clicks_spread_over_their_regions_and_stop_at_the_edge():
    probs = _fit_free_map(affinity=5.0)
    assert float(probs[0, :, :8].min()) > 0.5  # class 0 over the whole left region
    assert float(probs[1, :, 8:].min()) > 0.5  # class 1 over the whole right region
    without = _fit_free_map(affinity=0.0)
    unclicked = torch.ones(16, 16, dtype=torch.bool)
    unclicked[8, 2] = unclicked[8, 13] = False
    assert torch.allclose(without[0][unclicked], torch.tensor(0.5))  # nothing spreads without it
