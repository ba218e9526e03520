"""Replay NeuroPath's completion step under variants that are not product settings, on saved traces.

    python -m placecell.evals.completion_variants [--sets mus50,2wk25,hot30,S-mus,S-2wk,S-hot]

`complete_replay` reruns `agents.qa.nodes.complete_ranking` with changed `QAContext` settings. The
variants here change the step's parts instead (how the fusion weighs its lists, extra lists, extra
title keys, a bridge query), by patching the functions it calls for the length of one replay. They
were tried in session 15 to gain a margin on MuSiQue and none was adopted (evals/RESULTS.md, "What
else was replayed"); this module keeps that table reproducible. No LLM call: the traced reports
below and their corpus homes in the cache are all it reads. Prints R@2 / R@5 per set, in %.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
from pathlib import Path

import numpy as np

# name -> (report folder, question/corpus stem under evals/data/multihop, method in the checkpoints)
TRACED = {
    "mus50": ("multihop_musique_hipporag_slice50", "musique_hipporag/slice50", "neuropath_bm25_lean_cover_links"),
    "2wk25": ("multihop_2wikimultihopqa_dev_slice25_trace", "2wikimultihopqa_dev/slice25", "neuropath_bm25_lean_cover_links"),
    "hot30": ("multihop_hotpotqa_hipporag_slice30_trace", "hotpotqa_hipporag/slice30", "neuropath_bm25_lean_cover_links"),
    "S-mus": ("multihop_musique_near", "musique/slice50", "neuropath_bm25_lean_cover_links_near"),
    "S-2wk": ("multihop_2wikimultihopqa_near", "2wikimultihopqa/slice50", "neuropath_bm25_lean_cover_links_near"),
    "S-hot": ("multihop_hotpotqa_near", "hotpotqa/slice50", "neuropath_bm25_lean_cover_links_near"),
}
EVALS = Path(__file__).resolve().parent

# label -> variant; keys: bm25_weight, rrf_k, dense_list (weight of the question's dense ranking as
# a third fused list), comma_titles ("Rochester, New York" also linked as "Rochester"),
# one_per_title (a second passage of a title already in the top 5 moves below it), bridge (the
# first new passage by dense(question + top passage's text) joins the top 5), fuse_bm25.
VARIANTS: dict[str, dict] = {
    "default (as shipped)": {},
    "no BM25 fusion": {"fuse_bm25": False},
    "BM25 list weight 0.5": {"bm25_weight": 0.5},
    "RRF k 5 (instead of 60)": {"rrf_k": 5},
    "+ the question's dense ranking as a third list": {"dense_list": 1.0},
    "  the same, RRF k 5": {"dense_list": 1.0, "rrf_k": 5},
    "titles 'Name, Place' also linked as 'Name'": {"comma_titles": True},
    "one passage per title in the top 5": {"one_per_title": True},
    "bridge: dense(question + top passage)": {"bridge": True},
}


@contextlib.contextmanager
def patched(variant: dict, question: dict, backends):
    """Swap the retrievers' fusion and title index for the variant's, for one call."""
    from placecell.tools import retrievers

    real_rrf, real_titles = retrievers.rrf, retrievers.title_index

    def rrf(rankings, k=None, rrf_k=retrievers.RRF_K):
        lists = [(1.0, rankings[0]), (variant.get("bm25_weight", 1.0), rankings[1])]
        if variant.get("dense_list"):
            lists.append((variant["dense_list"], retrievers.dense(question["question"], backends, None)))
        fused: dict[str, float] = {}
        for weight, ranking in lists:
            for rank, (pid, _) in enumerate(ranking, 1):
                fused[pid] = fused.get(pid, 0.0) + weight / (variant.get("rrf_k", rrf_k) + rank)
        ids = list(fused)
        return retrievers._top(ids, np.array([fused[i] for i in ids]), k)

    def title_index(b):
        def build():  # once per corpus state, through the retrievers' own index cache
            index = {key: list(ids) for key, ids in real_titles(b).items()}
            for passage in b.get_registry().all():
                bare = retrievers.title_key(passage.title.split(", ")[0]) if ", " in passage.title else ""
                if bare and not bare.isdigit() and passage.id not in index.setdefault(bare, []):
                    index[bare].append(passage.id)
            return index

        return retrievers._cached("titles+comma", b.get_registry(), build)

    retrievers.rrf = rrf
    if variant.get("comma_titles"):
        retrievers.title_index = title_index
    try:
        yield
    finally:
        retrievers.rrf, retrievers.title_index = real_rrf, real_titles


def rank(variant: dict, question: dict, trace: dict, backends, ctx) -> list[str]:
    from placecell.agents.qa.neuropath import passage_body
    from placecell.agents.qa.nodes import complete_ranking
    from placecell.tools.retrievers import dense

    ctx = dataclasses.replace(ctx, **{k: v for k, v in variant.items() if k == "fuse_bm25"})
    with patched(variant, question, backends):
        ranking = complete_ranking(backends, ctx, question["question"], trace["candidates"], trace["chain"],
                                   trace["requirements"], trace["entities"])
    registry, top = backends.get_registry(), ctx.top_k
    if variant.get("one_per_title"):
        rows, seen, head, later = registry.get_many(ranking), set(), [], []
        for pid in ranking:
            (later if rows[pid].title in seen and len(head) < top else head).append(pid)
            seen.add(rows[pid].title)
        ranking = head[:top] + later + head[top:]
    if variant.get("bridge"):
        first = registry.get_many(ranking[:1])[ranking[0]]
        query = f"{question['question']} {passage_body(first.title, first.text)}"
        new = [pid for pid, _ in dense(query, backends, 20) if pid not in ranking[:top]][:1]
        rest = [pid for pid in ranking if pid not in new]
        ranking = rest[: top - 1] + new + rest[top - 1:]
    return ranking[: ctx.rank_k]


@functools.lru_cache(maxsize=None)
def load_set(name: str, cache: Path):
    """(backends, questions, checkpoint rows, the shipped context) of a traced set, read once."""
    from placecell.evals.multihop import EvalConfig, file_sha256, load_questions, make_backends, qa_context
    from placecell.tools.stores.jsonl_cache import JsonlCache

    report, stem, method = TRACED[name]
    questions_file = EVALS / "data" / "multihop" / f"{stem}_questions.jsonl"
    corpus = EVALS / "data" / "multihop" / f"{stem}_corpus.jsonl"
    backends = make_backends(EvalConfig(questions=questions_file, corpus=corpus, out=EVALS / "reports" / report, cache=cache),
                             file_sha256(corpus))
    rows = JsonlCache(EVALS / "reports" / report / "checkpoints" / f"{method}.jsonl")
    ctx = dataclasses.replace(qa_context(method, False), keep_nearest=1)  # the shipped default
    return backends, load_questions(questions_file, "passage"), rows, ctx


def recalls(name: str, variant: dict, cache: Path) -> tuple[float, float]:
    from placecell.evals import multihop_metrics as metrics

    backends, questions, rows, ctx = load_set(name, cache)
    registry = backends.get_registry()
    r2 = r5 = 0.0
    for q in questions:
        ranking = rank(variant, q, rows.get(q["id"])["trace"], backends, ctx)[:5]
        rows_by_id = registry.get_many(ranking)
        texts = [rows_by_id[pid].text for pid in ranking]
        gold = metrics.gold_items(q, "passage")
        r2 += metrics.recall_at_k(texts, gold, 2)
        r5 += metrics.recall_at_k(texts, gold, 5)
    return 100 * r2 / len(questions), 100 * r5 / len(questions)


def main(argv: list[str] | None = None) -> int:
    from placecell.evals.multihop import DEFAULT_CACHE

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.completion_variants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(TRACED), help=f"comma-separated, of {', '.join(TRACED)}")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in sets if s not in TRACED]
    if unknown:
        parser.exit(2, f"error: unknown set(s) {', '.join(unknown)}; choose from {', '.join(TRACED)}\n")
    print("| variant (R@2 / R@5) | " + " | ".join(sets) + " |")
    print("|---|" + "---|" * len(sets))
    for label, variant in VARIANTS.items():
        cells = [f"{r2:.1f} / {r5:.1f}" for r2, r5 in (recalls(s, variant, args.cache) for s in sets)]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
