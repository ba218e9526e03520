"""Path-judge precision on the labelled set of `evals/data/path_judge/` (see its README).

    python -m placecell.evals.path_judge --labels evals/data/path_judge/musique.jsonl \
        [--judges similarity,scored,faithful] [--model PRESET] [--limit N] --out DIR

For each question the judge sees that question's labelled paths (in file order) and selects the
helpful ones; precision = relevant selected / selected (over all questions), recall = relevant
selected / relevant. Judges:
- `similarity`: the `select` paths most similar to the question by MiniLM (no LLM; the floor);
- `scored`: NeuroPath scored mode's fused score (yes-probability + similarity + structure), top `select`;
- `scored_list`: the same fusion with the listing probe (the probed paths numbered in one prompt,
  next-token probabilities over the numbers, read forward and reversed): 2 calls instead of 8;
- `scored_none`: the same fusion without the LLM term (similarity + structure; `ask --path-probe none`);
- `faithful`: the paper's JSON call; its `valid_ids` are the selection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from placecell.agents.qa import neuropath as npath
from placecell.errors import InputError
from placecell.evals.build_path_judge_set import phrase_in
from placecell.tools.stores.kg import normalize_entity

JUDGES = ("similarity", "scored", "scored_list", "scored_none", "faithful")
NO_LLM = ("similarity", "scored_none")
SELECT = 6  # the scored judge keeps this many valid paths per round in the QA graph


def load_labels(path: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.strip():
            try:
                row = json.loads(raw)
                groups.setdefault(row["id"], []).append(row)
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{path}:{lineno}: not a labelled path record") from None
    if not groups:
        raise InputError(f"{path}: no labelled paths")
    return groups


def as_paths(rows: list[dict]) -> list[dict]:
    return [{"triples": r["triples"], "passage_ids": r["passage_ids"], "frontier": r["frontier"], "score": 0.0}
            for r in rows]


def question_entities(question: str, paths: list[dict]) -> set[str]:
    q = normalize_entity(question)
    return {e for p in paths for h, _, t in p["triples"] for e in (h, t) if phrase_in(e, q)}


def select(judge: str, llm, embed, question: str, paths: list[dict], k: int = SELECT, probe_k: int = 8) -> list[int]:
    if judge == "similarity":
        return [int(i) for i in np.argsort(-npath.similarity(embed, paths, question), kind="stable")[:k]]
    if judge in ("scored", "scored_list", "scored_none"):
        ents = question_entities(question, paths)
        probe = {"scored_list": "list", "scored_none": "none"}.get(judge, "each")
        scores = npath.score_paths(llm, embed, question, question, paths, ents, ents, probe=probe, probe_k=probe_k)
        return sorted(range(len(paths)), key=lambda i: -scores[i])[:k]
    out = npath.track_faithful(llm, question, paths, set(range(len(paths))))
    return npath.valid_ids(out.valid_ids, len(paths))


def judge_metrics(groups: dict[str, list[dict]], chosen: dict[str, list[int]]) -> dict:
    picked = sum(len(ix) for ix in chosen.values())
    hits = sum(groups[q][i]["label"] for q, ix in chosen.items() for i in ix)
    relevant = sum(r["label"] for rows in groups.values() for r in rows)
    return {"questions": len(chosen), "selected": picked, "relevant_selected": hits,
            "precision": round(hits / picked, 4) if picked else 0.0,
            "recall": round(hits / relevant, 4) if relevant else 0.0,
            "selected_per_question": round(picked / max(1, len(chosen)), 2)}


def run(labels: Path, judges: list[str], model: str | None, limit: int | None, probe_k: int = 8) -> dict:
    from placecell.agents.backends import Backends
    from placecell.settings import get_settings
    from placecell.tools.llm.usage import usage_scope

    groups = dict(list(load_labels(labels).items())[:limit])
    backends = Backends(settings=get_settings(model=model))
    embed = backends.get_embedder().embed
    relevant = sum(r["label"] for rows in groups.values() for r in rows)
    results = {"labels": str(labels), "probe_k": probe_k, "paths": sum(map(len, groups.values())), "relevant": relevant,
               "base_rate": round(relevant / max(1, sum(map(len, groups.values()))), 4), "judges": {}}
    for judge in judges:
        llm = backends.get_llm() if judge not in NO_LLM else None
        with usage_scope() as usage:
            chosen = {q: select(judge, llm, embed, rows[0]["question"], as_paths(rows), probe_k=probe_k) for q, rows in groups.items()}
        results["judges"][judge] = {**judge_metrics(groups, chosen), **usage.totals()}
    return results


def report_markdown(results: dict, model: str, command: str) -> str:
    from placecell.evals.multihop_report import cpu_model, nproc

    lines = [
        "# Path-judge precision",
        "",
        f"- labels: `{results['labels']}` ({results['paths']} paths, {results['relevant']} relevant, base rate {results['base_rate']:.3f})",
        f"- model: {model}",
        f"- machine: {nproc()} CPUs (`nproc`), {cpu_model()}",
        f"- command: `{command}`",
        "- seconds exclude waiting for the machine-wide LLM lock (`wait_seconds`).",
        "",
        "| judge | questions | selected/q | precision | recall | LLM calls | prompt tok | completion tok | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in results["judges"].items():
        lines.append(f"| {name} | {m['questions']} | {m['selected_per_question']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                     f"{m['llm_calls']} | {m['prompt_tokens']} | {m['completion_tokens']} | {m['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, required=True)
    ap.add_argument("--judges", default=",".join(JUDGES))
    ap.add_argument("--model", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N questions")
    ap.add_argument("--probe-k", type=int, default=8, help="paths the scored judges ask the LLM about")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    judges = [j.strip() for j in args.judges.split(",") if j.strip()]
    if not judges or any(j not in JUDGES for j in judges):
        raise SystemExit(f"error: --judges takes {', '.join(JUDGES)}")
    results = run(args.labels, judges, args.model, args.limit, args.probe_k)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "path_judge.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    from placecell.settings import get_settings

    command = "python -m placecell.evals.path_judge " + " ".join(argv if argv is not None else sys.argv[1:])
    model = get_settings(model=args.model).model
    (args.out / "report.md").write_text(report_markdown(results, model, command), encoding="utf-8")
    for name, m in results["judges"].items():
        print(f"{name:>10}: precision {m['precision']:.3f} recall {m['recall']:.3f} "
              f"({m['selected_per_question']} selected/question, {m['llm_calls']} LLM calls)")


if __name__ == "__main__":
    main()
