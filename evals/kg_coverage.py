"""Is the reasoning chain in the knowledge graph at all? Coverage of each question's gold chain in
the triples a model extracted from the question's *gold* passages.

    python -m placecell.evals.kg_coverage --questions Q.jsonl --model PRESET [--model PRESET ...]
        [--cache evals/cache] [--out DIR]

No LLM call: it reads the extraction cache (`<cache>/extractions/`, what `placecell eval multihop`
fills). Per model and question, over the triples of that question's gold passages:
- `answer_entity`: the answer (or an alias) is a KG entity (equal after NeuroPath's normalisation,
  or contained in one as whole words);
- `chain_reached`: some question entity (a KG entity whose normalised name occurs in the
  question) is connected to an answer entity through those triples. Entities are joined by
  exact normalised name only, while `ask` also follows alias edges, so this understates what
  path tracking can join on these passages (the corpus KG also holds every other passage's
  triples, which can bridge a gap as well).
Models are compared on the questions whose gold passages every listed model has extracted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import networkx as nx

from placecell.evals.multihop_metrics import passage_string
from placecell.tools.stores.kg import normalize_entity
from placecell.tools.stores.passages import passage_id


def _contains(entity: str, answer: str) -> bool:
    return entity == answer or (len(answer) >= 4 and f" {answer} " in f" {entity} ")


def question_coverage(question: dict, triples_by_passage: dict[str, list]) -> dict:
    """Coverage of one question; `triples_by_passage[passage_id] -> [[h, r, t], ...]`."""
    graph = nx.Graph()
    for p in question.get("supporting_passages", []):
        for h, _, t in triples_by_passage.get(passage_id(passage_string(p["title"], p["text"])), []):
            graph.add_edge(normalize_entity(h), normalize_entity(t))
    answers = [normalize_entity(a) for a in [question.get("answer", "")] + list(question.get("answer_aliases", []))]
    answer_nodes = {e for e in graph.nodes for a in answers if a and _contains(e, a)}
    asked = f" {normalize_entity(question['question'])} "
    seeds = {e for e in graph.nodes if len(e) >= 3 and f" {e} " in asked} - answer_nodes
    reached = any(nx.has_path(graph, s, a) for s in seeds for a in answer_nodes)
    return {"triples": graph.number_of_edges(), "answer_entity": bool(answer_nodes), "chain_reached": reached}


def load_extractions(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            out[record["key"]] = record["value"]
    return out


def coverage(questions: list[dict], extractions: dict[str, dict[str, dict]]) -> dict:
    """`extractions[model][passage_id] -> {"triples", "failed"}`; summary per model on the shared questions."""
    def gold_ids(q):
        return [passage_id(passage_string(p["title"], p["text"])) for p in q.get("supporting_passages", [])]

    shared = [q for q in questions if all(pid in cache for cache in extractions.values() for pid in gold_ids(q))]
    out = {"questions": len(shared), "models": {}}
    for model, cache in extractions.items():
        rows = [question_coverage(q, {pid: cache[pid].get("triples", []) for pid in gold_ids(q)}) for q in shared]
        n = max(1, len(rows))
        out["models"][model] = {
            "triples_per_question": round(sum(r["triples"] for r in rows) / n, 2),
            "answer_entity": sum(r["answer_entity"] for r in rows),
            "chain_reached": sum(r["chain_reached"] for r in rows),
            "failed_passages": sum(cache[pid].get("failed", False) for q in shared for pid in set(gold_ids(q))),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    from placecell.agents.backends import model_key
    from placecell.agents.ingest.extract import SCHEMA_VERSION
    from placecell.evals.multihop import DEFAULT_CACHE, load_questions
    from placecell.tools.models import PRESETS

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.kg_coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, help="preset name or model id (repeatable)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path)
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    questions = load_questions(args.questions, "passage")
    extractions = {}
    for name in args.model:
        model_id = PRESETS[name].sha256 if name in PRESETS else name
        path = args.cache / "extractions" / f"{model_key(model_id)}-{SCHEMA_VERSION}.jsonl"
        if not path.is_file():
            parser.exit(2, f"error: no extraction cache for {name} at {path}\n")
        extractions[name] = load_extractions(path)
    result = {"questions_file": str(args.questions), **coverage(questions, extractions)}
    lines = [f"{result['questions']} questions of {args.questions} with every gold passage extracted by each model",
             "", "| model | triples / question | answer is a KG entity | question entity reaches the answer | failed passages |",
             "|---|---:|---:|---:|---:|"]
    for name, m in result["models"].items():
        lines.append(f"| {name} | {m['triples_per_question']} | {m['answer_entity']} | {m['chain_reached']} | {m['failed_passages']} |")
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (args.out / "report.md").write_text("# KG coverage of the gold chains\n\n"
                                            f"- command: `python -m placecell.evals.kg_coverage {shlex.join(argv)}`\n\n"
                                            + "\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
