"""Export a trained SGCTR to ONNX plus a json sidecar (schema, vocabularies, configs, metrics).

The ONNX graph takes int64 ids (batch, fields) already offset into the shared table and returns click
probabilities (batch, K+1) for K = 0..max_passes refinement passes; the scorer picks the column.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from placecell.tools.ctr.data import TableSchema
from placecell.tools.ctr.train import TrainedCTR

OPSET = 17


def export_onnx(model: torch.nn.Module, n_fields: int, path: Path) -> None:
    model.eval()
    dummy = torch.zeros((2, n_fields), dtype=torch.int64)
    # The TorchScript exporter (dynamo=False) needs no onnxscript; torch warns that it is the legacy path.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(model, dummy, path)


def _export(model: torch.nn.Module, dummy: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["ids"],
        output_names=["probs"],
        dynamic_axes={"ids": {0: "batch"}, "probs": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )


def save_artifacts(trained: TrainedCTR, schema: TableSchema, out_dir: Path, name: str, metrics: dict,
                   provenance: dict | None = None) -> dict[str, Path]:
    """Write `<name>.onnx` and `<name>.json` into `out_dir`; returns their paths. `provenance`: the
    command, machine and date that made it, kept in the sidecar."""
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, meta_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    export_onnx(trained.model, len(schema.fields), onnx_path)
    meta = {
        "name": name,
        "model": "sgctr",
        "onnx": onnx_path.name,
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "schema": schema.to_json(),
        "encoder": trained.encoder.to_json(),
        "model_config": trained.model.config.to_json(),
        "train_config": trained.config.to_json(),
        "default_passes": trained.default_passes,
        "val_auc_by_passes": [round(v, 5) for v in trained.val_auc_by_passes],
        "epochs_run": trained.log.epochs_run,
        "best_epoch": trained.log.best_epoch,
        "train_seconds": trained.log.seconds,
        "metrics": metrics,
        **({"provenance": provenance} if provenance else {}),
    }
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return {"onnx": onnx_path, "meta": meta_path}
