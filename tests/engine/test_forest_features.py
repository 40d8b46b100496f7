"""Features of the random forest: settings, tiles, and tiled computation equal to whole-image computation."""

import numpy as np
import pytest

from engine.errors import InputError
from engine.features import FeatureSettings, compute_features, tiled_features, tiles
from engine.forest import ForestOptions, labelled_features
from engine.normalization import compute_normalization
from engine.points import PixelLabels
from engine.raster_io import open_raster, read_window
from tests.fixtures import write_raster

SMALL = FeatureSettings(sigma_min=1, sigma_max=4, num_sigma=3)  # margin 20: tiles are much smaller than the image


def _image(size=96, bands=2, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    smooth = np.sin(xx / 7.0) + np.cos(yy / 5.0)
    return (smooth[None] + rng.normal(0, 0.5, (bands, size, size))).astype(np.float32)


def test_default_settings_are_the_ilastik_recipe():
    settings = FeatureSettings()
    assert settings.sigmas == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert settings.per_sigma == 4  # intensity, edges, two Hessian eigenvalues
    assert settings.n_features(3) == 60
    assert len(settings.names([1, 2, 3])) == 60
    assert settings.margin >= 4 * 16


def test_settings_round_trip_and_validation():
    settings = FeatureSettings(sigma_min=0.5, sigma_max=8, num_sigma=4, edges=False)
    data = settings.to_dict()
    assert data["method"] == "skimage.feature.multiscale_basic_features"
    assert FeatureSettings.from_dict(data) == settings
    with pytest.raises(InputError):
        FeatureSettings(intensity=False, edges=False, texture=False)
    with pytest.raises(InputError):
        FeatureSettings(sigma_min=4, sigma_max=2)


@pytest.mark.parametrize("settings", [SMALL, FeatureSettings(texture=False, num_sigma=2, sigma_max=2)])
def test_feature_count_matches_output(settings):
    out = compute_features(_image(40, bands=3), settings)
    assert out.shape == (40, 40, settings.n_features(3))
    assert out.dtype == np.float32


@pytest.mark.parametrize(("height", "width", "size"), [(96, 96, 32), (70, 45, 16), (10, 10, 64)])
def test_tiles_cover_each_pixel_once_with_the_margin(height, width, size):
    margin = 5
    count = np.zeros((height, width), int)
    for tile in tiles(height, width, size, margin):
        count[tile.row0 : tile.row1, tile.col0 : tile.col1] += 1
        assert 0 <= tile.pad_row0 <= tile.row0 < tile.row1 <= tile.pad_row1 <= height
        assert 0 <= tile.pad_col0 <= tile.col0 < tile.col1 <= tile.pad_col1 <= width
        assert tile.pad_row0 == max(0, tile.row0 - margin) and tile.pad_row1 == min(height, tile.row1 + margin)
        rows, cols = tile.core_in_pad
        assert rows.stop - rows.start == tile.row1 - tile.row0 and cols.stop - cols.start == tile.col1 - tile.col0
    assert np.all(count == 1)


def test_tiled_features_equal_whole_image_features():
    image = _image(96)
    whole = compute_features(image, SMALL)
    tiled = tiled_features(image, SMALL, size=24)
    np.testing.assert_allclose(tiled, whole, rtol=1e-6, atol=1e-6)
    # the margin matters: features of the bare 24 x 24 cores differ from the whole image's near the cores' edges
    bare = compute_features(image[:, 24:48, 24:48], SMALL)
    assert np.abs(bare - whole[24:48, 24:48]).max() > 1e-3


def test_tiled_features_equal_whole_image_features_at_the_default_sigmas():
    image = _image(160, bands=1)
    settings = FeatureSettings()
    whole = compute_features(image, settings)
    tiled = tiled_features(image, settings, size=48)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)


def test_labelled_features_read_by_tiles_equal_whole_raster_features(tmp_path):
    data = (_image(100, bands=3) * 40 + 120).clip(0, 255).astype(np.uint8)
    path = write_raster(tmp_path / "r.tif", data)
    bands = [1, 2, 3]
    norm = compute_normalization([path], bands)
    rng = np.random.default_rng(3)
    labels = PixelLabels(rng.integers(0, 100, 40), rng.integers(0, 100, 40), rng.integers(0, 3, 40))
    got = labelled_features(path, labels, bands, norm, ForestOptions(features=SMALL, tile=16))
    with open_raster(path) as ds:
        raw, valid = read_window(ds, bands, 0, 0, 100, 100)
    whole = compute_features(norm.apply(raw, valid), SMALL)
    np.testing.assert_allclose(got, whole[labels.rows, labels.cols], rtol=1e-6, atol=1e-6)


def test_labelled_features_refuse_pixels_outside_the_raster(tmp_path):
    path = write_raster(tmp_path / "r.tif", np.zeros((1, 20, 20), np.uint8))
    norm = compute_normalization([path], [1])
    labels = PixelLabels(np.array([5, 25]), np.array([5, 5]), np.array([0, 1]))
    with pytest.raises(InputError, match="outside"):
        labelled_features(path, labels, [1], norm, ForestOptions(features=SMALL))
