"""report.md and the recall@k plot of the multi-hop eval."""

from __future__ import annotations

import platform
from pathlib import Path

from placecell.evals.multihop_metrics import KS
from placecell.tools.llm.llamacpp import usable_cores as nproc  # what `nproc` prints

COLUMNS = [("recall@1", "R@1"), ("recall@2", "R@2"), ("recall@5", "R@5"), ("recall@10", "R@10"), ("em", "EM"),
           ("f1", "F1"), ("tokens_per_question", "tokens/q"), ("retrieval_tokens_per_question", "retrieval tokens/q"),
           ("llm_calls_per_question", "LLM calls/q"),
           ("p50_seconds", "p50 s"), ("p95_seconds", "p95 s"), ("llm_time_share", "LLM time share")]
PERCENT = {"recall@1", "recall@2", "recall@5", "recall@10", "em", "f1"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cell(key: str, value) -> str:
    if value is None:
        return "n/a"
    if key in PERCENT:
        return f"{100 * value:.1f}"
    if key == "llm_time_share":
        return f"{value:.2f}"
    return f"{value:g}"


def kg_line(kg: dict) -> str:
    if not kg:
        return "KG: not built (no method here needs it)"
    return f"KG: {kg.get('entities', 0)} entities, {kg.get('triples', 0)} triples, {kg.get('aliases', 0)} aliases"


METHOD_NOTES = {
    "neuropath": "NeuroPath as `placecell ask` runs it, with the defaults of the day of the run",
    "neuropath_bm25_lean_cover_links_near": "the default since session 14 under a name that never moves: neuropath_bm25_lean_cover_links, then the question's nearest passage kept in the top 5",
    "neuropath_bm25_lean_cover_links": "neuropath_bm25_lean_cover, then the passages the top two name by title at ranks 3-5 (the default in sessions 12-13)",
    "neuropath_bm25_lean_cover": "neuropath_bm25_lean, then the pair of top-10 passages that mention the most question entities ranked first (the default in session 11)",
    "neuropath_bm25_lean": "scored paths without LLM probes (similarity + structure), one reasoning call after hop 1, final ranking fused with BM25 (the default until session 11)",
    "neuropath_bm25": "scored path judging with a yes/no LLM probe per path and a reasoning call per hop, fused with BM25 (`ask --path-probe each --reason-rounds 2 --no-cover-entities --no-title-links --keep-nearest 0`; the default until 2026-11-26)",
    "neuropath_probe": "as neuropath_bm25, the paths' own ranking (the same `ask` flags and `--no-fuse-bm25`; called `neuropath` in reports made before session 15)",
    "neuropath_faithful": "the paper's path-tracking call as published (`ask --mode faithful`)",
    "neuropath_bm25_noprobe": "as neuropath_bm25 but no LLM path probes: paths scored by similarity + structure (`ask --reason-rounds 2 --no-cover-entities --no-title-links --keep-nearest 0`)",
}


def method_legend(methods: dict) -> list[str]:
    lines = []
    for name, m in methods.items():
        if name not in METHOD_NOTES:
            continue
        settings = m.get("settings")
        detail = f" ({', '.join(f'{k}={v}' for k, v in settings.items() if k != 'method')})" if settings else ""
        lines.append(f"- `{name}`: {METHOD_NOTES[name]}{detail}")
    return lines


def metrics_table(methods: dict) -> list[str]:
    lines = ["| method | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, m in methods.items():
        lines.append(f"| {name} | " + " | ".join(_cell(key, m.get(key)) for key, _ in COLUMNS) + " |")
    return lines


def write_report(results: dict, cfg, ingest: dict, path: Path) -> None:
    corpus, kg = results["corpus"], results["corpus"].get("kg") or {}
    lines = [
        "# Multi-hop QA eval",
        "",
        f"- command: `{results['provenance']['command']}`",
        f"- date (UTC): {results['provenance']['date']}",
        f"- model: `{results['model']}`"
        + (f"; knowledge graph extracted by `{results['kg_model']}`" if results.get("kg_model") else ""),
        f"- machine: {results['provenance']['machine']}",
        f"- questions: {results['questions']} from `{cfg.questions}` (sha256 {results['questions_file']['sha256'][:12]})",
        f"- corpus: `{cfg.corpus}` (sha256 {corpus['sha256'][:12]}), {corpus['passages']} passages; {kg_line(kg)}",
        f"- recall level: {results['recall_level']} (against "
        f"{'supporting_titles' if results['recall_level'] == 'title' else 'supporting_passages'}); "
        f"ranking length {max(KS)}",
        f"- reader: {'on (EM/F1 over answer + aliases, SQuAD normalisation)' if cfg.answer else 'off (--retrieval-only)'}",
        "",
        "Recalls, EM and F1 in %. Tokens = prompt + completion tokens of every LLM call made for the "
        "question (query NER, path judging, IRCoT steps, reader); indexing (extraction) is not included. "
        "Retrieval tokens = the same without the reader's call, the calls the NeuroPath paper counts when it "
        "compares token cost with IRCoT (its section 5.4; the query NER call is counted here too). "
        "Seconds and LLM time share = time inside LLM calls / wall time of the questions, where wall time "
        "excludes waiting for the model's turn while another process used it (`wait_share` in results.json "
        "is the share of raw wall time spent waiting; `p50_wall_seconds` the raw median).",
        "",
        *metrics_table(results["methods"]),
        "",
        *method_legend(results["methods"]),
        "",
        "![recall@k per method](recall_at_k.png)",
        "",
        *notes(results, ingest),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def notes(results: dict, ingest: dict) -> list[str]:
    corpus = results["corpus"]
    out = []
    if corpus["gold_passages_found"] < corpus["gold_passages"]:
        out.append(f"- {corpus['gold_passages'] - corpus['gold_passages_found']} of {corpus['gold_passages']} gold "
                   "passages are not in the corpus verbatim: passage-level recall counts them as missed.")
    if ingest.get("extraction_failed"):
        out.append(f"- extraction failed on {ingest['extraction_failed']} passages (no triples from them).")
    out += [f"- ingest: {w}" for w in ingest.get("warnings") or []]
    return ["## Notes", "", *out] if out else []


def write_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, m in results["methods"].items():
        ax.plot(KS, [100 * m[f"recall@{k}"] for k in KS], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(KS, [str(k) for k in KS])
    ax.set_xlabel("k")
    ax.set_ylabel(f"recall@k (%, {results['recall_level']} level)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{results['questions']} questions, model {results['model']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
