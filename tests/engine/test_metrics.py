import numpy as np
import pytest

from engine.metrics import confusion_matrix, iou_per_class, mean_iou, overall_accuracy


def test_confusion_matrix_and_iou_by_hand():
    reference = np.array([[0, 0, 1], [1, 2, 2]])
    predicted = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(predicted, reference, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1, fn 0 -> 2/3; class 2: tp 1, fn 1 -> 1/2
    assert iou_per_class(cm) == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert overall_accuracy(cm) == pytest.approx(4 / 6)


def test_ignored_and_invalid_pixels_do_not_count():
    reference = np.array([0, 255, 1, 1])
    predicted = np.array([0, 1, 0, 1])
    valid = np.array([True, True, True, False])
    cm = confusion_matrix(predicted, reference, 2, valid)
    assert cm.tolist() == [[1, 0], [1, 0]]


def test_absent_class_is_nan_and_left_out_of_the_mean():
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)
    ious = iou_per_class(cm)
    assert np.isnan(ious[2]) and ious[:2].tolist() == [1.0, 1.0]
    assert mean_iou(cm) == 1.0


def test_predicted_class_out_of_range_is_an_error():
    with pytest.raises(ValueError):
        confusion_matrix(np.array([3]), np.array([0]), 2)
