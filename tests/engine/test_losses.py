"""The losses against values computed by hand (DESIGN.md's formula), and their sparse-label behaviour."""

import math

import pytest
import torch

from engine.losses import DWCDLoss, PartialCELoss, SumLoss, dwcd_weights, make_loss

IGNORE = 255


def logits_of(probs_per_pixel: list[list[float]]) -> torch.Tensor:
    """Logits (1 x C x 1 x N) whose softmax is the given probabilities."""
    p = torch.tensor(probs_per_pixel, dtype=torch.float64)  # N x C
    return p.log().T[None, :, None, :]


def test_dwcd_binary_matches_hand_computation():
    # Pixel A: label 0, p = (0.7, 0.3). Pixel B: label 1, p = (0.95, 0.05): confident and wrong.
    # c = 2|p - 0.5|:  A (0.4, 0.4), B (0.9, 0.9);  e = |p - y|: A (0.3, 0.3), B (0.95, 0.95)
    # w = 1 - c(1 - e): A 1 - 0.4 * 0.7 = 0.72; B 1 - 0.9 * 0.05 = 0.955, amplified x5 = 4.775
    # mean over the 4 entries = (2 * 0.72 + 2 * 4.775) / 4 = 2.7475 -> A 0.72 / 2.7475, B 4.775 / 2.7475
    wa, wb = 0.72 / 2.7475, 4.775 / 2.7475
    dice0 = 2 * (wa * 0.7) / (wa * (0.7 + 1) + wb * 0.95)
    dice1 = 2 * (wb * 0.05) / (wa * 0.3 + wb * (0.05 + 1))
    expected = 1 - (dice0 + dice1) / 2
    assert expected == pytest.approx(0.86685, abs=1e-4)  # the arithmetic above, done once by hand
    loss = DWCDLoss(amplification=5.0, eps=0.0)(logits_of([[0.7, 0.3], [0.95, 0.05]]), torch.tensor([[[0, 1]]]))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_dwcd_multiclass_single_pixel_averages_over_classes():
    # One pixel of class 2 with p = (0.2, 0.3, 0.5): classes 0 and 1 have no true pixel, dice 0 (eps = 0);
    # class 2: the weight cancels, dice = 2 * 0.5 / 1.5 = 2/3. Loss = 1 - (0 + 0 + 2/3) / 3 = 7/9.
    loss = DWCDLoss(eps=0.0)(logits_of([[0.2, 0.3, 0.5]]), torch.tensor([[[2]]]))
    assert float(loss) == pytest.approx(7 / 9, rel=1e-6)


def test_dwcd_weights_multiclass_are_in_range():
    # The reference code's 2|p - 1/C| exceeds 1 for C > 2 and makes weights negative; ours never does.
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(500, 5) * 4, dim=1)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 5, (500,)), 5).float()
    confidence = (probs - 0.2).abs() / 0.8
    assert float(confidence.max()) <= 1.0 + 1e-6
    weights = dwcd_weights(probs, onehot, amplification=4.0)
    assert float(weights.min()) >= 0.0
    assert float(weights.mean()) == pytest.approx(1.0, rel=1e-5)


def test_dwcd_confident_wrong_pixels_weigh_more():
    probs = torch.tensor([[0.95, 0.05], [0.6, 0.4]])
    onehot = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    weights = dwcd_weights(probs, onehot, amplification=5.0)
    assert float(weights[0, 0]) > 4 * float(weights[1, 0])


@pytest.mark.parametrize("loss", [DWCDLoss(), PartialCELoss(), SumLoss(DWCDLoss(), PartialCELoss())])
def test_unlabelled_pixels_do_not_change_the_loss(loss):
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.full((2, 8, 8), IGNORE)
    target[0, 1, 2], target[1, 5, 5], target[1, 0, 7] = 0, 2, 1
    base = loss(logits, target)
    other = logits.clone()
    other[target[:, None].expand_as(other) == IGNORE] = torch.randn(int((target == IGNORE).sum()) * 3)
    assert float(loss(other, target)) == pytest.approx(float(base), rel=1e-6)


@pytest.mark.parametrize("name", ["dwcd", "ce", "dwcd+ce"])
def test_batch_without_labels_gives_zero_not_nan(name):
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = make_loss(name)(logits, torch.full((2, 4, 4), IGNORE))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(logits.grad).all()


def test_partial_ce_equals_cross_entropy_of_labelled_pixels():
    logits = logits_of([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]])
    target = torch.tensor([[[0, 1, IGNORE]]])
    expected = -(math.log(0.7) + math.log(0.8)) / 2
    assert float(PartialCELoss()(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_dwcd_decreases_when_prediction_improves():
    target = torch.tensor([[[0, 1]]])
    bad = DWCDLoss()(logits_of([[0.4, 0.6], [0.6, 0.4]]), target)
    good = DWCDLoss()(logits_of([[0.9, 0.1], [0.1, 0.9]]), target)
    assert float(good) < float(bad)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="dwcd, ce, dwcd\\+ce"):
        make_loss("focal")


def test_pixel_weights_scale_each_pixels_share():
    logits = logits_of([[0.7, 0.3], [0.2, 0.8]])
    target = torch.tensor([[[0, 1]]])
    weight = torch.tensor([[[1.0, 0.25]]])
    expected = -(1.0 * math.log(0.7) + 0.25 * math.log(0.8)) / 1.25
    assert float(PartialCELoss()(logits, target, weight)) == pytest.approx(expected, rel=1e-6)
    ones = torch.ones(1, 1, 2)
    for loss in (DWCDLoss(), PartialCELoss()):
        assert float(loss(logits, target, ones)) == pytest.approx(float(loss(logits, target)), rel=1e-6)
        assert float(loss(logits, target, weight)) != pytest.approx(float(loss(logits, target)), rel=1e-3)
