"""CTR data: multi-field categorical rows with a 0/1 click label, from three file formats.

- `csv --label COL`: a header row; every other column is a field. Real-valued columns (all values parse
  as numbers, some have a decimal point, many distinct ones) are bucketed like the Criteo winners did
  (floor(ln(v)^2)); integer columns stay categorical, since CTR logs use integers as ids (Avazu C14..).
- `libfm --featindex FILE`: `label idx:1 idx:1 ...` rows, one active feature per field; `FILE` maps
  `field:value<TAB>idx` (the iPinYou layout).
- `criteo-tsv`: the raw Criteo Kaggle layout, label + 13 integer + 26 hashed categorical columns
  (trailing empty columns may be missing, as in copies that strip trailing tabs).
Plain or gzipped files. Malformed input raises InputError naming the line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from placecell.errors import InputError
from placecell.tools.recsys_data import open_text

Format = Literal["csv", "libfm", "criteo-tsv"]
FORMATS: tuple[str, ...] = ("csv", "libfm", "criteo-tsv")
CRITEO_FIELDS = [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
# Some copies strip trailing tabs (empty = missing categoricals); accept rows that keep at least the
# label, the 13 integers and one categorical, and pad the rest as missing.
CRITEO_MIN_COLS = 15
MIN_DISTINCT_FOR_NUMERIC = 20
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "-1", "false", "no"}


@dataclass
class TableSchema:
    """How raw files map to fields; saved with a trained model so scoring files parse the same way."""

    format: str
    fields: list[str]
    label: str = "label"
    numeric: list[str] = field(default_factory=list)
    featindex: str | None = None

    def to_json(self) -> dict:
        return {"format": self.format, "fields": self.fields, "label": self.label, "numeric": self.numeric}


@dataclass
class RawTable:
    """`values[i, f]` is the (string) value of field `schema.fields[f]` in row i."""

    schema: TableSchema
    values: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: np.ndarray) -> "RawTable":
        return RawTable(self.schema, self.values[idx], self.labels[idx])


def bucket_number(text: str) -> str:
    """Criteo-style bucket: small values kept, large ones on a log-squared scale; '' stays missing."""
    if text == "":
        return ""
    try:
        value = float(text)
    except ValueError:
        return text
    if math.isnan(value):
        return ""
    if math.isinf(value):  # an overflowed counter: its own bucket at either end, never a crash
        return "Linf" if value > 0 else "-inf"
    return f"L{int(math.log(value) ** 2)}" if value > 2 else str(int(math.floor(value)))


def parse_label(text: str, where: str) -> float:
    token = text.strip().lower()
    if token in _TRUE:
        return 1.0
    if token in _FALSE:
        return 0.0
    raise InputError(f"{where}: label {text!r} is not 0/1")


def check_trainable(table: RawTable, what: str) -> None:
    """Training and AUC both need both classes present."""
    if len(table) == 0:
        raise InputError(f"{what}: no rows")
    positives = int(table.labels.sum())
    if positives in (0, len(table)):
        raise InputError(f"{what}: the label is constant ({'all 1' if positives else 'all 0'}); need clicks and non-clicks")


def _numeric_columns(columns: list[str], values: np.ndarray) -> list[str]:
    numeric = []
    for j, name in enumerate(columns):
        col = [v for v in values[:, j] if v != ""]
        try:
            [float(v) for v in col[:5000]]
        except ValueError:
            continue
        real = any("." in v for v in col[:5000])
        if real and len(set(col)) > MIN_DISTINCT_FOR_NUMERIC:
            numeric.append(name)
    return numeric


def _apply_numeric(schema: TableSchema, values: np.ndarray) -> np.ndarray:
    for name in schema.numeric:
        j = schema.fields.index(name)
        values[:, j] = [bucket_number(v) for v in values[:, j]]
    return values


def _check_header(path: Path, header: list[str], label: str) -> None:
    """Every column needs a unique name (rows are matched to the model's fields by name)."""
    if label not in header:
        raise InputError(f"{path}: label column {label!r} not found; columns are {', '.join(header)}")
    if "" in header:
        raise InputError(f"{path}: column {header.index('') + 1} of the header has no name (a trailing comma?)")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(f"{path}: column name(s) {', '.join(repeated)} appear more than once in the header")
    if len(header) == 1:
        raise InputError(f"{path}: only the label column {label!r}; a CTR model needs at least one feature column")


def _read_csv(path: Path, label: str | None, schema: TableSchema | None) -> RawTable:
    if not label:
        raise InputError("--format csv needs --label COLUMN (the 0/1 click column)")
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise InputError(f"{path}: empty file")
        header = [h.strip() for h in header]
        _check_header(path, header, label)
        fields = [h for h in header if h != label]
        if schema is not None and set(fields) != set(schema.fields):
            unknown = [f for f in fields if f not in schema.fields]
            missing = [f for f in schema.fields if f not in fields]
            raise InputError(f"{path}: columns differ from the training data (unknown: {', '.join(unknown) or '-'}; missing: {', '.join(missing) or '-'})")
        li = header.index(label)
        rows, labels = [], []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{path}:{line_no}: {len(row)} fields, the header has {len(header)}")
            labels.append(parse_label(row[li], f"{path}:{line_no}"))
            rows.append([v.strip() for k, v in enumerate(row) if k != li])
    if not rows:
        raise InputError(f"{path}: no data rows")
    values = np.asarray(rows, dtype=object)
    if schema is None:
        schema = TableSchema("csv", fields, label, _numeric_columns(fields, values))
    elif fields != schema.fields:  # same columns in another order: match them by name
        values = values[:, [fields.index(f) for f in schema.fields]]
    return RawTable(schema, _apply_numeric(schema, values), np.asarray(labels, dtype=np.float32))


def read_featindex(path: Path) -> tuple[list[str], dict[int, tuple[int, str]]]:
    """Fields in index order and idx -> (field position, value)."""
    fields: list[str] = []
    index: dict[int, tuple[int, str]] = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            key, _, idx = line.rstrip("\n").rpartition("\t")
            name, sep, value = key.partition(":")
            if not sep or not idx.strip().isdigit():
                raise InputError(f"{path}:{line_no}: expected 'field:value<TAB>index'")
            if name not in fields:
                fields.append(name)
            index[int(idx)] = (fields.index(name), value)
    if not index:
        raise InputError(f"{path}: empty feature index")
    return fields, index


def _read_libfm(path: Path, featindex: str | None, schema: TableSchema | None) -> RawTable:
    if not featindex:
        raise InputError("--format libfm needs --featindex FILE (lines 'field:value<TAB>index')")
    fields, index = read_featindex(Path(featindex))
    if schema is not None and fields != schema.fields:
        raise InputError(f"{featindex}: fields {fields} differ from the training fields {schema.fields}")
    rows, labels = [], []
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{path}:{line_no}"
            if len(tokens) - 1 != len(fields):
                raise InputError(f"{where}: {len(tokens) - 1} features, expected {len(fields)} (one per field)")
            row = [""] * len(fields)
            for tok in tokens[1:]:
                idx = tok.partition(":")[0]
                if not idx.isdigit() or int(idx) not in index:
                    raise InputError(f"{where}: feature {tok!r} is not in {featindex}")
                pos, value = index[int(idx)]
                if row[pos]:
                    raise InputError(f"{where}: two features for field {fields[pos]!r}")
                row[pos] = value
            labels.append(parse_label(tokens[0], where))
            rows.append(row)
    if not rows:
        raise InputError(f"{path}: empty file")
    schema = schema or TableSchema("libfm", fields, featindex=str(featindex))
    return RawTable(schema, np.asarray(rows, dtype=object), np.asarray(labels, dtype=np.float32))


def _read_criteo(path: Path) -> RawTable:
    rows, labels = [], []
    n_cols = 1 + len(CRITEO_FIELDS)
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            cols = line.split("\t")
            if not CRITEO_MIN_COLS <= len(cols) <= n_cols:
                raise InputError(f"{path}:{line_no}: {len(cols)} tab-separated columns, criteo-tsv has {n_cols}")
            cols += [""] * (n_cols - len(cols))  # trailing empty (missing) categoricals stripped
            labels.append(parse_label(cols[0], f"{path}:{line_no}"))
            rows.append(cols[1:])
    if not rows:
        raise InputError(f"{path}: empty file")
    schema = TableSchema("criteo-tsv", list(CRITEO_FIELDS), numeric=CRITEO_FIELDS[:13])
    return RawTable(schema, _apply_numeric(schema, np.asarray(rows, dtype=object)), np.asarray(labels, dtype=np.float32))


def load_table(
    path: str | Path,
    fmt: str,
    label: str | None = None,
    featindex: str | None = None,
    schema: TableSchema | None = None,
) -> RawTable:
    """Read a CTR file; pass the training `schema` when reading its test / scoring files."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if fmt == "csv":
        return _read_csv(path, label, schema)
    if fmt == "libfm":
        return _read_libfm(path, featindex, schema)
    return _read_criteo(path)


def corrupt(values: np.ndarray, reference: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Replace each cell with probability `rate` by the same field's value in a random reference row.

    Drawing from the field's own (training) distribution makes the noise plausible, the way a wrong
    but well-formed feature looks in a log, rather than obviously unseen values.
    """
    out = values.copy()
    hit = rng.random(values.shape) < rate
    rows = rng.integers(0, len(reference), size=values.shape)
    cols = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    out[hit] = reference[rows[hit], cols[hit]]
    return out


def stratified_split(labels: np.ndarray, test_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test) with the click rate kept in both."""
    train, test = [], []
    for cls in (0.0, 1.0):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(round(len(idx) * test_share))
        test.append(idx[:cut])
        train.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
