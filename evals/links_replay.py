"""Apply the title-link step to the rankings a multi-hop run saved, without running anything again.

    python -m placecell.evals.links_replay --report DIR --questions Q.jsonl --corpus C.jsonl [--methods a,b]

For each method's checkpoint in `DIR/checkpoints/`, re-ranks every question's saved ranking with
`agents.qa.neuropath.follow_title_links` (the product's function and defaults) and prints R@2 and
R@5 before and after, so the link step can be measured on the baselines too. No LLM call: the
corpus home (registry, vectors) must already be in the cache, as any finished eval run leaves it.
One difference from `ask`: passages outside the ranking are ordered by the question's dense score,
because the checkpoints do not keep the reasoning chain the completion query adds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def replay(report: Path, questions: list[dict], backends, methods: list[str] | None = None) -> dict[str, dict]:
    from placecell.agents.qa.neuropath import follow_title_links
    from placecell.evals import multihop_metrics as metrics
    from placecell.tools.retrievers import dense, title_index
    from placecell.tools.stores.jsonl_cache import JsonlCache

    registry = backends.get_registry()
    passages = {p.id: (p.title, p.text) for p in registry.all()}
    index = title_index(backends)
    by_question: dict[str, list[str]] = {}  # dense order per question, shared by every method
    out: dict[str, dict] = {}
    for path in sorted((report / "checkpoints").glob("*.jsonl")):
        if methods and path.stem not in methods:
            continue
        saved = JsonlCache(path)
        before = {"recall@2": 0.0, "recall@5": 0.0}
        after = dict(before)
        n = 0
        for q in questions:
            row = saved.get(q["id"])
            if not row:
                continue
            gold = metrics.gold_items(q, "passage")
            if q["id"] not in by_question:
                by_question[q["id"]] = [pid for pid, _ in dense(q["question"], backends, None)]
            linked, _ = follow_title_links(row["ranking"], passages, index, by_question[q["id"]])
            for k in (2, 5):
                before[f"recall@{k}"] += metrics.recall_at_k([passages[p][1] for p in row["ranking"]], gold, k)
                after[f"recall@{k}"] += metrics.recall_at_k([passages[p][1] for p in linked], gold, k)
            n += 1
        if n:
            out[path.stem] = {"questions": n, "before": {k: v / n for k, v in before.items()},
                              "after": {k: v / n for k, v in after.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    from placecell.evals.multihop import DEFAULT_CACHE, EvalConfig, file_sha256, load_questions, make_backends

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.links_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--methods", default="", help="comma-separated checkpoint names (default: all)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    cfg = EvalConfig(questions=args.questions, corpus=args.corpus, out=args.report, cache=args.cache)
    home = Path(args.cache) / "corpora" / file_sha256(args.corpus)[:16]
    if not (args.report / "checkpoints").is_dir() or not home.is_dir():
        parser.exit(2, f"error: no checkpoints in {args.report} or no corpus home at {home} (run the eval first)\n")
    result = replay(args.report, load_questions(args.questions, "passage"), make_backends(cfg, file_sha256(args.corpus)),
                    [m for m in args.methods.split(",") if m] or None)
    print("| method | R@2 | R@5 | R@5 with links |")
    print("|---|---:|---:|---:|")
    for name, r in result.items():
        print(f"| {name} | {100 * r['before']['recall@2']:.1f} | {100 * r['before']['recall@5']:.1f} | "
              f"{100 * r['after']['recall@5']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
