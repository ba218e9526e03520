"""Click-through prediction tools: SGCTR (arXiv 2511.14403) plus LR / FM / LightGBM baselines.

- `data`: CTR files in three formats (csv --label COL, libfm --featindex FILE, criteo-tsv) -> RawTable.
- `derived`: CTR rows from the shipped catalogs (rating >= 4 is a click), per-user temporal split.
- `encoding`: per-field vocabularies with an "unseen" id (numpy; used at scoring time too).
- `model`, `train`, `export`, `baselines`: PyTorch training and ONNX export (the `train` extra).
- `scorer`: onnxruntime scoring of exported models, no torch; `shipped_scorer(name)` for the
  committed demo models in `artifacts/`.
- `metrics`: AUC, log-loss, bootstrap intervals.
Modules that need torch import it themselves, so `scorer` works in an install without the extra.
"""
