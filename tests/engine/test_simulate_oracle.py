import numpy as np

from engine.oracle import answer, answer_regions, error_clicks, labelled_mask, merge, points_per_class
from engine.points import PixelLabels


def _reference():
    ref = np.zeros((40, 40), np.uint8)
    ref[:, 20:] = 1
    ref[30:, :10] = 2
    return ref


def test_error_clicks_land_on_wrong_pixels_k_per_class():
    ref = _reference()
    predicted = np.zeros_like(ref)  # class 0 all right, classes 1 and 2 all wrong
    predicted[:, 35:] = 1  # part of class 1 right
    valid = np.ones(ref.shape, bool)
    clicks = error_clicks(predicted, ref, valid, 3, k=4, rng=np.random.default_rng(0))
    assert np.bincount(clicks.classes, minlength=3).tolist() == [0, 4, 4]
    assert np.all(predicted[clicks.rows, clicks.cols] != ref[clicks.rows, clicks.cols])
    assert np.array_equal(clicks.classes, ref[clicks.rows, clicks.cols])


def test_error_clicks_are_reproducible_and_never_repeat_labelled_pixels():
    ref = _reference()
    predicted = np.zeros_like(ref)
    valid = np.ones(ref.shape, bool)
    labelled = np.zeros(ref.shape, bool)
    labelled[:, 20:30] = True
    a = error_clicks(predicted, ref, valid, 3, 5, np.random.default_rng(7), labelled)
    b = error_clicks(predicted, ref, valid, 3, 5, np.random.default_rng(7), labelled)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)
    assert not labelled[a.rows, a.cols].any()


def test_no_errors_no_clicks_and_ignored_pixels_skipped():
    ref = _reference()
    valid = ref != 2  # pretend class 2's pixels are an ignore value
    clicks = error_clicks(ref.copy(), ref, valid, 3, 5, np.random.default_rng(0))
    assert len(clicks) == 0
    seeds = points_per_class(ref, valid, 3, 2, np.random.default_rng(0))
    assert np.bincount(seeds.classes, minlength=3).tolist() == [2, 2, 0]


def test_answer_and_regions_label_from_the_reference():
    ref = _reference()
    valid = np.ones(ref.shape, bool)
    labelled = labelled_mask(PixelLabels(np.array([0]), np.array([25]), np.array([1])), ref.shape)
    got = answer(np.array([0, 0, 35, 35]), np.array([25, 5, 5, 5]), ref, valid, labelled)
    assert list(zip(got.rows, got.cols, got.classes, strict=True)) == [(0, 5, 0), (35, 5, 2)]
    segments = np.zeros(ref.shape, np.int32)
    segments[:10, :10], segments[30:, :10] = 1, 2
    region = answer_regions(segments, np.array([2]), ref, valid)
    assert len(region) == 100 and set(region.classes.tolist()) == {2}
    assert len(merge(got, region)) == 102
