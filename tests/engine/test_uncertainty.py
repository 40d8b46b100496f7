import math

import numpy as np
import pytest

from engine import uncertainty


def test_entropy_by_hand():
    probs = np.array([[1.0, 0.5, 1 / 3, 0.5], [0.0, 0.5, 1 / 3, 0.5], [0.0, 0.0, 1 / 3, 0.0]], np.float32)
    h = uncertainty.entropy(probs)
    np.testing.assert_allclose(h, [0.0, math.log(2) / math.log(3), 1.0, math.log(2) / math.log(3)], atol=1e-6)


def test_entropy_two_classes_uniform_is_one():
    assert uncertainty.entropy(np.full((2, 3, 3), 0.5)) == pytest.approx(np.ones((3, 3)))


def test_margin_by_hand():
    probs = np.array([[0.7, 0.4, 1.0], [0.2, 0.4, 0.0], [0.1, 0.2, 0.0]], np.float32)
    np.testing.assert_allclose(uncertainty.margin(probs), [1 - 0.5, 1.0, 0.0], atol=1e-6)


def test_bald_by_hand():
    one_hot_split = np.array([[[1.0], [0.0]], [[0.0], [1.0]]], np.float32)  # 2 samples x 2 classes x 1 pixel
    agree = np.array([[[0.8], [0.2]], [[0.8], [0.2]]], np.float32)
    assert uncertainty.bald(one_hot_split)[0] == pytest.approx(1.0)
    assert uncertainty.bald(agree)[0] == pytest.approx(0.0, abs=1e-6)
    # samples (0.9, 0.1) and (0.5, 0.5): H(0.7, 0.3) - (H(0.9, 0.1) + ln 2) / 2, over ln 2
    mixed = np.array([[[0.9], [0.1]], [[0.5], [0.5]]], np.float32)

    def h(*p):
        return -sum(x * math.log(x) for x in p)

    expected = (h(0.7, 0.3) - (h(0.9, 0.1) + h(0.5, 0.5)) / 2) / math.log(2)
    assert uncertainty.bald(mixed)[0] == pytest.approx(expected, rel=1e-5)


def test_from_probabilities_dispatch_and_refuses_bald():
    probs = np.array([[0.6], [0.4]], np.float32)
    assert uncertainty.from_probabilities("margin", probs)[0] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="bald"):
        uncertainty.from_probabilities("bald", probs)
