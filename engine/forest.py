"""The random-forest baseline (the ilastik recipe): 100 trees on multiscale intensity, edge and texture features of
each band, fit on the labelled pixels.

The fitted forest is stored without pickle: each scikit-learn tree's arrays (children, split feature, threshold,
leaf class probabilities) are concatenated into weights.safetensors. Prediction rebuilds scikit-learn's compiled
trees from those arrays (engine/forest_compiled.py), or where that fails traverses all trees at once in numpy, one
depth step at a time. A model directory holds config.json (``"kind": "random_forest"``, the
feature settings under ``"features"``) and weights.safetensors, like a network's (CONTRACT.md).
"""

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from engine import cancel
from engine.atomic import atomic_dir
from engine.classes import ClassInfo
from engine.errors import InputError, InputFileError
from engine.events import Events
from engine.features import FeatureSettings, compute_features, tiles
from engine.forest_compiled import compiled_trees, leaf_sums
from engine.models import ModelConfig, load_config
from engine.normalization import Normalization, compute_normalization
from engine.points import PixelLabels
from engine.raster_io import fill_invalid, open_raster, read_window

KIND = "random_forest"
FORMAT = "sparse_al_random_forest_v1"
TRAVERSAL_ENTRIES = 500_000  # numpy traversal: (tree, pixel) pairs descending together (memory, cache)
COMPILED_CHUNK = 65_536  # compiled trees: pixels whose leaves are summed together (memory per thread)


@dataclass
class ForestOptions:
    trees: int = 100
    max_depth: int | None = None
    min_samples_leaf: int = 1
    features: FeatureSettings = field(default_factory=FeatureSettings)
    seed: int = 0
    n_jobs: int = 2  # threads for fitting and for the features
    tile: int = 512  # core side of the blocks whose features are computed at once (plus the margin)
    trees_per_step: int = 10  # trees fitted between progress events and cancel checks


