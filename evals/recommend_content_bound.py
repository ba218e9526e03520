"""Upper bound for WebRec's web evidence: what if the search found every candidate's own page?

    python -m placecell.evals.recommend_content_bound --data goodbooks_399 --out DIR

`placecell eval recommend` finds the held-out item's page for about 1 user in 100
(`recommend_queries`), so its evidence barely moves the ranking. This asks the next question: had
every candidate's page been fetched, would a content signal from it beat CF? For the probe users of
`recommend_weights` (outside the eval's sample; their CF / CTR / evidence features are read from
that run's `features.jsonl`), each candidate gets two content features from its local-web page, the
page the graph would fetch for it, embedded with the product's embedder: `profile`, the cosine to
the mean of the user's history pages, and `nearest`, the cosine to the closest history page (both
z-scored within the user's 100 candidates). Conditional logits with and without them are compared
by 5-fold cross-validated HR@10, as in `recommend_weights`. No LLM is called.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

FEATURES = ("cf", "ctr", "evidence", "profile", "nearest")
SCORES = {
    "cf": (1, 0, 0, 0, 0),
    "cf + ctr + evidence (the shipped fusion)": (1, 1, 1, 0, 0),
    "cf + profile": (1, 0, 0, 1, 0),
    "cf + nearest": (1, 0, 0, 0, 1),
    "cf + ctr + evidence + profile + nearest": (1, 1, 1, 1, 1),
}


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def content_features(candidates: np.ndarray, history: np.ndarray) -> np.ndarray:
    """(n, 2): z-scored cosine of each candidate to the history's mean and to its closest item.

    Rows of both inputs are unit vectors; an empty history gives zeros (no content signal)."""
    if len(history) == 0:
        return np.zeros((len(candidates), 2))
    profile = history.mean(0)
    profile = profile / (np.linalg.norm(profile) + 1e-12)
    sims = candidates @ history.T
    return np.stack([_zscore(candidates @ profile), _zscore(sims.max(1))], axis=1)


def design(rows: list[dict], vectors: dict[str, np.ndarray], history: dict[str, list[str]]):
    """Per probe user, (candidates x FEATURES) and the held-out item's row: recommend_weights'
    design plus the two content columns."""
    from placecell.evals.recommend_weights import design as base_design

    dim = len(next(iter(vectors.values())))
    lists, answers = base_design(rows)
    for i, row in enumerate(rows):
        cands = np.stack([vectors.get(str(item[0]), np.zeros(dim)) for item in row["items"]])
        hist = np.array([vectors[str(h)] for h in history.get(row["user"], []) if str(h) in vectors]).reshape(-1, dim)
        lists[i] = np.hstack([lists[i], content_features(cands, hist)])
    return lists, answers


def cross_validated(lists: list[np.ndarray], answers: list[int], folds: int = 5, seed: int = 0) -> dict:
    from placecell.evals.recommend_weights import cross_validated_fit

    return {name: cross_validated_fit(lists, answers, mask, FEATURES, folds, seed) for name, mask in SCORES.items()}


def page_vectors(ev) -> dict[str, np.ndarray]:
    """Unit vectors of every catalog item's local-web page (title + visible text)."""
    from placecell.agents.recommend.catalog import web_items
    from placecell.tools.embed import get_embedder
    from placecell.tools.web.localweb import item_page

    pages = [item_page(it) for it in web_items(ev.catalog)]
    vecs = get_embedder().embed([f"{p.title}\n{p.text}" for p in pages])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)
    return {str(p.item_id): v for p, v in zip(pages, vecs)}


def main(argv: list[str] | None = None) -> None:
    from placecell.errors import InputError
    from placecell.evals import recommend as R
    from placecell.evals.multihop_report import cpu_model, nproc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="goodbooks_399")
    ap.add_argument("--features", type=Path, help="recommend_weights' features.jsonl (default: its committed report)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent
    features = args.features or here / "reports" / f"recommend_weights_{args.data}" / "features.jsonl"
    if not features.is_file():
        raise SystemExit(f"error: {features}: not found (run python -m placecell.evals.recommend_weights first)")
    records = [line for line in features.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [{"user": r["key"], **r["value"]} for r in map(json.loads, records)]
    try:
        ev = R.load_eval_data(args.data, None)
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
    lists, answers = design(rows, page_vectors(ev), ev.history)
    table = cross_validated(lists, answers)
    command = shlex.join(["python", "-m", "placecell.evals.recommend_content_bound",
                          *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"data": args.data, "users": len(rows), "features_file": str(features.relative_to(here.parent))
               if features.is_relative_to(here.parent) else str(features), "scores": table, "command": command}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    lines = [f"# Content upper bound for the web evidence: {args.data}", "",
             f"- {len(rows)} probe users (those of `recommend_weights`, outside the eval's sample), "
             "1 held-out positive + 99 sampled negatives each; every candidate's own local-web page embedded",
             "- rows: 5-fold cross-validated hit rates of a conditional logit on the named features; "
             "weights: the fit on all users",
             f"- machine: {nproc()} CPUs (`nproc`), {cpu_model()}; embedder MiniLM-L6 int8; no LLM",
             f"- command: `{command}`", "",
             "| score | HR@1 | HR@5 | HR@10 | " + " | ".join(FEATURES) + " |", "|---" * (4 + len(FEATURES)) + "|"]
    lines += [f"| {name} | {r['hr@1']:.3f} | {r['hr@5']:.3f} | {r['hr@10']:.3f} | "
              + " | ".join(f"{r['weights'][f]:.3f}" for f in FEATURES) + " |" for name, r in table.items()]
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
