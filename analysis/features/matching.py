"""Scores of a set of found directions against a set of true directions.

Numpy and scipy only (no JAX), shared by the dictionary methods (SAEs, transcoders) and
anything else that returns directions:

* ``abs_cosines(found, true)``: the ``|cos|`` matrix between found and true directions;
* ``match(cos)``: a one-to-one matching that maximises the summed ``|cos|`` (the Hungarian
  algorithm, ``scipy.optimize.linear_sum_assignment``);
* ``mcc(cos)``: the mean ``|cos|`` over that matching (SynthSAEBench's MCC: 1.0 iff every
  true direction has its own found direction pointing the same way);
* ``mean_max_cos(cos)``: for each true direction the best ``|cos|`` of any found one
  (several true directions may pick the same found one), averaged;
* ``f1(active, labels)``: per-feature F1 of binary activity against binary labels;
* ``subspace_overlap(a, b)``: ``||P_a P_b||_F^2 / k_a``, the share of span(a) that lies in
  span(b) (1.0 iff span(a) is inside span(b)).

Directions are the columns of ``d x n`` matrices (any scale; zero columns score 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def _unit_columns(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    if m.ndim != 2:
        raise ValueError(f"directions are the columns of a d x n matrix, got shape {m.shape}")
    norms = np.linalg.norm(m, axis=0, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


def abs_cosines(found: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``[n_true, n_found]``: ``|cos|`` between each true and each found direction (columns
    of ``d x n`` matrices with the same ``d``)."""
    f, t = _unit_columns(found), _unit_columns(true)
    if f.shape[0] != t.shape[0]:
        raise ValueError(f"found directions live in {f.shape[0]} dimensions, true ones in "
                         f"{t.shape[0]}: score them at the same site")
    return np.abs(t.T @ f)


@dataclass(frozen=True)
class Matching:
    """A one-to-one matching of true directions (rows) to found ones (columns)."""

    true: tuple[int, ...]  # matched true indices (every one if there are enough found)
    found: tuple[int, ...]  # the found direction matched to each
    cos: tuple[float, ...]  # their |cos|

    def of(self, true_index: int) -> int | None:
        """The found direction matched to ``true_index`` (None if unmatched)."""
        for t, f in zip(self.true, self.found):
            if t == true_index:
                return f
        return None


def match(cos: np.ndarray) -> Matching:
    """The one-to-one matching maximising the summed ``|cos|`` (``[n_true, n_found]``)."""
    cos = np.asarray(cos, np.float64)
    if cos.size == 0:
        return Matching((), (), ())
    rows, cols = linear_sum_assignment(cos, maximize=True)
    return Matching(tuple(int(r) for r in rows), tuple(int(c) for c in cols),
                    tuple(float(cos[r, c]) for r, c in zip(rows, cols)))


def mcc(cos: np.ndarray) -> float:
    """Mean ``|cos|`` over the Hungarian matching, divided by the number of *true*
    directions (a true direction left unmatched, for want of found ones, counts 0)."""
    cos = np.asarray(cos, np.float64)
    if cos.shape[0] == 0:
        return float("nan")
    return float(sum(match(cos).cos) / cos.shape[0])


def mean_max_cos(cos: np.ndarray) -> float:
    """For each true direction the largest ``|cos|`` of any found one, averaged."""
    cos = np.asarray(cos, np.float64)
    if cos.shape[0] == 0:
        return float("nan")
    if cos.shape[1] == 0:
        return 0.0
    return float(cos.max(axis=1).mean())


def f1(active: np.ndarray, labels: np.ndarray) -> float:
    """F1 of a binary prediction against binary labels (both ``[N]``); 1.0 when both are
    all False (nothing to find, nothing found)."""
    active, labels = np.asarray(active, bool), np.asarray(labels, bool)
    tp = int((active & labels).sum())
    fp = int((active & ~labels).sum())
    fn = int((~active & labels).sum())
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


def orthonormal_basis(m: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """An orthonormal basis (``d x r``) of the column span of ``m`` (SVD; rank-revealing,
    so dependent columns are fine)."""
    m = np.asarray(m, np.float64)
    if m.size == 0 or m.shape[1] == 0:
        return np.zeros((m.shape[0], 0))
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    keep = s > tol * max(s.max(), 1e-300)
    return u[:, keep]


def subspace_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """``||P_a P_b||_F^2 / dim span(a)``: how much of span(``a``) lies in span(``b``)
    (1.0: inside; ``dim b / d`` on average for a random ``a``)."""
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    if qa.shape[0] != qb.shape[0]:
        raise ValueError(f"subspaces of {qa.shape[0]} and {qb.shape[0]} dimensions: compare "
                         "them at the same site")
    if qa.shape[1] == 0:
        return float("nan")
    return float(np.sum((qa.T @ qb) ** 2) / qa.shape[1])


__all__ = ["abs_cosines", "Matching", "match", "mcc", "mean_max_cos", "f1",
           "orthonormal_basis", "subspace_overlap"]
