"""Score rows with an exported SGCTR model on onnxruntime (no torch needed).

Rows are dicts `field -> value` (or an (n, F) array in field order). Missing fields and values never
seen in training map to each field's "unseen" embedding, so they score instead of failing; the
result says how many cells that was. Fields the model does not know are an InputError.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from placecell.errors import InputError, ModelError
from placecell.tools.once import PerProcess
from placecell.tools.ctr.data import TableSchema, bucket_number
from placecell.tools.ctr.encoding import FieldEncoder

SHIPPED = ("goodbooks_399", "movielens")


@dataclass
class Scored:
    probs: np.ndarray
    passes: int
    unseen_share: float


class CTRScorer:
    def __init__(self, meta_path: str | Path):
        import onnxruntime as ort

        meta_path = Path(meta_path)
        if not meta_path.is_file():
            raise ModelError(f"CTR model metadata not found: {meta_path}")
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        onnx_path = meta_path.parent / self.meta["onnx"]
        if not onnx_path.is_file():
            raise ModelError(f"CTR model file not found: {onnx_path}")
        if hashlib.sha256(onnx_path.read_bytes()).hexdigest() != self.meta["onnx_sha256"]:
            raise ModelError(f"{onnx_path} does not match the checksum in {meta_path.name}")
        self.schema = TableSchema(**{k: v for k, v in self.meta["schema"].items()})
        self.encoder = FieldEncoder.from_json(self.meta["encoder"])
        self.default_passes = int(self.meta["default_passes"])
        self.max_passes = int(self.meta["model_config"]["max_passes"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # small model: threads cost more than they save
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    @property
    def fields(self) -> list[str]:
        return self.encoder.fields

    def _passes(self, passes: int | None) -> int:
        k = self.default_passes if passes is None else int(passes)
        if not 0 <= k <= self.max_passes:
            raise InputError(f"refinement passes must be 0..{self.max_passes}, got {k}")
        return k

    def probabilities(self, values: np.ndarray) -> np.ndarray:
        """(n, F) raw values in field order -> (n, max_passes + 1) probabilities."""
        if len(values) == 0:
            return np.zeros((0, self.max_passes + 1), dtype=np.float32)
        ids = self.encoder.transform(values)
        return self.session.run(["probs"], {"ids": ids.astype(np.int64)})[0]

    def rows_to_values(self, rows: list[dict[str, object]]) -> np.ndarray:
        unknown = sorted({k for row in rows for k in row} - set(self.fields))
        if unknown:
            raise InputError(f"unknown field(s) {', '.join(unknown)}; the model knows {', '.join(self.fields)}")
        numeric = set(self.schema.numeric)
        values = np.empty((len(rows), len(self.fields)), dtype=object)
        for i, row in enumerate(rows):
            for j, name in enumerate(self.fields):
                text = "" if row.get(name) is None else str(row[name])
                values[i, j] = bucket_number(text) if name in numeric else text
        return values

    def score(self, rows: list[dict[str, object]] | np.ndarray, passes: int | None = None) -> Scored:
        values = rows if isinstance(rows, np.ndarray) else self.rows_to_values(rows)
        k = self._passes(passes)
        probs = self.probabilities(values)
        return Scored(probs[:, k].astype(np.float64), k, self.encoder.unseen_share(values))


def artifacts_dir() -> Path:
    return Path(str(resources.files("placecell.tools.ctr"))) / "artifacts"


def shipped_scorer(name: str) -> CTRScorer:
    """The committed model for a demo catalog, loaded once per process (also when threads make
    their first call at once: `placecell.tools.once`)."""
    return _scorers(name)


def _load_shipped(name: str) -> CTRScorer:
    if name not in SHIPPED:
        raise InputError(f"no shipped CTR model for {name!r}; choose one of {', '.join(SHIPPED)}")
    return CTRScorer(artifacts_dir() / f"{name}.json")


_scorers = PerProcess(_load_shipped)
