"""Build a labelled set of KG paths for measuring path-judge precision.

    python -m placecell.evals.build_path_judge_set --questions Q.jsonl --corpus C.jsonl \
        [--cache DIR] [--model PRESET] --out evals/data/path_judge/<dataset>.jsonl

Uses the KG the eval harness built for the corpus (same per-corpus home under the cache; run
`placecell eval multihop` with a KG method first). For each question it makes the candidate
paths the judge would see, without an LLM: seeds = KG entities named in the question (plus
aliases), one-triple paths from them, and their one-triple extensions, each pruned by embedding
similarity to the question like NeuroPath's round-1 pruning.

Labelling rule (deterministic, see README.md next to the output):
- relevant (1): every passage the path comes from is a gold supporting passage, and the path
  mentions an answer entity (answer or alias) or a bridge entity (an entity of a gold passage's
  triples whose name occurs in the text of at least two gold passages);
- irrelevant (0): anything else (a non-gold passage on the path, or a gold passage's fact that
  touches neither the answer nor a bridge).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from placecell.agents.qa import neuropath as npath
from placecell.errors import InputError
from placecell.evals import multihop as harness
from placecell.evals.multihop_metrics import passage_string
from placecell.tools.stores.kg import normalize_entity

HOP1_WIDTH, HOP2_FROM, HOP2_WIDTH = 15, 5, 5


def phrase_in(small: str, big: str) -> bool:
    """`small` occurs in `big` as whole words (both normalised)."""
    return bool(small) and f" {small} " in f" {big} "


def mentions(path: dict, entities: set[str]) -> bool:
    ends = {e for h, _, t in path["triples"] for e in (h, t)}
    return any(phrase_in(e, end) or (len(end) >= 4 and phrase_in(end, e)) for e in entities for end in ends)


def bridge_entities(kg, gold_ids: list[str], texts: dict[str, str]) -> set[str]:
    """Entities of the gold passages' triples that occur, as whole words, in the text of at least
    two gold passages. Text, not triples: a small extractor copies entities from its prompt's
    example into unrelated passages, and those must not count as links."""
    ents = {e for pid in gold_ids for h, _, t in kg.passage_triples.get(pid, []) for e in (h, t)}
    return {e for e in ents if sum(phrase_in(e, texts[pid]) for pid in gold_ids) >= 2}


def label(path: dict, gold_ids: set[str], key_entities: set[str]) -> tuple[int, str]:
    if not all(pid in gold_ids for pid in path["passage_ids"]):
        return 0, "a passage on the path is not gold"
    if mentions(path, key_entities):
        return 1, "gold passages, mentions an answer or bridge entity"
    return 0, "gold passages, but neither answer nor bridge entity"


def question_seeds(kg, question: str) -> list[str]:
    q = normalize_entity(question)
    named = [e for e in kg.entities() if len(e) >= 3 and phrase_in(e, q)]
    seeds: list[str] = []
    for e in sorted(named, key=len, reverse=True):
        for s in [e, *kg.aliases(e)]:
            if s not in seeds:
                seeds.append(s)
    return seeds


def candidate_paths(kg, embed, question: str) -> list[dict]:
    hop1 = npath.prune(embed, npath.hop1_paths(kg, question_seeds(kg, question)), question, HOP1_WIDTH)
    known = {npath.path_text(p) for p in hop1}
    hop2 = npath.expand_paths(kg, hop1[:HOP2_FROM], known)
    return hop1 + npath.prune(embed, hop2, question, HOP2_WIDTH)


def label_question(kg, embed, q: dict, ids_by_text: dict[str, str], texts: dict[str, str]) -> list[dict]:
    gold_ids = [ids_by_text[s] for s in (passage_string(p["title"], p["text"]) for p in q["supporting_passages"])
                if s in ids_by_text]
    answers = {normalize_entity(a) for a in [q["answer"], *q.get("answer_aliases", [])]} - {""}
    key_entities = answers | bridge_entities(kg, gold_ids, texts)
    rows = []
    for path in candidate_paths(kg, embed, q["question"]):
        value, why = label(path, set(gold_ids), key_entities)
        rows.append({"id": q["id"], "question": q["question"], "path_text": npath.path_text(path),
                     "triples": path["triples"], "passage_ids": path["passage_ids"], "frontier": path["frontier"],
                     "label": value, "why": why})
    return rows


def build(questions: Path, corpus: Path, cache: Path, model: str | None) -> list[dict]:
    cfg = harness.EvalConfig(questions=questions, corpus=corpus, out=Path("."), cache=cache, model=model)
    backends = harness.make_backends(cfg, harness.file_sha256(corpus))
    kg = backends.load_kg()
    if not kg.n_triples():
        raise InputError(f"no knowledge graph for {corpus} under {backends.home}: run `placecell eval multihop "
                         "--methods ppr` on it first")
    registry = backends.get_registry()
    texts = {p.id: normalize_entity(p.text) for p in registry.all()}
    ids_by_text = {p.text: p.id for p in registry.all()}
    embed = backends.get_embedder().embed
    return [row for q in harness.load_questions(questions) for row in label_question(kg, embed, q, ids_by_text, texts)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=harness.DEFAULT_CACHE)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rows = build(args.questions, args.corpus, args.cache, args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    positives = sum(r["label"] for r in rows)
    print(f"{len(rows)} paths over {len({r['id'] for r in rows})} questions, {positives} relevant -> {args.out}")


if __name__ == "__main__":
    main()
