"""Rerun NeuroPath's completion step on the traces a multi-hop run saved, without any LLM call.

    python -m placecell.evals.complete_replay --report DIR --questions Q.jsonl --corpus C.jsonl \\
        [--method neuropath_bm25_lean_cover_links_near] [--set title_links=false --set link_depth=2 ...]

A NeuroPath checkpoint row keeps what the completion step read (`trace`: the query entities, the
reasoning chain, what is still missing, and the path candidates). This tool feeds those to the
product's own `agents.qa.nodes.complete_ranking` under the run's settings, or under settings changed
with `--set NAME=VALUE` (any `QAContext` field), and prints recall@1/2/5/10 for both. With no
`--set`, the replay must equal the saved rankings (it checks and says how many differ): that is what
makes a replayed variant a fair stand-in for a fresh run. Rows from runs before traces were saved
are skipped. The corpus home (registry, vectors) must be in the cache, as a finished run leaves it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def _value(field: dataclasses.Field, raw: str):
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if kind == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{field.name} takes true or false, not {raw!r}")
        return raw.lower() in ("true", "1")
    if kind == "int":
        return int(raw)
    return raw


def parse_overrides(pairs: list[str]) -> dict:
    from placecell.agents.qa.state import QAContext

    fields = {f.name: f for f in dataclasses.fields(QAContext)}
    out = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"--set wants NAME=VALUE with NAME one of {', '.join(sorted(fields))}; got {pair!r}")
        out[name] = _value(fields[name], raw)
    return out


def replay(saved_rows: dict[str, dict], questions: list[dict], backends, ctx) -> dict:
    """Recall@k of the saved rankings and of the replayed ones, and how many rankings differ."""
    from placecell.agents.qa.nodes import complete_ranking
    from placecell.evals import multihop_metrics as metrics

    registry = backends.get_registry()
    ks = (1, 2, 5, 10)
    saved = {k: 0.0 for k in ks}
    replayed = {k: 0.0 for k in ks}
    n = changed = 0
    rankings: dict[str, list[str]] = {}
    for q in questions:
        row = saved_rows.get(q["id"])
        if not row or "trace" not in row:
            continue
        t = row["trace"]
        ranking = complete_ranking(backends, ctx, q["question"], t["candidates"], t["chain"], t["requirements"],
                                   t["entities"])[: len(row["ranking"]) or ctx.rank_k]
        rankings[q["id"]] = ranking
        changed += ranking != row["ranking"]
        gold = metrics.gold_items(q, "passage")
        texts = registry.get_many(sorted(set(ranking) | set(row["ranking"])))
        for k in ks:
            saved[k] += metrics.recall_at_k([texts[p].text for p in row["ranking"]], gold, k)
            replayed[k] += metrics.recall_at_k([texts[p].text for p in ranking], gold, k)
        n += 1
    return {"questions": n, "changed": changed, "rankings": rankings,
            "saved": {f"recall@{k}": v / max(n, 1) for k, v in saved.items()},
            "replayed": {f"recall@{k}": v / max(n, 1) for k, v in replayed.items()}}


def main(argv: list[str] | None = None) -> int:
    from placecell.errors import InputError
    from placecell.evals.multihop import (DEFAULT_CACHE, EvalConfig, file_sha256, load_questions, make_backends,
                                          qa_context)
    from placecell.tools.stores.jsonl_cache import JsonlCache

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.complete_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--method", default="neuropath_bm25_lean_cover_links_near")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    checkpoint = args.report / "checkpoints" / f"{args.method}.jsonl"
    home = Path(args.cache) / "corpora" / file_sha256(args.corpus)[:16]
    if not checkpoint.is_file() or not home.is_dir():
        parser.exit(2, f"error: no checkpoint {checkpoint} or no corpus home at {home} (run the eval first)\n")
    cfg = EvalConfig(questions=args.questions, corpus=args.corpus, out=args.report, cache=args.cache)
    try:
        questions = load_questions(args.questions, "passage")
    except InputError as exc:
        parser.exit(2, f"error: {exc}\n")
    ctx = dataclasses.replace(qa_context(args.method, False), **overrides)
    rows = JsonlCache(checkpoint)
    result = replay({q["id"]: rows.get(q["id"]) for q in questions}, questions, make_backends(cfg, file_sha256(args.corpus)), ctx)
    if not result["questions"]:
        parser.exit(2, f"error: no row of {checkpoint} has a trace (made before traces were saved): rerun the eval\n")
    label = ", ".join(args.overrides) or "as run"
    print(f"{result['questions']} questions with a trace; {result['changed']} rankings differ from the saved ones")
    print("| ranking | R@1 | R@2 | R@5 | R@10 |")
    print("|---|---:|---:|---:|---:|")
    for name, r in (("saved", result["saved"]), (f"replayed ({label})", result["replayed"])):
        print(f"| {name} | " + " | ".join(f"{100 * r[f'recall@{k}']:.1f}" for k in (1, 2, 5, 10)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
