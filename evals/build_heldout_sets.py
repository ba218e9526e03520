"""Build the held-out multi-hop sets for MuSiQue and 2Wiki (sets no NeuroPath setting was tuned on).

    python -m placecell.evals.build_heldout_sets SHARED_MULTIHOP_DIR [musique_hipporag] [wiki_dev]

Run once by hand; it writes `evals/data/multihop/{musique_hipporag,2wikimultihopqa_dev}/slice*_*.jsonl`,
which are committed with their sha256 in `evals/data/multihop/SOURCE.md`. Nothing reads the shared
folder at run or test time.

- MuSiQue: HippoRAG's own train-split subset (`extra/musique_hipporag_train100`). Its corpus lists each
  question's 20 context paragraphs in question order, so the first N questions and every passage
  before question N+1's first gold passage make a self-contained set (the rule the HotpotQA
  held-out set uses). N = 20 (session 12) and N = 50 (session 14; a superset of the 20, so 20
  questions no longer decide a change on their own).
- 2Wiki: dev questions 50-74, which the `slice50` sets leave out. The shared dev corpus is shuffled
  and does not say which distractors were retrieved for which question, so each question gets its
  gold passages plus the 4 nearest by MiniLM and the 4 best by BM25 among the dev passages that are
  not in `slice50_corpus.jsonl` (the originals were a BGE retriever's top 10). Choosing distractors
  with MiniLM makes them harder for the dense baseline than BGE's were: compare methods with each
  other on this set, not with the slices' absolute numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "multihop"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def musique_hipporag(shared: Path, n: int = 20) -> None:
    src = shared / "extra" / "musique_hipporag_train100"
    questions, corpus = _read(src / "dev_questions.jsonl"), _read(src / "dev_corpus.jsonl")
    where = {(p["title"], p["text"]): i for i, p in enumerate(corpus)}
    cut = min(where[(p["title"], p["text"])] for p in questions[n]["supporting_passages"])
    _write(OUT / "musique_hipporag" / f"slice{n}_questions.jsonl", questions[:n])
    _write(OUT / "musique_hipporag" / f"slice{n}_corpus.jsonl", corpus[:cut])


def wiki_dev(shared: Path, first: int = 50, n: int = 25, per_retriever: int = 4) -> None:
    from rank_bm25 import BM25Okapi

    from placecell.tools.embed import Embedder
    from placecell.tools.retrievers import tokenize

    src = shared / "2wikimultihopqa"
    questions = _read(src / "dev_questions.jsonl")[first:first + n]
    used = {(p["title"], p["text"]) for p in _read(src / "slice50_corpus.jsonl")}
    gold = {(p["title"], p["text"]) for q in questions for p in q["supporting_passages"]}
    pool = [p for p in _read(src / "dev_corpus.jsonl") if (p["title"], p["text"]) not in used | gold]
    strings = [f"{p['title']}\n{p['text']}" for p in pool]
    embedder = Embedder()
    vectors = embedder.embed(strings)
    index = BM25Okapi([tokenize(s) for s in strings])
    corpus: list[dict] = []
    seen: set[tuple[str, str]] = set()

    def add(p: dict) -> None:
        if (p["title"], p["text"]) not in seen:
            seen.add((p["title"], p["text"]))
            corpus.append({"title": p["title"], "text": p["text"]})

    for q in questions:
        for p in q["supporting_passages"]:
            add(p)
        by_dense = np.argsort(-(vectors @ embedder.embed_one(q["question"])), kind="stable")
        by_bm25 = np.argsort(-index.get_scores(tokenize(q["question"])), kind="stable")
        for order in (by_dense, by_bm25):
            taken = 0
            for i in order:
                if taken == per_retriever:
                    break
                if (pool[i]["title"], pool[i]["text"]) not in seen:
                    add(pool[i])
                    taken += 1
    _write(OUT / "2wikimultihopqa_dev" / f"slice{n}_questions.jsonl", questions)
    _write(OUT / "2wikimultihopqa_dev" / f"slice{n}_corpus.jsonl", corpus)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.build_heldout_sets", description=__doc__.splitlines()[0])
    parser.add_argument("shared_dir", type=Path, help="the shared multi-hop data folder")
    parser.add_argument("sets", nargs="*", metavar="SET", help="musique_hipporag and/or wiki_dev (default: both)")
    args = parser.parse_args()
    if unknown := set(args.sets) - {"musique_hipporag", "wiki_dev"}:
        parser.error(f"unknown set(s) {', '.join(sorted(unknown))} (known: musique_hipporag, wiki_dev)")
    if not args.shared_dir.is_dir():
        parser.error(f"{args.shared_dir} is not a folder")
    shared_dir, which = args.shared_dir, set(args.sets) or {"musique_hipporag", "wiki_dev"}
    if "musique_hipporag" in which:
        musique_hipporag(shared_dir, 20)
        musique_hipporag(shared_dir, 50)
    if "wiki_dev" in which:
        # Its BM25 distractors were chosen before accent folding (session 13): a rebuild now may
        # pick other distractors than the committed files, whose sha256 SOURCE.md records.
        wiki_dev(shared_dir)