@dataclass
class ForestModel:
    """A fitted forest as flat arrays. Trees are concatenated: tree t owns nodes offsets[t]..offsets[t+1]-1, and
    its children indexes are local to it (scikit-learn's layout: -1 marks a leaf). ``value`` holds each node's
    class probabilities over all the model's classes (0 for classes the forest never saw)."""

    offsets: np.ndarray  # int64, trees + 1
    children_left: np.ndarray  # int32, nodes
    children_right: np.ndarray  # int32, nodes
    feature: np.ndarray  # int32, nodes (negative at leaves)
    threshold: np.ndarray  # float64, nodes: go left when feature value <= threshold
    value: np.ndarray  # float32, nodes x classes
    n_features: int

    ARRAYS = ("offsets", "children_left", "children_right", "feature", "threshold", "value")

    @property
    def n_trees(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_classes(self) -> int:
        return self.value.shape[1]

    @property
    def n_nodes(self) -> int:
        return len(self.children_left)

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(getattr(self, name)) for name in self.ARRAYS}

    def check(self) -> None:
        """Raise ValueError unless the arrays form valid trees (a damaged or foreign file)."""
        n = self.n_nodes
        if self.offsets.ndim != 1 or len(self.offsets) < 2 or self.offsets[0] != 0 or self.offsets[-1] != n:
            raise ValueError("tree offsets do not cover the nodes")
        if np.any(np.diff(self.offsets) < 1):
            raise ValueError("a tree has no nodes")
        for name in ("children_right", "feature", "threshold"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has {getattr(self, name).shape} entries, not {n}")
        if self.value.ndim != 2 or self.value.shape[0] != n:
            raise ValueError(f"value has shape {self.value.shape}, not ({n}, classes)")
        size = np.repeat(np.diff(self.offsets), np.diff(self.offsets))
        leaf = self.children_left < 0
        if np.any(leaf != (self.children_right < 0)):
            raise ValueError("a node has exactly one child")
        local = np.arange(n) - np.repeat(self.offsets[:-1], np.diff(self.offsets))
        for children in (self.children_left, self.children_right):
            if np.any(~leaf & ((children <= local) | (children >= size))):
                raise ValueError("a child index points outside its tree or backwards")
        if np.any(~leaf & ((self.feature < 0) | (self.feature >= self.n_features))):
            raise ValueError(f"a split uses a feature outside 0..{self.n_features - 1}")

    @cached_property
    def _leaf_entropy(self) -> np.ndarray:
        """Each node's entropy of its class probabilities (used at leaves, for BALD)."""
        return _entropy(self.value.astype(np.float64))

    @cached_property
    def compiled(self) -> list | None:
        """The trees as scikit-learn Tree objects for :func:`predict_proba`, or None (then the numpy traversal)."""
        return compiled_trees(self.offsets, self.children_left, self.children_right, self.feature, self.threshold,
                              self.n_features, self.n_classes)  # fmt: skip

    @cached_property
    def _traversal(self) -> tuple[np.ndarray, ...]:
        """Children as one array (node n's right child at 2n, left child at 2n + 1, global indexes; a leaf is its
        own child), split features (0 at leaves), float32 thresholds, the leaf mask and the roots."""
        start = np.repeat(self.offsets[:-1], np.diff(self.offsets))
        leaf = self.children_left < 0
        nodes = np.arange(self.n_nodes, dtype=np.int64)
        left = np.where(leaf, nodes, self.children_left + start)
        right = np.where(leaf, nodes, self.children_right + start)
        children = np.stack([right, left], axis=1).ravel()
        feature = np.where(leaf, 0, self.feature).astype(np.int64)
        return children, feature, float32_at_most(self.threshold), leaf, self.offsets[:-1].astype(np.int64)


def float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at most each float64 threshold: for a float32 x, ``x <= t32`` exactly when
    ``x <= threshold`` (scikit-learn compares float32 features with float64 thresholds)."""
    t32 = threshold.astype(np.float32)
    over = t32.astype(np.float64) > threshold
    t32[over] = np.nextafter(t32[over], np.float32(-np.inf))
    return t32


def predict_proba(model: ForestModel, features: np.ndarray, bald: bool = False, workers: int = 1):
    """Class probabilities (N x C float32) of N x F float32 features: the mean over trees of each leaf's class
    probabilities, as scikit-learn's predict_proba. Leaves are found by scikit-learn's compiled trees, split over
    ``workers`` threads (engine/forest_compiled.py), or where those cannot be rebuilt by the numpy traversal.

    With ``bald``, returns (probabilities, BALD): the trees play the role of MC dropout's samples, so BALD is the
    entropy of the mean minus the mean of the trees' entropies, divided by log C (in [0, 1])."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != model.n_features:
        raise ValueError(f"features of shape {features.shape}; the forest needs N x {model.n_features}")
    out = np.empty((features.shape[0], model.n_classes), np.float32)
    mutual = np.zeros(features.shape[0], np.float32) if bald else None
    trees = model.compiled
    chunk = COMPILED_CHUNK if trees is not None else max(1, TRAVERSAL_ENTRIES // model.n_trees)
    for start in range(0, features.shape[0], chunk):
        block = features[start : start + chunk]
        if trees is not None:
            total, entropy = leaf_sums(trees, model.offsets, model.value, model._leaf_entropy, block, workers, bald)
        else:
            total, entropy = _numpy_leaf_sums(model, block, bald)
        mean = total / model.n_trees
        out[start : start + len(block)] = mean
        if mutual is not None:
            tree_entropy = entropy / model.n_trees
            mutual[start : start + len(block)] = np.clip((_entropy(mean) - tree_entropy) / _log_classes(model), 0, 1)
    return (out, mutual) if bald else out


def _numpy_leaf_sums(model: ForestModel, block: np.ndarray, bald: bool):
    """What forest_compiled.leaf_sums returns, from the numpy traversal."""
    reached = _leaves(model, block).reshape(model.n_trees, len(block))
    total = np.zeros((len(block), model.n_classes), np.float64)
    for leaves in reached:
        total += model.value[leaves]
    return total, (model._leaf_entropy[reached].sum(axis=0) if bald else None)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def _log_classes(model: ForestModel) -> float:
    return float(np.log(model.n_classes)) if model.n_classes > 1 else 1.0


def _leaves(model: ForestModel, block: np.ndarray) -> np.ndarray:
    """The leaf each (tree, pixel) pair reaches, tree-major (T * n)."""
    children, feature, threshold, leaf, roots = model._traversal
    n, flat = block.shape[0], block.ravel()
    node = np.repeat(roots, n)
    base = np.tile(np.arange(n, dtype=np.int64) * model.n_features, model.n_trees)  # each pair's pixel row in flat
    slot = None  # each active pair's index in the output, once pairs have dropped out
    reached = np.empty(node.size, np.int64)
    step = 0
    while True:
        if step % 2 == 0:
            done = leaf[node]
            count = np.count_nonzero(done)
            if count == node.size:
                if slot is None:
                    return node
                reached[slot] = node
                return reached
            if count > node.size // 4:
                index = np.arange(node.size, dtype=np.int64) if slot is None else slot
                reached[index[done]] = node[done]
                keep = ~done
                node, base, slot = node[keep], base[keep], index[keep]
        go_left = flat[base + feature[node]] <= threshold[node]
        node = children[2 * node + go_left]
        step += 1


def from_sklearn(forest, n_classes: int) -> ForestModel:
    """Flat arrays of a fitted sklearn RandomForestClassifier whose labels are class indexes 0..n_classes-1."""
    seen = np.asarray(forest.classes_, dtype=np.int64)
    trees = [est.tree_ for est in forest.estimators_]
    offsets = np.concatenate([[0], np.cumsum([t.node_count for t in trees])]).astype(np.int64)
    value = np.zeros((int(offsets[-1]), n_classes), np.float32)
    for t, start in zip(trees, offsets[:-1], strict=True):
        counts = t.value[:, 0, :]
        norm = counts.sum(axis=1, keepdims=True)
        norm[norm == 0] = 1.0
        value[start : start + t.node_count][:, seen] = counts / norm
    return ForestModel(
        offsets=offsets,
        children_left=np.concatenate([t.children_left for t in trees]).astype(np.int32),
        children_right=np.concatenate([t.children_right for t in trees]).astype(np.int32),
        feature=np.concatenate([t.feature for t in trees]).astype(np.int32),
        threshold=np.concatenate([t.threshold for t in trees]).astype(np.float64),
        value=value,
        n_features=int(forest.n_features_in_),
    )


def fit_forest(features: np.ndarray, targets: np.ndarray, options: ForestOptions, events: Events | None = None,
               weights: np.ndarray | None = None):  # fmt: skip
    """Fit an sklearn RandomForestClassifier in steps of ``trees_per_step`` trees (warm start: the same forest as
    one fit with the same seed), reporting progress and checking for a cancel between steps. ``weights``: one per
    sample (None: all 1)."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(
        n_estimators=0, max_depth=options.max_depth, min_samples_leaf=options.min_samples_leaf,
        n_jobs=options.n_jobs, random_state=options.seed, warm_start=True,
    )  # fmt: skip
    grown = 0
    while grown < options.trees:
        cancel.check()
        grown = min(options.trees, grown + max(1, options.trees_per_step))
        forest.set_params(n_estimators=grown)
        forest.fit(features, targets, sample_weight=weights)
        if events is not None:
            events.progress("fit", grown, options.trees)
    return forest


def labelled_features(
    path: Path, labels: PixelLabels, bands: list[int], normalization: Normalization, options: ForestOptions,
    events: Events | None = None,
) -> np.ndarray:  # fmt: skip
    """Features (N x F float32) of a raster's labelled pixels, in the labels' order. Only the tiles holding labels
    are read, each with the features' margin, so a large raster is never held whole."""
    settings = options.features
    out = np.empty((len(labels), settings.n_features(len(bands))), np.float32)
    with open_raster(path) as ds:
        if len(labels) and (labels.rows.min() < 0 or labels.rows.max() >= ds.height
                            or labels.cols.min() < 0 or labels.cols.max() >= ds.width):  # fmt: skip
            raise InputError(f"--points: labelled pixels fall outside {path} ({ds.height} x {ds.width})", "points")
        blocks = [t for t in tiles(ds.height, ds.width, options.tile, settings.margin)
                  if _inside(labels, t).any()]  # fmt: skip
        for done, tile in enumerate(blocks, 1):
            cancel.check()
            take = np.flatnonzero(_inside(labels, tile))
            data, valid = read_window(ds, bands, tile.pad_row0, tile.pad_col0, *tile.pad_shape)
            feats = compute_features(normalization.apply(data, valid), settings, options.n_jobs)
            out[take] = feats[labels.rows[take] - tile.pad_row0, labels.cols[take] - tile.pad_col0]
            if events is not None:
                events.progress("features", done, len(blocks))
    return out


def _inside(labels: PixelLabels, tile) -> np.ndarray:
    rows, cols = labels.rows, labels.cols
    return (rows >= tile.row0) & (rows < tile.row1) & (cols >= tile.col0) & (cols < tile.col1)


def train_forest(
    rasters: list[Path], labels: list[PixelLabels], bands: list[int], classes: list[ClassInfo],
    options: ForestOptions, events: Events, normalization: Normalization | None = None,
) -> tuple[ForestModel, ModelConfig]:  # fmt: skip
    """Fit the forest on the labelled pixels of ``rasters`` (one PixelLabels per raster, each pixel weighted by its
    label's weight: spread labels below clicks); features of the rasters normalised with ``normalization`` (default:
    computed from the rasters)."""
    if len(rasters) != len(labels):
        raise ValueError(f"{len(rasters)} rasters but {len(labels)} label sets")
    if options.trees < 1:
        raise InputError(f"--trees: {options.trees} must be at least 1", "trees")
    targets = np.concatenate([lab.classes for lab in labels]) if labels else np.zeros(0, np.int64)
    if targets.size == 0:
        raise InputError("--points: no labelled pixel to train on; click some points of each class first", "points")
    if targets.min() < 0 or targets.max() >= len(classes):
        raise InputError(f"--points: class indexes must lie in 0..{len(classes) - 1}", "points")
    start = time.monotonic()
    normalization = normalization or compute_normalization(rasters, bands)
    features = np.concatenate([
        labelled_features(path, lab, bands, normalization, options, events)
        for path, lab in zip(rasters, labels, strict=True) if len(lab)
    ])  # fmt: skip
    weights = np.concatenate([lab.weight_array() for lab in labels])
    forest = fit_forest(features, targets, options, events, None if (weights == 1).all() else weights)
    model = from_sklearn(forest, len(classes))
    config = ModelConfig(
        arch="RandomForest", encoder="multiscale_basic_features", in_channels=len(bands), bands=list(bands),
        normalization=normalization, classes=list(classes), patch_size=options.tile, kind=KIND,
        features=options.features.to_dict(),
        trained={
            "trees": options.trees, "max_depth": options.max_depth, "min_samples_leaf": options.min_samples_leaf,
            "seed": options.seed, "iterations": 1, "points": int((weights >= 1).sum()), "pixels": int(targets.size),
            "classes_seen": sorted(int(c) for c in np.unique(targets)), "nodes": model.n_nodes,
            "seconds": round(time.monotonic() - start, 2),
        },
    )  # fmt: skip
    return model, config


def save_forest(directory: Path, model: ForestModel, config: ModelConfig) -> None:
    """Write the model directory atomically: config.json and weights.safetensors (no pickle)."""
    with atomic_dir(Path(directory)) as tmp:
        write_forest(tmp, model, config)


def write_forest(directory: Path, model: ForestModel, config: ModelConfig) -> None:
    """Write config.json and weights.safetensors into ``directory`` (created; not atomic: see save_forest)."""
    if config.kind != KIND:
        raise ValueError(f"config kind {config.kind!r} is not {KIND!r}")
    model.check()
    metadata = {"format": FORMAT, "n_features": str(model.n_features), "n_classes": str(model.n_classes)}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(model.tensors(), str(directory / "weights.safetensors"), metadata=metadata)
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2))


