"""A fitted scikit-learn random forest as arrays: every tree walked at once, one level per step.

``RandomForestClassifier.predict_proba`` calls each tree's Cython ``predict`` in turn: for one
event, 187 trees cost about 10 ms of fixed per-call work, which is what an HTTP request for one
event or a small micro-batch pays. Here the forest's nodes are laid out in flat arrays (all trees
side by side), and a batch descends one level per step for every (tree, row) pair at once:
a handful of numpy gathers per level, ``max_depth`` levels.

It reproduces the forest's own arithmetic: rows are cast to float32 before the comparisons, as
the trees' ``predict`` does; the leaves' class fractions are added tree after tree, in the
forest's order, then divided by the number of trees. A matrix with a value that is missing or
that float32 cannot hold is left to the forest's own ``predict_proba``, which decides (it
refuses an infinity with its own error). ``scoring.fastpath`` still verifies the result against
the pipeline before it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

TREE_LEAF: Final[int] = -1
"""``tree_.children_left`` of a leaf (``sklearn.tree._tree.TREE_LEAF``)."""
ROWS_PER_CHUNK: Final[int] = 256
"""Rows descended together. Small enough for the (trees x rows) work arrays to stay in the CPU
cache: with the `make train` forest (187 trees) 8 us per row at 256, 25 us at 4,096."""
FOREST_CLASSES: Final = ("RandomForestClassifier", "ExtraTreesClassifier")


@dataclass(frozen=True)
class ForestPredictor:
    """The positive-class probability of a binary scikit-learn forest, from flat node arrays.

    The nodes are renumbered so that the two children of a node sit side by side: one step is
    ``node = first_child[node] + goes_right``. A leaf is its own first child, with an infinite
    threshold, so a row that reached its leaf stays there for the remaining steps."""

    roots: IndexArray  # (trees,) each tree's root in the flat arrays
    feature: IndexArray  # (nodes,) column compared at the node (0 at a leaf)
    threshold: npt.NDArray[np.float32]  # (nodes,) go left when value <= threshold
    first_child: IndexArray  # (nodes,) the left child; the right one follows it
    positive: FloatArray  # (nodes,) the leaf's fraction of the positive class
    depth: int
    n_features: int

    @classmethod
    def of(cls, estimator: Any) -> ForestPredictor | None:
        """The predictor of a fitted binary forest classifier; None for any other estimator."""
        kind = type(estimator)
        if kind.__name__ not in FOREST_CLASSES or not kind.__module__.startswith("sklearn."):
            return None
        if getattr(estimator, "n_outputs_", None) != 1 or len(estimator.classes_) != 2:
            return None
        trees = [_flat_tree(tree.tree_) for tree in estimator.estimators_]
        offsets = np.cumsum([0] + [len(tree.feature) for tree in trees[:-1]]).astype(np.intp)
        return cls(
            roots=offsets,
            feature=np.concatenate([tree.feature for tree in trees]),
            threshold=np.concatenate([tree.threshold for tree in trees]),
            first_child=np.concatenate(
                [tree.first_child + offset for tree, offset in zip(trees, offsets, strict=True)]
            ),
            positive=np.concatenate([tree.positive for tree in trees]),
            depth=max(tree.tree_.max_depth for tree in estimator.estimators_),
            n_features=int(estimator.n_features_in_),
        )

    def predict(self, matrix: FloatArray) -> FloatArray | None:
        """``forest.predict_proba(matrix)[:, 1]``, or None when the forest itself must decide."""
        with np.errstate(over="ignore"):  # a value float32 cannot hold is found below
            rows = np.asarray(matrix, dtype=np.float32)  # the trees compare float32 values
        if not np.isfinite(rows).all():
            return None
        out = np.empty(rows.shape[0], dtype=np.float64)
        for start in range(0, rows.shape[0], ROWS_PER_CHUNK):
            chunk = rows[start : start + ROWS_PER_CHUNK]
            out[start : start + chunk.shape[0]] = self._predict_chunk(chunk)
        return out

    def _predict_chunk(self, rows: npt.NDArray[np.float32]) -> FloatArray:
        flat = np.ascontiguousarray(rows).reshape(-1)
        # node[t, r]: where row r is in tree t; its value sits at flat[r * n_features + column].
        row_start = np.arange(rows.shape[0], dtype=np.intp) * self.n_features
        node = np.repeat(self.roots[:, None], rows.shape[0], axis=1)
        for _ in range(self.depth):
            value = flat[row_start + self.feature[node]]
            node = self.first_child[node] + (value > self.threshold[node])
        # A running sum down the trees adds them one after the other, in the forest's order, as
        # it accumulates them (a plain sum may pair them up and differ in the last bit).
        total: FloatArray = np.cumsum(self.positive[node], axis=0)[-1]
        return total / len(self.roots)


@dataclass(frozen=True)
class _FlatTree:
    tree_: Any
    feature: IndexArray
    threshold: npt.NDArray[np.float32]
    first_child: IndexArray
    positive: FloatArray


def _flat_tree(tree: Any) -> _FlatTree:
    """One fitted ``tree_`` renumbered breadth first, so that siblings are adjacent."""
    n = tree.node_count
    left, right = tree.children_left, tree.children_right
    order = [0]  # old ids in their new order
    new_id = np.full(n, -1, dtype=np.intp)
    new_id[0] = 0
    for old in order:  # grows while it is walked
        if left[old] != TREE_LEAF:
            for child in (left[old], right[old]):
                new_id[child] = len(order)
                order.append(int(child))
    old_ids = np.asarray(order, dtype=np.intp)
    leaf = left[old_ids] == TREE_LEAF
    return _FlatTree(
        tree_=tree,
        feature=np.where(leaf, 0, tree.feature[old_ids]).astype(np.intp),
        threshold=np.where(leaf, np.float32(np.inf), _float32_at_most(tree.threshold[old_ids])),
        first_child=np.where(leaf, np.arange(n, dtype=np.intp), new_id[left[old_ids]]),
        # The tree's predict_proba returns value[leaf] as it is (class fractions).
        positive=np.asarray(tree.value[old_ids, 0, 1], dtype=np.float64),
    )


def _float32_at_most(threshold: FloatArray) -> npt.NDArray[np.float32]:
    """The largest float32 <= each threshold: for a float32 value v, ``v <= t`` (compared in
    float64, as the trees do) holds exactly when ``v <= _float32_at_most(t)``."""
    rounded = threshold.astype(np.float32)
    above = rounded.astype(np.float64) > threshold
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded
