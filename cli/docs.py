"""`placecell ingest`, `placecell status`, `placecell ask`."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from placecell.agents.qa.state import QAContext
from placecell.cli import app
from placecell.cli.common import console, err_console, print_json, settings_from, warn
from placecell.errors import InputError

MODEL_OPT = typer.Option(None, "--model", "-m", help="preset, .gguf path or hf:REPO/FILE (env PLACECELL_MODEL)")
HOME_OPT = typer.Option(None, "--home", help="data folder (env PLACECELL_HOME)")


def _backends(model, home):
    from placecell.agents.backends import Backends

    return Backends(settings=settings_from(model=model, home=home))


# About 500 tokens: with the passages, the path-tracking and reader prompts still fit n_ctx 4096.
MAX_QUESTION_CHARS = 2000


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="files, folders, .jsonl corpora or URLs"),
    allow_host: list[str] = typer.Option([], "--allow-host", help="allow fetching this loopback/private host (HOST: any port; HOST:PORT: that port)"),
    no_extract: bool = typer.Option(False, "--no-extract", help="vectors only, no LLM knowledge graph"),
    encoding: str = typer.Option("utf-8", "--encoding", help="text/HTML files that are not UTF-8: read them as this "
                                 "codec (cp1252, latin-1, shift_jis, ...); utf-8 skips them, named"),
    as_json: bool = typer.Option(False, "--json", help="the summary as JSON (counts, KG, seconds, warnings)"),
    model: str = MODEL_OPT,
    home: str = HOME_OPT,
) -> None:
    """Load, chunk, embed and extract a knowledge graph. Reruns on unchanged input do no LLM work."""
    from placecell.agents.ingest.state import IngestContext
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.tools.web.safety import check_allow_hosts

    check_allow_hosts(allow_host)
    backends = _backends(model, home)
    graph = build_ingest_graph(backends)
    ctx = IngestContext(allow_hosts=list(allow_host), extract=not no_extract, encoding=encoding,
                        chunk_chars=backends.settings.chunk_chars)
    start = time.perf_counter()
    result: dict = {}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[rate]:.2f} passages/s"), TimeRemainingColumn(),
                        console=err_console, disable=as_json)
    task = embedding = None
    with progress:  # Ctrl-C: cli.interrupts
        for mode, chunk in graph.stream({"sources": paths}, context=ctx, stream_mode=["custom", "values"]):
            if mode == "values":
                result = chunk
            elif chunk.get("event") == "ingest_wait":
                err_console.print(f"waiting for another ingest of this home to finish ({chunk['lock']})", markup=False)
            elif chunk.get("event") == "documents_wait":
                err_console.print(f"waiting for another ingest or remove of this home ({chunk['lock']})", markup=False)
            elif chunk.get("event") == "embed":
                if embedding is None:
                    embedding = progress.add_task("embedding", total=chunk["total"], rate=0.0)
                progress.update(embedding, completed=chunk["done"], rate=chunk["passages_per_s"])
            elif chunk.get("event") == "extract_start" and chunk["total"]:
                task = progress.add_task("extracting", total=chunk["total"], rate=0.0)
            elif chunk.get("event") == "extract" and task is not None:
                progress.update(task, completed=chunk["done"], rate=chunk["passages_per_s"])
    seconds = time.perf_counter() - start
    nothing = None if result.get("loaded") else InputError(
        "nothing was ingested: " + ("; ".join(result.get("warnings", [])) or "no input"))
    if nothing and not as_json:
        raise nothing  # one line that names every problem, not the warnings, a zero summary and it again
    for w in result.get("warnings", []):
        warn(w)
    summary = {k: result.get(k) for k in ("loaded", "passages", "new_passages", "removed_passages", "extracted", "cached",
                                          "extraction_failed")}
    summary.update({"kg": result.get("kg", {}), "seconds": round(seconds, 2),
                    "passages_per_s": round((result.get("extracted") or 0) / seconds, 3) if seconds else 0.0,
                    "warnings": result.get("warnings", [])})
    if as_json:
        print_json(summary)
    else:
        kg = summary["kg"] or {}
        console.print(
            f"{summary['passages']} passages ({summary['new_passages']} new"
            + (f", {summary['removed_passages']} no longer in their documents removed" if summary["removed_passages"] else "")
            + f"); extracted {summary['extracted']} "
            f"({summary['cached']} cached, {summary['extraction_failed'] or 0} failed) in {seconds:.1f}s; "
            f"KG: {kg.get('entities', 0)} entities, {kg.get('triples', 0)} triples, {kg.get('aliases', 0)} aliases",
            markup=False)
    if nothing:
        raise nothing
    if result.get("skipped_inputs"):  # like cp: the rest is stored, but a script must see that not all of it was
        raise InputError(f"{result['skipped_inputs']} input problem(s), see the warnings; everything else was stored")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="as JSON"), model: str = MODEL_OPT, home: str = HOME_OPT) -> None:
    """Passages, entities, triples, aliases and store size."""
    backends = _backends(model, home)
    kg = backends.load_kg()
    size = sum(p.stat().st_size for p in backends.home.rglob("*") if p.is_file()) if backends.home.exists() else 0
    info = {"home": str(backends.home), "documents": len(backends.get_registry().documents()),
            "passages": len(backends.get_registry()), "entities": len(kg.entities()),
            "triples": kg.n_triples(), "aliases": kg.n_aliases(), "store_bytes": size,
            "knowledge_graphs": len(list((backends.home / "kg").glob("*.json"))) if (backends.home / "kg").is_dir() else 0}
    if as_json:
        print_json(info)
    else:
        for k, v in info.items():
            console.print(f"{k}: {v}", markup=False)
        if info["knowledge_graphs"] > 1:  # one per extraction model; ask uses its own model's when there is one
            console.print("(entities, triples and aliases are the newest knowledge graph's)", markup=False)


@app.command()
def documents(as_json: bool = typer.Option(False, "--json", help="as JSON"), home: str = HOME_OPT) -> None:
    """The stored documents (files by absolute path, URLs) and their passage counts."""
    from placecell.agents.ingest.documents import list_documents

    docs = list_documents(_backends(None, home))
    if as_json:
        print_json(docs)
        return
    if not docs:
        console.print("no documents yet (run: placecell ingest PATH)", markup=False)
    for d in docs:
        gone = "  (file gone: placecell remove it)" if d.get("exists") is False else ""
        console.print(f"{d['passages']:6d}  {d['document']}{gone}", markup=False)


@app.command()
def remove(
    targets: list[str] = typer.Argument(..., help="files, folders (every document under them), URLs, or names as "
                                                  "`placecell documents` lists them"),
    as_json: bool = typer.Option(False, "--json", help="as JSON"),
    home: str = HOME_OPT,
) -> None:
    """Forget documents: their passages, vectors and knowledge-graph triples (no model call).

    A passage another document also holds stays. The extraction cache stays too, so ingesting the
    same text again costs no LLM call."""
    from placecell.agents.ingest.documents import remove_documents

    out = remove_documents(_backends(None, home), list(targets))
    if as_json:
        print_json(out)
    elif out["documents"] or not out["unmatched"]:
        console.print(f"removed {len(out['documents'])} document(s), {out['removed_passages']} passage(s); "
                      f"{out['passages']} passages in the store", markup=False)
    if out["unmatched"]:
        raise InputError("no stored document matches " + ", ".join(out["unmatched"]) + " (see: placecell documents)")


@app.command()
def ask(
    question: str = typer.Argument(..., help="the question"),
    method: str = typer.Option("neuropath", "--method", help="neuropath | dense | bm25 | hybrid | ppr | ircot"),
    # Defaults are QAContext's: the CLI, Studio and embedding apps run the same NeuroPath.
    mode: str = typer.Option(QAContext.mode, "--mode", help="neuropath path judging: scored | faithful"),
    top_k: int = typer.Option(QAContext.top_k, "--top-k", min=1, max=20, help="passages given to the reader"),
    max_hop: int = typer.Option(QAContext.max_hop, "--max-hop", min=1, max=5),
    fuse_bm25: bool = typer.Option(QAContext.fuse_bm25, "--fuse-bm25/--no-fuse-bm25", help="neuropath scored mode: fuse its ranking with BM25 (reciprocal rank)"),
    path_probe: str = typer.Option(QAContext.path_probe, "--path-probe", help="neuropath scored mode: none (no LLM path calls: similarity + structure) | each (a yes/no LLM probe per path) | list"),
    reason_rounds: int = typer.Option(QAContext.reason_rounds, "--reason-rounds", min=0, max=5, help="neuropath scored mode: rounds that end with an LLM reasoning call; later rounds reuse the last one"),
    cover_entities: bool = typer.Option(QAContext.cover_entities, "--cover-entities/--no-cover-entities", help="neuropath scored mode: rank first the pair of top passages that mention the most question entities"),
    title_links: bool = typer.Option(QAContext.title_links, "--title-links/--no-title-links", help="neuropath scored mode: after the top two passages, rank the passages whose titles they name"),
    link_depth: int = typer.Option(QAContext.link_depth, "--link-depth", min=1, max=2, help="title links: 1 = the passages the top two name; 2 = free places go to the passages those name"),
    keep_nearest: int = typer.Option(QAContext.keep_nearest, "--keep-nearest", min=0, max=5, help="neuropath scored mode: the question's N nearest passages by embedding always reach the reader's top-k"),
    as_json: bool = typer.Option(False, "--json", help="answer, citations (title, passage_id, source), paths, notes and usage as JSON"),
    model: str = MODEL_OPT,
    home: str = HOME_OPT,
) -> None:
    """Answer a question from the ingested documents, with cited passages and the path used."""
    from placecell.agents.qa.neuropath import PROBES
    from placecell.agents.qa.state import METHODS

    question = question.strip()
    if not question:
        raise InputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:  # the prompt error would advise a bigger context or a lower top_k
        raise InputError(f"the question is {len(question)} characters long; ask in at most {MAX_QUESTION_CHARS} "
                         "(ingest long text as a document instead)")
    if method not in METHODS:
        raise InputError(f"unknown method '{method}' (known: {', '.join(METHODS)})")
    if mode not in ("scored", "faithful"):
        raise InputError(f"unknown mode '{mode}' (known: scored, faithful)")
    if path_probe not in PROBES:
        raise InputError(f"unknown path probe '{path_probe}' (known: {', '.join(PROBES)})")
    ctx = QAContext(method=method, mode=mode, top_k=top_k, rank_k=max(QAContext.rank_k, top_k), max_hop=max_hop, fuse_bm25=fuse_bm25, path_probe=path_probe,
                    reason_rounds=reason_rounds, cover_entities=cover_entities, title_links=title_links,
                    link_depth=link_depth, keep_nearest=keep_nearest)
    answer_question(question, ctx, as_json=as_json, model=model, home=home)


def answer_question(question: str, ctx: QAContext, *, as_json: bool, model: str | None, home: str | None) -> None:
    """Run the QA graph with these settings; print the path steps, the answer, citations and paths."""
    from placecell.graphs.qa import build_qa_graph
    from placecell.tools.llm import usage_scope

    graph = build_qa_graph(_backends(model, home))
    result: dict = {}
    with usage_scope() as usage:
        for stream_mode, chunk in graph.stream({"question": question}, context=ctx,
                                               stream_mode=["custom", "values"]):
            if stream_mode == "values":
                result = chunk
            elif not as_json:
                _show_step(chunk)
    out = {"answer": result.get("answer", ""), "citations": result.get("citations", []),
           "paths": result.get("paths", []), "notes": result.get("notes", []), "usage": usage.totals()}
    if as_json:
        print_json(out)
        return
    for note in out["notes"]:  # fallbacks taken and stale stores, said once, after the path steps
        err_console.print(f"note: {note}", markup=False)
    console.print(f"\n{out['answer'] or '(no answer)'}", markup=False)
    for i, c in enumerate(out["citations"], 1):
        console.print(f"  [{i}] {c['title']}  ({c['passage_id']})" + (f"  {c['source']}" if c.get("source") else ""),
                      markup=False)
    for p in out["paths"][:3]:
        console.print("  path: " + " ; ".join(" -> ".join(t) for t in p["triples"]), markup=False)


def _show_step(event: dict) -> None:
    kind = event.get("event")
    if kind == "entities":
        err_console.print(f"entities: {', '.join(event['entities']) or '(none)'}", markup=False)
    elif kind == "seeds":
        err_console.print(f"seeds: {', '.join(event['seeds'][:8])} -> {event['paths']} paths", markup=False)
    elif kind == "paths":
        for p in event["valid"][:3]:
            err_console.print(f"hop {event['hop']}: {p}", markup=False)
    elif kind == "cover":
        titles = "; ".join(event["titles"])
        err_console.print(f"first, the two passages that name the most question entities: {titles}", markup=False)
    elif kind == "links":
        err_console.print(f"next, the passages named in {'; '.join(event['from'])}: {'; '.join(event['titles'])}",
                          markup=False)
    elif kind == "nearest":
        err_console.print(f"kept for the reader, nearest to the question: {'; '.join(event['titles'])}", markup=False)


DEMO_QUESTION = "Longleat Safari Park is the grounds of the home of the politician who was styled as what title between 1946-92?"


@app.command()
def demo(model: str = MODEL_OPT, home: str = HOME_OPT) -> None:
    """Ingest the bundled demo corpus (36 HotpotQA passages) and answer a two-hop question."""
    from importlib import resources

    corpus = resources.files("placecell.tools") / "assets" / "demo" / "corpus.jsonl"
    with resources.as_file(corpus) as path:
        console.print(f"ingesting the demo corpus ({path})", markup=False)
        ingest([str(path)], allow_host=[], no_extract=False, encoding="utf-8", as_json=False, model=model, home=home)
    console.print(f"\nQ: {DEMO_QUESTION}", markup=False)
    answer_question(DEMO_QUESTION, QAContext(), as_json=False, model=model, home=home)
