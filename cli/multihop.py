"""`placecell eval multihop`: NeuroPath against dense, BM25, hybrid, PPR and IRCoT."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from placecell.cli import eval_app
from placecell.cli.common import console, err_console, writable_dir
from placecell.evals.multihop import DEFAULT_METHODS, METHODS


@eval_app.command("multihop")
def multihop(
    questions: Path = typer.Option(..., "--questions", help="questions JSONL (id, question, answer, answer_aliases, "
                                   "supporting_titles, supporting_passages)"),
    corpus: Path = typer.Option(..., "--corpus", help="corpus JSONL of {title, text}; used whole"),
    out: Path = typer.Option(..., "--out", help="folder for results.json, report.md, the plot and checkpoints"),
    limit: Optional[int] = typer.Option(None, "--limit", help="run the first N questions"),
    methods: str = typer.Option(",".join(DEFAULT_METHODS), "--methods",
                                help=f"comma-separated methods to run (known: {', '.join(METHODS)})"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="model preset, .gguf path or hf:REPO/FILE"),
    kg_model: Optional[str] = typer.Option(None, "--kg-model", help="extract the knowledge graph with this model "
                                           "(e.g. qwen2.5-coder-1.5b); the methods still run on --model"),
    alias_containment: bool = typer.Option(False, "--alias-containment", help="also alias each KG entity name to "
                                           "the shorter entity names it contains (\"r b singer lou rawls\" -> \"lou rawls\")"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="ingest cache (default: the committed evals/cache)"),
    recall_level: str = typer.Option("passage", "--recall-level", help="passage (supporting_passages) | title "
                                     "(supporting_titles)"),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="skip the reader: recall only, no EM/F1"),
) -> None:
    """Recall@1/2/5/10, EM/F1, tokens, LLM calls and latency per method; resumes an interrupted run."""
    from placecell.evals.multihop import DEFAULT_CACHE, EvalConfig, parse_methods, run_eval

    writable_dir(out)  # before the ingest, which can take hours
    cfg = EvalConfig(questions=questions, corpus=corpus, out=out, methods=parse_methods(methods), limit=limit,
                     model=model, kg_model=kg_model, alias_containment=alias_containment,
                     cache=cache or DEFAULT_CACHE, recall_level=recall_level, answer=not retrieval_only)
    results = run_eval(cfg, progress=lambda msg: err_console.print(msg, markup=False))
    for name, m in results["methods"].items():
        em = "n/a" if m["em"] is None else f"{100 * m['em']:.1f}"
        console.print(f"{name:>20}: R@2 {100 * m['recall@2']:.1f}  R@5 {100 * m['recall@5']:.1f}  EM {em}  "
                      f"tokens/q {m['tokens_per_question']:g}  p50 {m['p50_seconds']:.2f}s", markup=False)
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'recall_at_k.png'}", markup=False)
