"""Training patches: labels land where they were clicked, augmentation moves image and mask together."""

import numpy as np

from engine.normalization import Normalization
from engine.points import PixelLabels
from engine.sampling import IGNORE_INDEX, PatchSampler, RasterSource
from tests.fixtures import write_raster


def _sampler(path, labels, size=16, context=0.0, augment=True, seed=0, bands=(1,), jitter=0.0):
    n = len(bands)
    source = RasterSource(path, list(bands), Normalization([0.0] * n, [1e9] * n, [0.0] * n, [1.0] * n))  # identity
    return PatchSampler([source], [labels], size, np.random.default_rng(seed), context, augment, jitter)


def test_label_pixels_carry_their_class_and_the_rest_is_ignored(tmp_path):
    # The image's value at each pixel encodes its position, so the patch tells where it was read from.
    data = (np.arange(40 * 40).reshape(1, 40, 40) + 1).astype(np.float32)
    path = write_raster(tmp_path / "pos.tif", data)
    labels = PixelLabels(np.array([10, 30]), np.array([12, 5]), np.array([1, 2]))
    sampler = _sampler(path, labels, augment=False)
    for _ in range(20):
        patch = sampler.sample()
        labelled = np.argwhere(patch.target != IGNORE_INDEX)
        assert len(labelled) >= 1
        for r, c in labelled:
            value = int(patch.image[0, r, c]) - 1
            row, col = divmod(value, 40)
            k = [(10, 12), (30, 5)].index((row, col))
            assert patch.target[r, c] == labels.classes[k]
        assert (patch.target != IGNORE_INDEX).sum() <= 2


def test_augmentation_keeps_image_and_mask_aligned(tmp_path):
    data = (np.arange(32 * 32).reshape(1, 32, 32) + 1).astype(np.float32)
    path = write_raster(tmp_path / "pos.tif", data)
    labels = PixelLabels(np.array([3, 20]), np.array([7, 9]), np.array([1, 2]))
    sampler = _sampler(path, labels, augment=True, seed=3)
    seen_orientations = set()
    for _ in range(40):
        patch = sampler.sample()
        for r, c in np.argwhere(patch.target != IGNORE_INDEX):
            value = int(patch.image[0, r, c]) - 1
            assert divmod(value, 32) in [(3, 7), (20, 9)]
            k = [(3, 7), (20, 9)].index(divmod(value, 32))
            assert patch.target[r, c] == labels.classes[k]
        valid = patch.image[0] > 0
        if valid.all():
            seen_orientations.add(int(np.sign(patch.image[0, 0, 1] - patch.image[0, 0, 0])))
    assert len(seen_orientations) == 2  # flips/rotations happened


def test_patches_past_the_edge_and_small_rasters_are_padded_and_ignored(tmp_path):
    path = write_raster(tmp_path / "small.tif", np.full((1, 10, 12), 5, np.uint8))
    labels = PixelLabels(np.array([0]), np.array([0]), np.array([1]))
    patch = _sampler(path, labels, size=32, augment=False).sample()
    assert patch.image.shape == (1, 32, 32)
    assert (patch.target == 1).sum() == 1
    assert (patch.image > 0).sum() == 10 * 12
    assert (patch.image == 0).sum() == 32 * 32 - 120


def test_nodata_pixels_never_carry_a_label(tmp_path):
    data = np.full((1, 16, 16), 9, np.uint8)
    data[0, 4, 4] = 0
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    labels = PixelLabels(np.array([4, 8]), np.array([4, 8]), np.array([1, 2]))
    sampler = _sampler(path, labels, size=16, augment=False)
    for _ in range(10):
        patch = sampler.sample()
        assert 1 not in patch.target


def test_context_patches_come_from_anywhere(tmp_path):
    data = (np.arange(64 * 64).reshape(1, 64, 64) + 1).astype(np.float32)
    path = write_raster(tmp_path / "pos.tif", data)
    labels = PixelLabels(np.array([2]), np.array([2]), np.array([1]))
    sampler = _sampler(path, labels, size=16, context=1.0, augment=False)
    origins = {divmod(int(sampler.sample().image[0, 0, 0]) - 1, 64) for _ in range(30)}
    assert len(origins) > 10


def test_jitter_changes_each_band_by_a_bounded_gain_and_offset_and_leaves_labels_and_nodata_alone(tmp_path):
    data = np.full((2, 16, 16), 10, np.float32)
    data[:, :, 8:] = 60  # every patch holds the label at column 8, and column 7 unless it starts there
    data[:, 0, 0] = 0  # nodata
    path = write_raster(tmp_path / "two.tif", data, nodata=0)
    labels = PixelLabels(np.array([8]), np.array([8]), np.array([1]))
    sampler = _sampler(path, labels, size=16, augment=False, bands=(1, 2), jitter=0.2)
    gains = []
    for _ in range(30):
        patch = sampler.sample()
        assert (patch.target == 1).sum() == 1 and (patch.target == IGNORE_INDEX).sum() == 16 * 16 - 1
        for band in patch.image:
            values = np.unique(band[band != 0])  # 10 and 60 before the jitter; padding and nodata stay 0
            assert len(values) in (1, 2)
            if len(values) == 1:  # the patch starts at column 8
                continue
            gain = (values[1] - values[0]) / 50
            offset = values[0] - 10 * gain
            assert 0.8 - 1e-4 <= gain <= 1.2 + 1e-4 and -0.2 - 1e-4 <= offset <= 0.2 + 1e-4
            gains.append(gain)
    assert len(gains) > 30 and np.std(gains) > 0.05  # each patch and band draws its own
