"""Implicit-feedback matrices and item tag vectors built from a Catalog.

Positives are the catalog's positive interactions (ratings >= 4, or every "to-read" event). The
held-out part is each user's last 20 % of positives in time order (users with >= 5 positives only),
the same rule the upstream snapshot used, applied again inside the development data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from placecell.tools.recsys_data import Catalog, Interactions, split_by_user

MAX_PRECOMPUTED = 3000


@dataclass
class ItemSpace:
    """Item ids, tf-idf tag vectors (rows L2-normalised) and tag names, in one index order."""

    ids: list[str]
    index: dict[str, int]
    tags: list[str]
    tag_matrix: np.ndarray  # (n_items, n_tags), rows L2-normalised (0 for untagged items)
    raw_tags: np.ndarray  # (n_items, n_tags) catalog tag weights in [0, 1]
    item_sims: np.ndarray | None = None  # all pairwise similarities, precomputed for small catalogs

    def similarity_to(self, items: np.ndarray | list[int]) -> np.ndarray:
        """Cosine tag similarity of every item to each of `items`: (n_items, len(items))."""
        items = np.asarray(items, dtype=np.int64)
        if self.item_sims is not None:
            return self.item_sims[:, items]
        return self.tag_matrix @ self.tag_matrix[items].T

    def similarity_row(self, item: int) -> np.ndarray:
        if self.item_sims is not None:
            return self.item_sims[item]
        return self.tag_matrix @ self.tag_matrix[item]


@dataclass
class ImplicitSplit:
    train: sparse.csr_matrix  # (n_users, n_items) binary
    test: dict[int, list[int]]  # user row -> held-out items in time order
    users: list[str]
    user_index: dict[str, int]


def item_space(catalog: Catalog) -> ItemSpace:
    ids = sorted(catalog.items, key=lambda s: (len(s), s))
    tags = sorted({t for weights in catalog.tag_weights.values() for t in weights})
    tag_pos = {t: j for j, t in enumerate(tags)}
    raw = np.zeros((len(ids), len(tags)), dtype=np.float32)
    for i, item in enumerate(ids):
        for tag, w in catalog.tag_weights.get(item, {}).items():
            raw[i, tag_pos[tag]] = w
    # idf keeps near-universal shelves ("non-fiction" on a non-fiction catalog) from dominating similarity.
    df = (raw > 0).sum(0)
    idf = np.log((1 + len(ids)) / (1 + df)) + 1.0
    weighted = raw * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    matrix = np.divide(weighted, norms, out=np.zeros_like(weighted), where=norms > 0).astype(np.float32)
    # Pages ask for similarity rows many times; a full matrix is cheap below a few thousand items.
    sims = matrix @ matrix.T if len(ids) <= MAX_PRECOMPUTED and len(tags) > 64 else None
    return ItemSpace(ids, {item: i for i, item in enumerate(ids)}, tags, matrix, raw, sims)


def _matrix(inter: Interactions, users: dict[str, int], items: dict[str, int]) -> sparse.csr_matrix:
    rows = np.fromiter((users[u] for u in inter.users.tolist()), dtype=np.int64, count=len(inter))
    cols = np.fromiter((items[i] for i in inter.items.tolist()), dtype=np.int64, count=len(inter))
    mat = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    mat.data[:] = 1.0  # repeated events count once
    return mat


def _held_out(inter: Interactions, users: dict[str, int], items: dict[str, int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for user, item in zip(inter.users.tolist(), inter.items.tolist()):
        lst = out.setdefault(users[user], [])
        if items[item] not in lst:
            lst.append(items[item])
    return out


def split_positives(positives: Interactions, space: ItemSpace, share: float = 0.2, min_events: int = 5) -> ImplicitSplit:
    """Train matrix of everyone's earlier positives; each user's last `share` of positives held out."""
    test_mask = split_by_user(positives.users, share, min_events)
    return implicit_split(positives.select(~test_mask), positives.select(test_mask), space)


def implicit_split(train_pos: Interactions, test_pos: Interactions, space: ItemSpace) -> ImplicitSplit:
    """Matrices from given train / held-out positives (users only in the holdout get an empty row)."""
    both = set(train_pos.users.tolist()) | set(test_pos.users.tolist())
    users = sorted(both, key=lambda s: (len(s), s))
    user_index = {u: i for i, u in enumerate(users)}
    train = _matrix(train_pos, user_index, space.index)
    test = _held_out(test_pos, user_index, space.index)
    # An item already in the user's training history is not a new find; drop it from the holdout.
    test = {u: [i for i in items if train[u, i] == 0] for u, items in test.items()}
    return ImplicitSplit(train, {u: v for u, v in test.items() if v}, users, user_index)


def positives_of(catalog: Catalog) -> Interactions:
    pos = catalog.positives()
    known = np.fromiter((i in catalog.items for i in pos.items.tolist()), dtype=bool, count=len(pos))
    return pos.select(known)
