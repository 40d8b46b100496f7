"""predict_probabilities on in-memory images: geometry, blending without seams, padding, validity, MC dropout."""

import numpy as np
import pytest
import torch
from torch import nn

from engine.classes import parse_classes
from engine.models import ModelConfig, build_network
from engine.normalization import Normalization
from engine.predict import Prediction, predict_probabilities


def _config(bands: int = 3, classes: str = "background,car,road") -> ModelConfig:
    norm = Normalization([0.0] * bands, [255.0] * bands, [128.0] * bands, [64.0] * bands)
    return ModelConfig("Unet", "resnet18", bands, list(range(1, bands + 1)), norm, parse_classes(classes))


def _image(height: int, width: int, bands: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (bands, height, width)).astype(np.float32)


def _conv_net(kernel: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Conv2d(3, 3, kernel, padding=kernel // 2).eval()


def _direct(net: nn.Module, config: ModelConfig, image: np.ndarray) -> np.ndarray:
    """The whole image in one forward pass, no tiles."""
    x = torch.from_numpy(config.normalization.apply(image))[None]
    with torch.no_grad():
        return torch.softmax(net(x), dim=1)[0].numpy()


def test_pixelwise_network_tiled_equals_untiled_everywhere():
    """A 1x1 network has no context: any tiling must give exactly the untiled result, edges included."""
    net, config = _conv_net(1), _config()
    image = _image(150, 211)
    result = predict_probabilities(net, config, image, np.ones((150, 211), bool), "cpu", tile_size=64, overlap=16)
    assert isinstance(result, Prediction) and result.bald is None
    assert result.probs.shape == (3, 150, 211) and result.probs.dtype == np.float32
    np.testing.assert_allclose(result.probs, _direct(net, config, image), atol=1e-5)


def _interior_error(net, config, image, overlap: int) -> float:
    result = predict_probabilities(net, config, image, np.ones(image.shape[1:], bool), "cpu", tile_size=64,
                                   overlap=overlap)  # fmt: skip
    return float(np.abs(result.probs - _direct(net, config, image))[:, 2:-2, 2:-2].max())


def test_blending_leaves_no_seam_where_tiles_meet():
    """A 5x5 network with zero padding errs on a tile's outer 2 pixels; blended tiles hide that, abutting ones don't."""
    net, config = _conv_net(5), _config()
    image = _image(160, 160)
    assert _interior_error(net, config, image, overlap=16) < 0.01
    assert _interior_error(net, config, image, overlap=0) > 0.05  # the check above can see a seam


def test_unet_prediction_does_not_depend_on_the_tiling_away_from_edges():
    torch.manual_seed(0)
    net, config = build_network("Unet", "resnet18", 3, 3).eval(), _config()
    image = _image(224, 224)
    valid = np.ones((224, 224), bool)
    a = predict_probabilities(net, config, image, valid, "cpu", tile_size=64, overlap=24).probs
    b = predict_probabilities(net, config, image, valid, "cpu", tile_size=96, overlap=32).probs
    inner = (slice(None), slice(32, -32), slice(32, -32))
    assert (a.argmax(0) == b.argmax(0))[inner[1:]].mean() > 0.98
    assert np.abs(a - b)[inner].mean() < 0.05


def test_image_smaller_than_a_tile_is_padded():
    net, config = _conv_net(1), _config()
    image = _image(7, 45)
    result = predict_probabilities(net, config, image, np.ones((7, 45), bool), "cpu", tile_size=512, overlap=64)
    np.testing.assert_allclose(result.probs, _direct(net, config, image), atol=1e-5)


def test_invalid_pixels_hold_zero_and_all_invalid_tiles_are_not_run():
    calls = []

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = _conv_net(1)

        def forward(self, x):
            calls.append(x.shape[0])
            return self.conv(x)

    config = _config()
    valid = np.ones((64, 256), bool)
    valid[:, 128:] = False
    result = predict_probabilities(Counting(), config, _image(64, 256), valid, "cpu", tile_size=64, overlap=0,
                                   batch_size=8)  # fmt: skip
    assert sum(calls) == 2  # 4 tiles, the two over nodata skipped
    assert (result.probs[:, :, 128:] == 0).all()
    np.testing.assert_allclose(result.probs[:, :, :128].sum(0), 1.0, atol=1e-5)


def test_mc_dropout_gives_bald_in_unit_range_and_keeps_the_deterministic_probabilities():
    torch.manual_seed(0)
    net, config = build_network("Unet", "resnet18", 3, 3).eval(), _config()
    image, valid = _image(96, 96), np.ones((96, 96), bool)
    plain = predict_probabilities(net, config, image, valid, "cpu", tile_size=64, overlap=16)
    mc = predict_probabilities(net, config, image, valid, "cpu", tile_size=64, overlap=16, mc_samples=4)
    assert mc.bald is not None and mc.bald.shape == (96, 96) and mc.bald.dtype == np.float32
    assert mc.bald.min() >= 0.0 and mc.bald.max() <= 1.0 and mc.bald.mean() > 0.001
    np.testing.assert_allclose(mc.probs, plain.probs, atol=1e-5)
    assert not any(m.training for m in net.modules())  # the network is left as it was


def test_a_training_network_predicts_in_eval_mode_and_is_left_training():
    torch.manual_seed(0)
    net, config = build_network("Unet", "resnet18", 3, 3), _config()
    image, valid = _image(64, 64), np.ones((64, 64), bool)
    expected = predict_probabilities(net.eval(), config, image, valid, "cpu").probs
    net.train()
    got = predict_probabilities(net, config, image, valid, "cpu").probs
    assert net.training and all(m.training for m in net.modules())
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_mc_dropout_needs_a_segmentation_head():
    with pytest.raises(ValueError, match="segmentation_head"):
        predict_probabilities(_conv_net(1), _config(), _image(32, 32), np.ones((32, 32), bool), "cpu", mc_samples=2)


def test_image_with_wrong_band_count_is_refused():
    with pytest.raises(ValueError, match="bands"):
        predict_probabilities(_conv_net(1), _config(), _image(32, 32, bands=4), np.ones((32, 32), bool), "cpu")
