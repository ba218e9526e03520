"""Collaborative filtering on implicit feedback: EASE (Steck 2019, closed form) plus popularity.

EASE learns an item-item weight matrix B = argmin ||X - XB||^2 + lam ||B||^2 with diag(B) = 0:
P = (X^T X + lam I)^-1, B = -P / diag(P) off the diagonal. It runs over items with at least
`min_support` training users (the rest can only be reached by popularity or metadata), which keeps the
inversion small on MovieLens. Users with no history get popularity and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class CFScores:
    scores: np.ndarray  # (n_items,) higher is better; seen items are -inf
    fallback: str | None  # "popularity" when the user had no usable history


class EASE:
    def __init__(self, lam: float = 200.0, min_support: int = 2):
        self.lam = lam
        self.min_support = min_support
        self.weights: np.ndarray | None = None
        self.support: np.ndarray | None = None
        self.popularity: np.ndarray | None = None
        self.n_users = 0

    def fit(self, train: sparse.csr_matrix) -> "EASE":
        counts = np.asarray(train.sum(0)).ravel()
        self.popularity = counts.astype(np.float64)
        self.n_users = train.shape[0]
        self.support = np.flatnonzero(counts >= self.min_support)
        x = train[:, self.support]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        inv = np.linalg.inv(gram)
        weights = -inv / np.diag(inv)
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)
        return self

    def neighbours(self, item: int, n: int) -> np.ndarray:
        """Items most strongly linked to `item` by the EASE weights (empty if `item` is unsupported)."""
        pos = np.searchsorted(self.support, item)
        if pos >= len(self.support) or self.support[pos] != item:
            return np.zeros(0, dtype=np.int64)
        row = self.weights[pos]
        top = np.argsort(-row)[:n]
        return self.support[top[row[top] > 0]]

    def popularity_scores(self, seen: np.ndarray) -> np.ndarray:
        scores = self.popularity.copy()
        scores[seen] = -np.inf
        return scores

    def score(self, history: np.ndarray | list[int]) -> CFScores:
        """Scores for every item given the user's positive item indices."""
        history = np.asarray(history, dtype=np.int64)
        n_items = len(self.popularity)
        in_support = np.isin(self.support, history)
        if not in_support.any():
            return CFScores(self.popularity_scores(history), "popularity")
        scores = np.full(n_items, 0.0)
        scores[self.support] = self.weights[in_support].sum(0)
        # A tiny popularity term orders the items EASE cannot reach instead of leaving them tied at 0.
        scores += 1e-6 * self.popularity / max(self.popularity.max(), 1.0)
        scores[history] = -np.inf
        return CFScores(scores, None)

    def self_information(self) -> np.ndarray:
        """-log2 of the share of training users who interacted with each item (unseen items: max)."""
        share = (self.popularity + 1.0) / (self.n_users + 1.0)
        return -np.log2(share)
