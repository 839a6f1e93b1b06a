"""Per-feature attributions of a LightGBM score: fast path contributions and exact TreeSHAP.

**Path contributions** (Saabas-style, what the service serves). Every node of a tree gets a
value: the data-count-weighted mean of its leaves' values, i.e. the tree's expected output
for rows that reach the node (the root's is the tree's expected value, as in TreeSHAP).
Walking from the root to a leaf, each split credits its feature with the change of value
(child − parent). These per-leaf vectors are precomputed once, when the model loads, so a
row's contributions are the sum over trees of the vectors of the leaves it lands in: one
``pred_leaf`` call (about the cost of a predict) and a sparse product, instead of exact
TreeSHAP's ~140× a predict. Contributions plus the bias (the sum of the root values) add
up to the raw margin, like TreeSHAP's.

They differ from TreeSHAP in how a path's change is shared between features (the split's
feature takes all of it; TreeSHAP averages over feature orderings), so the training
report says how often the top reasons agree (:func:`top_k_agreement`). Exact TreeSHAP
(:func:`exact_contributions`) stays for evaluation and offline explanations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp


def _leaf_paths(root: dict[str, Any]) -> tuple[float, dict[int, dict[int, float]]]:
    """The tree's root value and, per leaf index, ``{feature: contribution}`` along the
    path to it (node values: count-weighted means of their leaves' values)."""
    values: dict[int, tuple[float, int]] = {}

    def value(node: dict[str, Any]) -> tuple[float, int]:
        if "leaf_value" in node:
            out = float(node["leaf_value"]), int(node.get("leaf_count", 0))
        else:
            v_left, c_left = value(node["left_child"])
            v_right, c_right = value(node["right_child"])
            count = c_left + c_right
            mean = (
                (v_left * c_left + v_right * c_right) / count if count else 0.5 * (v_left + v_right)
            )
            out = mean, count
        values[id(node)] = out
        return out

    bias = value(root)[0]
    paths: dict[int, dict[int, float]] = {}
    stack: list[tuple[dict[str, Any], dict[int, float]]] = [(root, {})]
    while stack:
        node, path = stack.pop()
        if "leaf_value" in node:
            paths[int(node.get("leaf_index", 0))] = path
            continue
        own, feature = values[id(node)][0], int(node["split_feature"])
        for child in (node["left_child"], node["right_child"]):
            step = dict(path)
            step[feature] = step.get(feature, 0.0) + (values[id(child)][0] - own)
            stack.append((child, step))
    return bias, paths


@dataclass(frozen=True)
class PathAttribution:
    """Precomputed path contributions of every leaf of a booster.

    ``table`` is ``(total leaves, features + 1)``: row ``offsets[t] + leaf`` holds the
    contributions of tree ``t``'s leaf, its last column the tree's root value (the bias).
    """

    offsets: np.ndarray
    table: sp.csr_matrix
    n_features: int
    #: ``k`` of a ``binary sigmoid:k`` objective (probability = 1 / (1 + exp(-k·margin)));
    #: None for any other objective
    sigmoid_scale: float | None = None

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> PathAttribution:
        dump = booster.dump_model()
        n_features = int(dump["max_feature_idx"]) + 1
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        offsets = []
        offset = 0
        for tree in dump["tree_info"]:
            bias, leaves = _leaf_paths(tree["tree_structure"])
            offsets.append(offset)
            for leaf, contrib in leaves.items():
                for feature, c in contrib.items():
                    rows.append(offset + leaf)
                    cols.append(feature)
                    vals.append(c)
                rows.append(offset + leaf)
                cols.append(n_features)
                vals.append(bias)
            offset += int(tree.get("num_leaves", len(leaves)))
        table = sp.csr_matrix(
            (np.asarray(vals), (np.asarray(rows), np.asarray(cols))),
            shape=(offset, n_features + 1),
        )
        table.sum_duplicates()
        objective = re.fullmatch(r"binary sigmoid:([0-9.eE+-]+)", str(dump.get("objective", "")))
        scale = float(objective[1]) if objective else None
        return cls(np.asarray(offsets, dtype=np.int64), table, n_features, scale)

    def from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """``(rows, features + 1)`` contributions (last column: bias) from the
        ``(rows, trees)`` leaf indices of ``Booster.predict(X, pred_leaf=True)``."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        n_rows, n_trees = leaves.shape
        hits = sp.csr_matrix(
            (
                np.ones(n_rows * n_trees),
                (leaves + self.offsets[:n_trees]).ravel(),
                np.arange(0, n_rows * n_trees + 1, n_trees),
            ),
            shape=(n_rows, self.table.shape[0]),
        )
        return np.asarray((hits @ self.table).toarray())

    def contributions(self, booster: lgb.Booster, matrix: np.ndarray) -> np.ndarray:
        """Path contributions of each row of ``matrix``, in log-odds, shaped like
        ``pred_contrib`` (last column: bias); each row sums to the raw margin."""
        leaves = booster.predict(matrix, pred_leaf=True, num_threads=1)
        return self.from_leaves(np.asarray(leaves))


def exact_contributions(booster: lgb.Booster, matrix: np.ndarray) -> np.ndarray:
    """LightGBM's exact TreeSHAP (``pred_contrib=True``): ~140× a predict, for evaluation
    and offline explanations, not the request path."""
    return np.asarray(booster.predict(matrix, pred_contrib=True), dtype=np.float64)


def top_k_agreement(fast: np.ndarray, exact: np.ndarray, k: int = 5) -> dict[str, float]:
    """How far two attributions agree on the features a reader sees first, ranked by
    absolute contribution (bias column excluded): ``top1`` — share of rows with the same
    first feature; ``topk`` — mean share of exact's top ``k`` features that the fast top
    ``k`` also lists; ``sign`` — share of those common features with the same sign."""
    n_features = exact.shape[1] - 1
    k = min(k, n_features)
    f, e = fast[:, :n_features], exact[:, :n_features]
    f_top = np.argsort(-np.abs(f), axis=1, kind="stable")[:, :k]
    e_top = np.argsort(-np.abs(e), axis=1, kind="stable")[:, :k]
    common = [np.intersect1d(a, b) for a, b in zip(f_top, e_top, strict=True)]
    overlap = np.array([len(c) / k for c in common])
    same_sign = [np.sign(f[i, c]) == np.sign(e[i, c]) for i, c in enumerate(common) if len(c)]
    signs = np.concatenate(same_sign) if same_sign else np.array([])
    return {
        "top1": float(np.mean(f_top[:, 0] == e_top[:, 0])) if len(f) else float("nan"),
        f"top{k}": float(np.mean(overlap)) if len(f) else float("nan"),
        "sign": float(np.mean(signs)) if len(signs) else float("nan"),
    }
