"""The forest's trees rebuilt as scikit-learn ``Tree`` objects, to find the leaf each pixel reaches with
scikit-learn's compiled ``apply`` (4 to 5 times faster than the numpy traversal on one thread, and it releases the
GIL, so the trees are split over threads).

``Tree`` and its ``__setstate__`` are scikit-learn's private API (what pickle uses): the node layout is filled field
by field from ``NODE_DTYPE``, so the layouts of scikit-learn 1.5 and later work; should a future version differ,
:func:`compiled_trees` returns None and the caller uses the numpy traversal, which gives the same leaves.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

logger = logging.getLogger(__name__)

_LEAF = -1  # scikit-learn's TREE_LEAF
_UNDEFINED = -2  # scikit-learn's feature and threshold at leaves


def compiled_trees(offsets, children_left, children_right, feature, threshold, n_features: int, n_classes: int):
    """One scikit-learn Tree per tree of the flat arrays (see ForestModel), or None where this scikit-learn cannot
    rebuild them. Leaf values are left at zero: only ``apply`` is used."""
    try:
        from sklearn.tree._tree import NODE_DTYPE, Tree

        trees = []
        for start, stop in pairwise(offsets.tolist()):
            left, right = children_left[start:stop], children_right[start:stop]
            leaf = left < 0
            nodes = np.zeros(stop - start, NODE_DTYPE)
            nodes["left_child"] = np.where(leaf, _LEAF, left)
            nodes["right_child"] = np.where(leaf, _LEAF, right)
            nodes["feature"] = np.where(leaf, _UNDEFINED, feature[start:stop])
            nodes["threshold"] = np.where(leaf, _UNDEFINED, threshold[start:stop])
            nodes["n_node_samples"] = 1
            nodes["weighted_n_node_samples"] = 1.0
            tree = Tree(n_features, np.array([n_classes], np.intp), 1)
            tree.__setstate__({
                "max_depth": _depth(left, right), "node_count": stop - start, "nodes": nodes,
                "values": np.zeros((stop - start, 1, n_classes), np.float64),
            })  # fmt: skip
            trees.append(tree)
        return trees
    except Exception as exc:  # private API: any mismatch means the numpy traversal
        logger.warning("scikit-learn's trees could not be rebuilt (%s); using the slower numpy traversal", exc)
        return None


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Depth of a tree whose children come after their parent (scikit-learn's depth-first order)."""
    depth = np.zeros(len(left), np.int64)
    for node in np.flatnonzero(left >= 0):
        depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max())


def leaf_sums(trees, offsets, value, leaf_entropy, block, workers: int, bald: bool):
    """Sum over trees of the class probabilities (n x C float64) of the leaf each pixel of a float32 n x F block
    reaches, and with ``bald`` the sum of those leaves' entropies (n), else None. Trees are split over ``workers``
    threads, each summing its share."""

    def share(indexes):
        total = np.zeros((len(block), value.shape[1]), np.float64)
        entropy = np.zeros(len(block), np.float64) if bald else None
        for t in indexes:
            leaves = trees[t].apply(block) + offsets[t]
            total += value[leaves]
            if bald:
                entropy += leaf_entropy[leaves]
        return total, entropy

    shares = np.array_split(np.arange(len(trees)), max(1, min(workers, len(trees))))
    if len(shares) == 1:
        return share(shares[0])
    with ThreadPoolExecutor(len(shares)) as pool:
        parts = list(pool.map(share, shares))
    total = sum(part[0] for part in parts)
    return total, (sum(part[1] for part in parts) if bald else None)
