"""Two-class natural breaks (Jenks): the split of a set of values into a low and a high group that minimises the
sum of squared deviations from each group's mean. Exact, O(n log n): sort, then try every split with prefix sums.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    threshold: float  # the largest value of the low group; values above it form the high group
    high: np.ndarray  # bool, one per input value (in input order)
    within_ss: float  # the minimised sum of squared deviations within the two groups


def two_class_breaks(values: np.ndarray) -> Split:
    """Split ``values`` into the two groups of least within-group variance.

    Equal values always fall in the same group. When all values are equal (or there is only one), nothing stands
    out: the high group is empty.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError("natural breaks need finite values")
    order = np.sort(values)
    n = order.size
    if n < 2 or order[0] == order[-1]:
        threshold = float(order[-1]) if n else 0.0
        return Split(threshold, np.zeros(n, bool), 0.0)
    shift = order - order.mean()  # centred, for numerically stable sums of squares
    csum, csq = np.cumsum(shift), np.cumsum(shift * shift)
    k = np.arange(1, n)  # the low group holds order[:k]
    low_ss = csq[k - 1] - csum[k - 1] ** 2 / k
    high_ss = (csq[-1] - csq[k - 1]) - (csum[-1] - csum[k - 1]) ** 2 / (n - k)
    total = low_ss + high_ss
    total[order[k - 1] == order[k]] = np.inf  # never split between equal values
    best = int(np.argmin(total))
    threshold = float(order[best])
    return Split(threshold, values > threshold, float(max(total[best], 0.0)))
