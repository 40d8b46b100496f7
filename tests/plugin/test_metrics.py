import numpy as np
import pytest

from sparse_al_plugin.metrics import confusion, scores, scores_for
from tests.fixtures import write_raster


def halves(size: int, axis: int) -> np.ndarray:
    """0 in the first half along ``axis`` (0: top rows, 1: left columns), 1 in the second."""
    a = np.zeros((size, size), np.uint8)
    if axis == 0:
        a[size // 2 :] = 1
    else:
        a[:, size // 2 :] = 1
    return a


def test_confusion_on_a_reference_of_another_resolution(tmp_path):
    prediction = write_raster(tmp_path / "p.tif", halves(64, 1))  # left 0, right 1; 1 m
    ref = 1 - halves(128, 0)  # top 1, bottom 0; 0.5 m
    ref[0:2, 0:4] = 7  # not a class: two 1 m pixels of the top-left quarter are left out
    reference = write_raster(tmp_path / "r.tif", ref, pixel=0.5)
    matrix = confusion(str(prediction), str(reference), 2)
    assert matrix.tolist() == [[1024, 1024], [1024 - 2, 1024]]  # [reference, predicted]


def test_nodata_and_pixels_outside_the_reference_are_left_out(tmp_path):
    prediction = write_raster(tmp_path / "p.tif", np.ones((64, 64), np.uint8))
    ref = np.ones((32, 64), np.uint8)  # covers only the top half
    ref[:, :16] = 9
    reference = write_raster(tmp_path / "r.tif", ref, nodata=9)
    matrix = confusion(str(prediction), str(reference), 2)
    assert matrix.tolist() == [[0, 0], [0, 32 * 48]]


def test_scores_by_hand():
    matrix = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])  # class c absent from both
    s = scores(matrix, ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(7 / 10)
    assert s["iou"] == {"a": pytest.approx(3 / 6), "b": pytest.approx(4 / 7), "c": None}
    assert s["miou"] == pytest.approx((3 / 6 + 4 / 7) / 2)
    assert s["pixels"] == 10


def test_scores_over_several_predictions(tmp_path):
    a = write_raster(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    b = write_raster(tmp_path / "b.tif", np.ones((8, 8), np.uint8), origin=(500_008.0, 4_650_000.0))
    reference = write_raster(tmp_path / "r.tif", np.zeros((8, 16), np.uint8))
    s = scores_for([str(a), str(b)], str(reference), ["x", "y"])
    assert s["accuracy"] == pytest.approx(0.5) and s["pixels"] == 128
