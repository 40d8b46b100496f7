import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.natural_breaks import two_class_breaks


def test_hand_computed_split():
    # sorted 1, 2, 4, 10, 12. Within-group sums of squares per split (by hand):
    # {1}|{2,4,10,12}: 0 + 68; {1,2}|{4,10,12}: 0.5 + 34.67; {1,2,4}|{10,12}: 14/3 + 2; {1,2,4,10}|{12}: 48.75 + 0
    split = two_class_breaks(np.array([4, 1, 10, 2, 12]))
    assert split.threshold == 4
    assert split.high.tolist() == [False, False, True, False, True]
    assert split.within_ss == pytest.approx(20 / 3)


def test_largest_gap_is_not_always_the_break():
    # gaps: 0 -> 10 is the largest (10); yet {0}|{10..18} (60) beats {0,10}|{11..18} (50 + 42 = 92).
    values = np.array([0, 10, 11, 12, 13, 14, 15, 16, 17, 18])
    assert two_class_breaks(values).high.sum() == 9
    # the biggest gap (10 -> 14) loses here: {0,3..10}|{14,15} costs 79.56 + 0.5, while
    # {0,3..8}|{9,10,14,15} costs (199 - 33**2 / 7) + 26 = 69.43
    split = two_class_breaks(np.array([0, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15]))
    assert split.threshold == 8
    assert split.within_ss == pytest.approx(199 - 33**2 / 7 + 26)


def test_constant_values_have_no_high_group():
    assert not two_class_breaks(np.full(7, 0.3)).high.any()
    assert not two_class_breaks(np.array([0.5])).high.any()
    assert two_class_breaks(np.array([])).high.size == 0


def test_equal_values_stay_together():
    split = two_class_breaks(np.array([0, 0, 0, 1, 1, 1, 1, 5]))
    values = np.array([0, 0, 0, 1, 1, 1, 1, 5])
    for v in np.unique(values):
        assert len(set(split.high[values == v].tolist())) == 1


def _brute_force(values: np.ndarray) -> float:
    best = np.inf
    for k in range(1, len(values)):
        for low in itertools.combinations(range(len(values)), k):
            mask = np.zeros(len(values), bool)
            mask[list(low)] = True
            a, b = values[mask], values[~mask]
            best = min(best, ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum())
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=2, max_size=8))
def test_matches_brute_force_over_all_partitions(items):
    values = np.array(items, float)
    split = two_class_breaks(values)
    if np.all(values == values[0]):
        assert not split.high.any()
        return
    assert split.within_ss == pytest.approx(_brute_force(values), abs=1e-9)
    low, high = values[~split.high], values[split.high]
    assert low.size and high.size and low.max() < high.min()
