"""The self-supervised warm-up, the consistency loss and the edge-aware smoothness loss use unlabelled pixels and
change the weights."""

import numpy as np
import pytest
import torch

from engine.consistency import consistency_loss, strong_view
from engine.events import Events
from engine.models import build_network
from engine.normalization import Normalization
from engine.pretrain import mask_blocks, pretrain
from engine.sampling import RasterSource


def test_consistency_targets_only_confident_pixels_and_undoes_the_flip():
    weak = torch.zeros(1, 2, 1, 4)
    weak[0, 0, 0, :2] = 5.0  # confident class 0 on the left half
    weak[0, 1, 0, 2:] = 0.01  # unsure on the right half
    student = torch.zeros(1, 2, 1, 4, requires_grad=True)
    loss = consistency_loss(weak, student, flipped=False, threshold=0.9)
    loss.backward()
    grad = student.grad[0].abs().sum(0)[0]
    assert torch.all(grad[2:] == 0) and torch.all(grad[:2] != 0)
    student.grad = None
    consistency_loss(weak, student, flipped=True, threshold=0.9).backward()
    grad = student.grad[0].abs().sum(0)[0]
    assert torch.all(grad[:2] == 0) and torch.all(grad[2:] != 0)


def test_strong_view_changes_values_but_not_shape():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 8, 8)
    strong, flipped = strong_view(images)
    assert strong.shape == images.shape and not torch.allclose(strong, images)
    assert isinstance(flipped, bool)


def test_block_masks_hide_about_the_ratio():
    torch.manual_seed(0)
    hidden = mask_blocks(torch.zeros(8, 3, 64, 64), block=8, ratio=0.5)
    assert hidden.shape == (8, 1, 64, 64)
    assert 0.35 < float(hidden.mean()) < 0.65
    assert torch.all(hidden[:, :, :8, :8] == hidden[:, :, :1, :1])  # whole blocks


@pytest.mark.slow
def test_pretraining_changes_the_encoder_and_decoder_but_not_the_head(raster):
    torch.manual_seed(0)
    network = build_network("Unet", "resnet18", 3, 2)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    source = RasterSource(raster, [1, 2, 3], Normalization([0.0] * 3, [255.0] * 3, [128.0] * 3, [64.0] * 3))
    loss = pretrain(network, "Unet", "resnet18", [source], steps=2, batch_size=2, patch_size=64,
                    device=torch.device("cpu"), events=Events("text"), rng=np.random.default_rng(0))  # fmt: skip
    after = network.state_dict()
    assert np.isfinite(loss)
    assert not torch.equal(before["encoder.conv1.weight"], after["encoder.conv1.weight"])
    assert not torch.equal(before["decoder.blocks.0.conv1.0.weight"], after["decoder.blocks.0.conv1.0.weight"])
    assert torch.equal(before["segmentation_head.0.weight"], after["segmentation_head.0.weight"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "lever", [{"consistency": 1.0, "consistency_threshold": 0.0}, {"affinity": 1.0}], ids=["consistency", "affinity"]
)
def test_training_with_a_loss_on_unlabelled_pixels_differs_from_training_without(scene, lever):
    from engine.classes import parse_classes
    from engine.points import PixelLabels
    from engine.train import TrainOptions, train

    labels = PixelLabels(np.array([5, 60, 100]), np.array([5, 60, 100]), scene.label[[5, 60, 100], [5, 60, 100]])
    runs = []
    for on in (False, True):
        options = TrainOptions(epochs=1, batch_size=2, patch_size=64, patches_per_epoch=4, **(lever if on else {}))
        result = train([scene.image], [labels], [1, 2, 3], parse_classes("a,b,c"), options, torch.device("cpu"),
                       Events("text"))  # fmt: skip
        runs.append(result.network.state_dict())
    assert not torch.equal(runs[0]["encoder.conv1.weight"], runs[1]["encoder.conv1.weight"])
