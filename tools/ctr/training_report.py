"""`placecell train ctr`: train SGCTR on a file (or a shipped catalog), export ONNX, write a report.

The report (`<name>_training.md`) records the data, the configs, the validation curve, AUC / log-loss
per refinement pass count on validation (and on the temporal test split for the shipped catalogs),
and the largest |ONNX - torch| probability difference, which must stay below 1e-4.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from placecell.errors import InputError, ModelError
from placecell.tools.ctr.data import RawTable, load_table
from placecell.tools.ctr.metrics import auc, logloss

CATALOG_NAMES = ("goodbooks_399", "movielens")
ONNX_TOLERANCE = 1e-4


def load_training_data(data: str, fmt: str | None, label: str | None, featindex: str | None) -> tuple[RawTable, RawTable | None, str]:
    """(train, test or None, description). Catalog names give their temporal split; files have no test."""
    if data in CATALOG_NAMES:
        from placecell.tools.ctr.derived import catalog_table
        from placecell.tools.recsys_data import load_catalog

        table, test_mask = catalog_table(load_catalog(data))
        note = f"catalog {data}: rating >= 4 = click; each user's last 20 % of ratings held out as test"
        return table.take(np.flatnonzero(~test_mask)), table.take(np.flatnonzero(test_mask)), note
    if fmt is None:
        raise InputError("--format is required for a data file (csv, libfm or criteo-tsv)")
    return load_table(data, fmt, label, featindex), None, f"file {data} (--format {fmt})"


def _per_k(labels: np.ndarray, probs: np.ndarray) -> list[dict[str, float]]:
    return [{"auc": auc(labels, probs[:, k]), "logloss": logloss(labels, probs[:, k])} for k in range(probs.shape[1])]


def train_and_export(
    data: str,
    fmt: str | None,
    label: str | None,
    featindex: str | None,
    out_dir: Path,
    name: str,
    epochs: int = 20,
    seed: int = 0,
    threads: int = 1,
    say: Callable[[str], None] = print,
    linear_init: str = "auto",
) -> dict[str, Path]:
    from placecell.evals.recsys_report import provenance
    from placecell.tools.ctr.export import save_artifacts
    from placecell.tools.ctr.scorer import CTRScorer
    from placecell.tools.ctr.train import TrainConfig, predict, split_for_validation, train_sgctr

    train, test, note = load_training_data(data, fmt, label, featindex)
    say(f"training SGCTR on {len(train)} rows, {len(train.schema.fields)} fields ({note})")
    cfg = TrainConfig(epochs=epochs, seed=seed, threads=threads, linear_init=linear_init)
    trained = train_sgctr(train, cfg, progress=say)
    _, val = split_for_validation(train, cfg)
    val_probs = predict(trained.model, trained.encoder.transform(val.values))
    metrics = {"validation": _per_k(val.labels, val_probs)}
    if test is not None and len(test):
        metrics["test"] = _per_k(test.labels, predict(trained.model, trained.encoder.transform(test.values)))
    made_by = provenance(_train_command(data, fmt, label, featindex, out_dir, name, epochs, seed, threads, linear_init))
    # Written and checked in a staging folder, then moved in: a model already in `out_dir` is replaced
    # only by a complete, verified pair (ONNX + sidecar whose sha256 matches), never half of one.
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=out_dir) as staging:
        staged = save_artifacts(trained, train.schema, Path(staging), name, metrics, provenance=made_by)
        onnx_probs = CTRScorer(staged["meta"]).probabilities(val.values)
        diff = float(np.abs(onnx_probs - val_probs).max())
        if diff > ONNX_TOLERANCE:
            raise ModelError(f"ONNX export differs from torch by {diff:.2e} (> {ONNX_TOLERANCE})")
        paths = {kind: out_dir / path.name for kind, path in staged.items()}
        paths["report"] = out_dir / f"{name}_training.md"
        staged["report"] = Path(staging) / paths["report"].name
        staged["report"].write_text(_report(name, note, train, test, trained, metrics, diff, staged, made_by), encoding="utf-8")
        for kind in ("onnx", "meta", "report"):  # the sidecar after its model: it names the model's hash
            os.replace(staged[kind], paths[kind])
    return paths


def _train_command(data, fmt, label, featindex, out_dir, name, epochs, seed, threads, linear_init) -> list[str]:
    """The `placecell train ctr` line that reproduces a run (defaults left out)."""
    cmd = ["placecell", "train", "ctr", "--data", str(data)]
    for flag, value, default in (("--format", fmt, None), ("--label", label, None), ("--featindex", featindex, None),
                                 ("--out", str(out_dir), None), ("--name", name, None), ("--epochs", epochs, 20),
                                 ("--seed", seed, 0), ("--threads", threads, 1), ("--linear-init", linear_init, "auto")):
        if value is not None and value != default:
            cmd += [flag, str(value)]
    return cmd + ["--overwrite"]  # rerunning it replaces the model it made, which the CLI refuses without this


def _metric_rows(rows: list[dict[str, float]]) -> list[str]:
    return [f"| K = {k} | {m['auc']:.4f} | {m['logloss']:.4f} |" for k, m in enumerate(rows)]


def _report(name, note, train, test, trained, metrics, diff, paths, made_by) -> str:
    from placecell.evals.recsys_report import provenance_lines

    lines = [
        f"# SGCTR training report: {name}",
        "",
        *provenance_lines({"provenance": made_by}),
        f"- Data: {note}.",
        f"- Training rows: {len(train)} (click rate {train.labels.mean():.4f}); 10 % of them (stratified, seed "
        f"{trained.config.seed + 1000}) are the validation share used for early stopping and for picking K.",
        f"- Fields ({len(train.schema.fields)}): {', '.join(train.schema.fields)}; vocabulary sizes (incl. the unseen id): "
        f"{trained.encoder.field_sizes}.",
        f"- Model config: {trained.model.config.to_json()}.",
        f"- Train config: {trained.config.to_json()}.",
        f"- Epochs run: {trained.log.epochs_run}, best epoch {trained.log.best_epoch}"
        f"{' (the starting model: no epoch improved validation)' if trained.log.best_epoch == 0 else ''}, "
        f"{trained.log.seconds} s on "
        f"{trained.config.threads} thread(s).",
        f"- Validation log-loss per epoch: {[round(v, 4) for v in trained.log.val_logloss]}.",
        f"- Default refinement passes (best validation AUC): K = {trained.default_passes}.",
        f"- ONNX check: max |onnxruntime - torch| probability on the validation rows = {diff:.2e} (tolerance {ONNX_TOLERANCE:g}).",
        f"- Files: `{paths['onnx'].name}` ({paths['onnx'].stat().st_size // 1024} KiB), `{paths['meta'].name}`.",
        "",
        "## Validation",
        "",
        "| passes | AUC | log-loss |",
        "|---|---|---|",
        *_metric_rows(metrics["validation"]),
        "",
    ]
    if "test" in metrics:
        lines += [
            f"## Test ({len(test)} rows, click rate {test.labels.mean():.4f})",
            "",
            "| passes | AUC | log-loss |",
            "|---|---|---|",
            *_metric_rows(metrics["test"]),
            "",
        ]
    return "\n".join(lines)