def load_forest(directory: Path, field_name: str = "model") -> tuple[ForestModel, ModelConfig]:
    """Read a random-forest model directory (safetensors only: nothing is unpickled)."""
    directory = Path(directory)
    config = load_config(directory, field_name)
    if config.kind != KIND:
        raise InputError(f"--{field_name}: {directory} holds a {config.kind!r} model, not a random forest", field_name)
    weights = directory / "weights.safetensors"
    try:
        settings = FeatureSettings.from_dict(config.features)
        tensors = load_file(str(weights))
        model = ForestModel(
            offsets=tensors["offsets"].astype(np.int64),
            children_left=tensors["children_left"].astype(np.int32),
            children_right=tensors["children_right"].astype(np.int32),
            feature=tensors["feature"].astype(np.int32),
            threshold=tensors["threshold"].astype(np.float64),
            value=tensors["value"].astype(np.float32),
            n_features=settings.n_features(len(config.bands)),
        )
        model.check()
    except (OSError, SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(f"--{field_name}: {weights} is not a readable random forest ({exc}); "
                             f"the model directory is damaged, train it again", field_name) from exc  # fmt: skip
    if model.n_classes != len(config.classes):
        raise InputFileError(f"--{field_name}: {weights} has {model.n_classes} classes but config.json lists "
                             f"{len(config.classes)}; the model directory is damaged", field_name)  # fmt: skip
    return model, config


def forest_probabilities(
    model: ForestModel, config: ModelConfig, image: np.ndarray, valid: np.ndarray | None = None,
    tile: int | None = None, workers: int = 2, events: Events | None = None, bald: bool = False,
):  # fmt: skip
    """Class probabilities (float32 C x H x W) of a raw bands x H x W image (the model's bands, in order); with
    ``bald``, (probabilities, BALD H x W) as :func:`predict_proba`.

    The image is normalised with the model's statistics, then processed by tiles with the features' margin, so
    memory stays bounded by the tile size and the result equals the features of the whole image. Invalid pixels
    get probability 0 for every class (and BALD 0).
    """
    if image.ndim != 3 or image.shape[0] != len(config.bands):
        raise ValueError(f"image of shape {image.shape}; the model reads {len(config.bands)} bands x H x W")
    _, height, width = image.shape
    valid = np.ones((height, width), bool) if valid is None else np.asarray(valid, bool)
    normalised = config.normalization.apply(image.astype(np.float32, copy=False), valid)
    settings = FeatureSettings.from_dict(config.features)
    out = np.zeros((model.n_classes, height, width), np.float32)
    mutual = np.zeros((height, width), np.float32) if bald else None
    blocks = list(tiles(height, width, tile or config.patch_size, settings.margin))
    for done, block in enumerate(blocks, 1):
        cancel.check()
        core = (slice(block.row0, block.row1), slice(block.col0, block.col1))
        pad = (slice(block.pad_row0, block.pad_row1), slice(block.pad_col0, block.pad_col1))
        predict_block(model, settings, normalised[(slice(None), *pad)], valid[pad], block.core_in_pad, valid[core],
                      out[(slice(None), *core)],
                       None if mutual is None else mutual[core], workers)  # fmt: skip
        if events is not None:
            events.progress("predict", done, len(blocks))
    return (out, mutual) if bald else out


def predict_block(model, settings, padded, padded_valid, core_in_pad, core_valid, probs_out, bald_out,
                  workers) -> None:  # fmt: skip
    """Write the class probabilities (and BALD) of the valid pixels of a block's core into the output views."""
    if not core_valid.any():
        return
    padded = fill_invalid(padded, padded_valid)
    feats = compute_features(padded, settings, workers)[core_in_pad][core_valid]
    if bald_out is None:
        probs_out[:, core_valid] = predict_proba(model, feats, workers=workers).T
        return
    probs, mutual = predict_proba(model, feats, bald=True, workers=workers)
    probs_out[:, core_valid] = probs.T
    bald_out[core_valid] = mutual
