"""Field vocabularies: raw string values -> ids in one embedding table (numpy only, used at scoring).

Each field gets ids 1..V_f for values seen at least `min_count` times in training, and id 0 for
everything else. Rare training values are mapped to 0 too, so the "unseen" embedding is trained on
real rare values and an unseen value at scoring time lands on a meaningful vector instead of crashing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

UNSEEN = 0


@dataclass
class FieldEncoder:
    fields: list[str]
    vocabs: list[dict[str, int]]
    min_count: int = 2

    @classmethod
    def fit(cls, fields: list[str], values: np.ndarray, min_count: int = 2) -> "FieldEncoder":
        vocabs = []
        for j in range(len(fields)):
            counts = Counter(values[:, j].tolist())
            kept = sorted(v for v, c in counts.items() if c >= min_count)
            vocabs.append({v: i + 1 for i, v in enumerate(kept)})
        return cls(list(fields), vocabs, min_count)

    @property
    def field_sizes(self) -> list[int]:
        """Rows per field in the embedding table, including the unseen id 0."""
        return [len(v) + 1 for v in self.vocabs]

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.field_sizes)[:-1]]).astype(np.int64)

    def local_ids(self, values: np.ndarray) -> np.ndarray:
        """(n, F) ids within each field (0 = unseen)."""
        values = np.asarray(values, dtype=object).reshape(-1, len(self.fields))
        out = np.zeros(values.shape, dtype=np.int64)
        for j, vocab in enumerate(self.vocabs):
            out[:, j] = [vocab.get(v, UNSEEN) for v in values[:, j].tolist()]
        return out

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(n, F) ids into the shared table (field offset added)."""
        return self.local_ids(values) + self.offsets[None, :]

    def unseen_share(self, values: np.ndarray) -> float:
        return float((self.local_ids(values) == UNSEEN).mean()) if len(values) else 0.0

    def to_json(self) -> dict:
        return {"fields": self.fields, "min_count": self.min_count, "vocabs": self.vocabs}

    @classmethod
    def from_json(cls, data: dict) -> "FieldEncoder":
        return cls(list(data["fields"]), [dict(v) for v in data["vocabs"]], int(data["min_count"]))
