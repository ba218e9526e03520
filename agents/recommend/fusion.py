"""How the recommendation graph fuses its three item signals into one score.

    score = ctr_weight * logit(CTR) + cf_weight * z(CF) + evidence_weight * evidence

The weights are fitted, not chosen by hand: `python -m placecell.evals.recommend_weights` fits a
conditional logit (softmax over one user's candidates, the held-out item as the answer) on users
the WebRec eval never samples, and writes them next to the catalog's CTR model as
`tools/ctr/artifacts/<catalog>_fusion.json`, keyed by that model's content hash. Why fit: the CTR
model is trained on *rated* items (rating >= 4 = click), so it knows which items are liked once
read, not which items get read; added at weight 1 it pulled the next-item ranking down (goodbooks
probe: HR@10 0.58 -> 0.52), and the fit gives it the small weight it earns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Used when a catalog has no fitted weights or they were fitted for another CTR model.
FALLBACK = {"cf": 1.0, "ctr": 1.0, "evidence": 2.0}


@dataclass(frozen=True)
class FusionWeights:
    cf: float
    ctr: float
    evidence: float
    source: str  # "fitted" | "fallback" | "context"


def ctr_model_hash(catalog: str) -> str:
    """The shipped CTR model's content hash ("none" without one), as its export recorded it in
    `<catalog>.json` (the scorer checks the ONNX file against it when it loads)."""
    from placecell.tools.ctr.scorer import artifacts_dir

    try:
        meta = json.loads((artifacts_dir() / f"{catalog}.json").read_text(encoding="utf-8"))
        return str(meta["onnx_sha256"])[:16]
    except (OSError, ValueError, KeyError, TypeError):
        return "none"


def weights_path(catalog: str) -> Path:
    from placecell.tools.ctr.scorer import artifacts_dir

    return artifacts_dir() / f"{catalog}_fusion.json"


def fitted_weights(catalog: str) -> tuple[dict[str, float] | None, str | None]:
    """(weights, None) when the catalog's fitted weights match its CTR model, else (None, why)."""
    path = weights_path(catalog)
    if not path.exists():
        return None, f"no fitted score weights for catalog {catalog!r}"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        weights = {k: float(saved["weights"][k]) for k in FALLBACK}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable score weights {path.name}: {exc}"
    if saved.get("ctr_model") != ctr_model_hash(catalog):
        return None, f"score weights {path.name} were fitted for another CTR model"
    return weights, None


def resolve_weights(catalog: str, cf: float | None, ctr: float | None, evidence: float | None) -> tuple[FusionWeights, str | None]:
    """Explicit context values win; the rest come from the fitted file, else FALLBACK (with a note)."""
    given = {"cf": cf, "ctr": ctr, "evidence": evidence}
    if all(v is not None for v in given.values()):
        return FusionWeights(**given, source="context"), None
    fitted, why = fitted_weights(catalog)
    base = fitted or FALLBACK
    merged = {k: float(v if v is not None else base[k]) for k, v in given.items()}
    note = None if fitted else f"{why}: using fixed weights {FALLBACK}"
    return FusionWeights(**merged, source="fitted" if fitted else "fallback"), note


def fit_conditional_logit(lists: list[np.ndarray], answers: list[int], mask=(1.0, 1.0, 1.0), l2: float = 0.01) -> np.ndarray:
    """Weights w >= 0 maximising mean log softmax(X_u w)[answer_u] - l2 |w|^2 over users u.

    Each X_u is (candidates x features); `mask` pins features to 0 (an ablation fits without
    them). A listwise fit matches the use: only the order within one user's candidates counts.
    """
    from scipy.optimize import minimize

    m = np.asarray(mask, dtype=np.float64)

    def loss(w):
        w = w * m
        total, grad = 0.0, np.zeros_like(w)
        for x, y in zip(lists, answers):
            s = x @ w
            s = s - s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= np.log(p[y])
            grad -= x[y] - p @ x
        n = len(lists)
        return total / n + l2 * float(w @ w), (grad / n + 2 * l2 * w) * m

    # Non-negative: each signal is meant as support. Unbounded, MovieLens fitted CTR at -0.07 (the
    # model rates items liked-once-read, which runs slightly against being read next), and a
    # product that penalises what its CTR model predicts is liked would be hard to explain.
    start = np.ones_like(m) * m
    return minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(m)).x * m


def save_weights(catalog: str, weights: dict[str, float], provenance: dict, path: Path | None = None) -> Path:
    """Atomic write of a catalog's fitted weights, keyed by its CTR model hash."""
    from placecell.tools.stores.atomic import write_json_atomic

    path = path or weights_path(catalog)
    write_json_atomic(path, {"catalog": catalog, "ctr_model": ctr_model_hash(catalog),
                             "weights": {k: round(float(weights[k]), 4) for k in FALLBACK}, **provenance})
    return path


__all__ = ["FALLBACK", "FusionWeights", "ctr_model_hash", "fit_conditional_logit", "fitted_weights",
           "resolve_weights", "save_weights", "weights_path"]
