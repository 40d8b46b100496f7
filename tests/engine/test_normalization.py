"""Normalisation statistics: robust to outliers, blind to nodata, stored and applied per band."""

import numpy as np
import pytest

from engine.errors import InputError
from engine.normalization import Normalization, compute_normalization
from tests.fixtures import write_raster


def test_outliers_do_not_move_the_statistics(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.normal(1000, 50, (2, 100, 100)).astype(np.uint16)
    spiky = clean.copy()
    spiky[:, :5, :5] = 65535  # 0.25 % of the pixels saturated
    a = compute_normalization([write_raster(tmp_path / "a.tif", clean)], [1, 2])
    b = compute_normalization([write_raster(tmp_path / "b.tif", spiky)], [1, 2])
    assert b.mean == pytest.approx(a.mean, rel=0.01)
    assert b.std == pytest.approx(a.std, rel=0.05)
    assert b.high[0] < 2000


def test_nodata_is_left_out_and_normalised_to_zero(tmp_path):
    data = np.full((1, 50, 50), 200, np.uint8)
    data[0, :25] = 100
    data[0, :10, :10] = 0
    path = write_raster(tmp_path / "nd.tif", data, nodata=0)
    norm = compute_normalization([path], [1])
    assert norm.low[0] >= 100
    valid = data[0] != 0
    out = norm.apply(data.astype(np.float32), valid)
    assert np.all(out[0, ~valid] == 0)
    assert out[0, 30, 30] > 0 > out[0, 20, 20]


def test_only_nodata_is_an_error(tmp_path):
    path = write_raster(tmp_path / "empty.tif", np.zeros((1, 8, 8), np.uint8), nodata=0)
    with pytest.raises(InputError, match="nodata"):
        compute_normalization([path], [1])


def test_round_trip_through_a_dict():
    norm = Normalization([1.0, 2.0], [3.0, 4.0], [2.0, 3.0], [0.5, 0.25])
    assert Normalization.from_dict(norm.to_dict()) == norm
