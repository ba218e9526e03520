"""`placecell chat` (a REPL over the chat router graph) and `placecell threads`.

Threads persist in PLACECELL_HOME/chat.sqlite (LangGraph's SQLite checkpointer), or in Postgres when
PLACECELL_CHECKPOINT_URL is set (`tools/stores/checkpoints.py`). Answer tokens
stream from the answering nodes (`messages` mode, filtered by node); path-tracking steps and
routing show as they happen (`custom` mode). Ctrl-C stops the current answer, not the session.
"""

from __future__ import annotations

import sqlite3
import sys
import time

import typer

from placecell.cli import app, interrupts
from placecell.cli.common import console, err_console, settings_from

MODEL_OPT = typer.Option(None, "--model", "-m", help="preset, .gguf path or hf:REPO/FILE (env PLACECELL_MODEL)")
HOME_OPT = typer.Option(None, "--home", help="data folder (env PLACECELL_HOME)")
ANSWER_NODES = {"read", "reply"}  # nodes whose tokens are the answer (QA's reader, the plain reply)
HELP = """commands:
  /ingest PATH   add a file, folder or URL (vectors and knowledge graph); a file ingested again
                 replaces what it held; files that are not UTF-8 need chat --encoding NAME
  /remove PATH   forget a document (a folder: every document under it)
  /sources       list the ingested documents
  /model [NAME]  show the model in use, or switch to another preset or .gguf
  /new [NAME]    start a new thread (named, or a fresh name)
  /help          this help
  /exit          leave (Ctrl-D too); Ctrl-C stops the current answer
anything else is sent to the router: questions about your documents, recommendation requests,
"ingest PATH", or plain chat."""


def list_threads(settings) -> list[tuple[str, int]]:
    """(thread id, checkpoints), most recently used first, from the configured checkpointer."""
    from placecell.tools.stores.checkpoints import list_threads as saved_threads
    from placecell.tools.stores.checkpoints import open_checkpointer, sqlite_path

    if not settings.checkpoint_url and not sqlite_path(settings).exists():
        return []  # listing creates nothing
    with open_checkpointer(settings, setup=bool(settings.checkpoint_url)) as saver:
        return saved_threads(saver)


@app.command()
def threads(model: str = MODEL_OPT, home: str = HOME_OPT) -> None:
    """List saved chat threads (resume one with `placecell chat --thread NAME`)."""
    found = list_threads(settings_from(model=model, home=home))
    if not found:
        console.print("no threads yet", markup=False)
    for name, _ in found:
        console.print(name if name.isprintable() else ascii(name), markup=False)  # names saved before they were checked


class _Printer:
    """Writes streamed output; plain text without colour when stdout is not a terminal."""

    def __init__(self) -> None:
        self.streamed = False

    def token(self, text: str) -> None:
        self.streamed = True
        sys.stdout.write(text)
        sys.stdout.flush()

    def step(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "route":
            line = f"route: {event['route']} ({event['by']})"
        elif kind == "entities":
            line = f"entities: {', '.join(event['entities']) or '(none)'}"
        elif kind == "seeds":
            line = f"seeds: {', '.join(event['seeds'][:8]) or '(none)'} -> {event['paths']} paths"
        elif kind == "paths":
            line = "\n".join(f"hop {event['hop']}: {p}" for p in event.get("valid", [])[:3]) or f"hop {event['hop']}"
        elif kind in ("fetch", "search"):
            line = f"{kind}: {event.get('url') or event.get('query', '')}"
        else:
            return
        if line:
            err_console.print(line, style="dim", markup=False)


def run_turn(graph, text: str, config: dict, context, printer: _Printer) -> dict:
    """One turn: stream steps and answer tokens, then print what was not streamed (citations,
    carousels, ingest summaries). Returns the turn's final state values."""
    from langchain_core.messages import AIMessageChunk

    values: dict = {}
    printer.streamed = False
    for namespace, mode, chunk in graph.stream({"messages": [("user", text)]}, config, context=context,
                                               stream_mode=["messages", "custom", "values"], subgraphs=True):
        if mode == "custom":
            printer.step(chunk)
        elif mode == "messages":
            message, meta = chunk
            # chunks only: the node's final message arrives here too and was already streamed
            if (meta.get("langgraph_node") in ANSWER_NODES and isinstance(message, AIMessageChunk)
                    and isinstance(message.content, str)):
                printer.token(message.content)
        elif mode == "values" and not namespace:
            values = chunk
    last = values.get("messages", [None])[-1] if values.get("messages") else None
    body = last.content if last is not None and getattr(last, "type", "") == "ai" else ""
    if printer.streamed:
        # the answer's text is on screen already; add what code appended (citations)
        tail = body.split("\n\nSources:\n", 1)[1] if "\n\nSources:\n" in body else ""
        sys.stdout.write("\n" + ("\nSources:\n" + tail + "\n" if tail else ""))
    else:
        sys.stdout.write(body + "\n")
    sys.stdout.flush()
    return values


def _read_line(prompt: str) -> str | None:
    """The next line (None at end of input). Ctrl-C at the prompt clears the line, as in a shell."""
    try:
        if sys.stdin.isatty():
            return input(prompt)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\n")
    except EOFError:
        return None
    except KeyboardInterrupt:
        interrupts.handled()
        sys.stdout.write("\n")
        return ""


@app.command()
def chat(
    thread: str = typer.Option(None, "--thread", "-t", help="thread name to resume or start (default: a new one)"),
    router: str = typer.Option("llm", "--router", help="llm (keywords when unsure) | keywords"),
    method: str = typer.Option("neuropath", "--method", help="QA retriever: neuropath | dense | bm25 | hybrid | ppr | ircot"),
    top_k: int = typer.Option(5, "--top-k", min=1, max=20),
    max_hop: int = typer.Option(2, "--max-hop", min=1, max=5),
    no_extract: bool = typer.Option(False, "--no-extract", help="/ingest: vectors only, no knowledge graph"),
    encoding: str = typer.Option("utf-8", "--encoding", help="/ingest: read text/HTML files that are not UTF-8 "
                                 "as this codec (cp1252, latin-1, ...)"),
    web: str = typer.Option("off", "--web", help="recommendation evidence: off | live (ddgs) | local (local web) | replay"),
    web_dir: str = typer.Option("", "--web-dir", help="archive folder for --web replay"),
    allow_host: list[str] = typer.Option([], "--allow-host", help="/ingest: allow fetching this loopback/private host (HOST: any port; HOST:PORT: that port)"),
    model: str = MODEL_OPT,
    home: str = HOME_OPT,
) -> None:
    """Chat with your documents: questions, recommendations and ingestion in one conversation."""
    from placecell.agents.backends import Backends
    from placecell.agents.chat.state import ChatContext
    from placecell.agents.checks import require_utf8
    from placecell.cli import store_failure
    from placecell.errors import InputError, PlacecellError
    from placecell.graphs.chat import build_chat_graph
    from placecell.tools.stores.checkpoints import check_thread_name, open_checkpointer

    interrupts.session()  # a Ctrl-C stops the answer, not the session
    if router not in ("llm", "keywords"):
        raise InputError(f"unknown router '{router}' (known: llm, keywords)")
    if web not in ("off", "live", "local", "replay"):
        raise InputError(f"unknown --web mode {web!r}; choose off, live, local or replay")
    if web == "replay" and not web_dir:
        raise InputError("--web replay needs --web-dir (a folder saved by `placecell recommend --web record`)")
    # the ingest graph reads settings.allow_hosts beside its context's: /ingest and routed ingests alike
    from placecell.settings import get_settings
    from placecell.tools.web.safety import check_allow_hosts

    check_allow_hosts(allow_host)

    extra = {"allow_hosts": [*get_settings().allow_hosts, *allow_host]} if allow_host else {}
    settings = settings_from(model=model, home=home, **extra)
    backends = Backends(settings=settings)
    with open_checkpointer(settings) as saver:  # SQLite, or Postgres with PLACECELL_CHECKPOINT_URL
        graph = build_chat_graph(backends, checkpointer=saver)
        context = ChatContext(router=router, method=method, top_k=top_k, max_hop=max_hop, extract=not no_extract,
                              encoding=encoding, web=web, web_dir=web_dir)
        thread = check_thread_name(thread) if thread is not None else _new_thread_name()
        printer = _Printer()
        failed = 0
        turns = len(graph.get_state({"configurable": {"thread_id": thread}}).values.get("messages", []))
        console.print(f"thread {thread}" + (f" (resumed, {turns} messages)" if turns else "") + "; /help for commands",
                      markup=False)
        while True:
            line = _read_line("you> ")
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            try:
                # checked before the graph sees it: a turn with such text would be stored in the thread
                require_utf8(line, "this line")
                if line.startswith("/"):
                    command, _, arg = line.partition(" ")
                    arg = arg.strip()
                    if command in ("/exit", "/quit"):
                        break
                    if command == "/help":
                        console.print(HELP, markup=False)
                    elif command == "/new":
                        thread = check_thread_name(arg) if arg else _new_thread_name()
                        console.print(f"thread {thread}", markup=False)
                    elif command == "/model" and arg:
                        if not _model_usable(settings, arg):
                            failed += 1
                            continue
                        settings = settings_from(model=arg, home=home, **extra)
                        backends = Backends(settings=settings)
                        graph = build_chat_graph(backends, checkpointer=saver)
                        console.print(f"model: {arg} (loads with the next answer)", markup=False)
                    elif command == "/model":
                        llm = backends.llm
                        console.print(f"model: {settings.model if settings.llm_backend != 'openai' else settings.llm_model}"
                                      f" ({settings.llm_backend}{', loaded' if llm is not None else ''})", markup=False)
                    elif command == "/sources":
                        _show_sources(backends)
                    elif command == "/remove" and arg:
                        failed += not _remove(backends, arg)
                    elif command == "/ingest" and arg:
                        failed += not _ingest(backends, arg, extract=not no_extract, encoding=context.encoding)
                    elif command in ("/ingest", "/remove"):
                        raise InputError(f"usage: {command} PATH (a file, folder or URL"
                                         + (" as ingested)" if command == "/remove" else ")"))
                    else:
                        raise InputError(f"unknown command {command}; /help lists them")
                    continue
                try:
                    with interrupts.step():
                        values = run_turn(graph, line, {"configurable": {"thread_id": thread}}, context, printer)
                    failed += bool(values.get("problems"))  # an ingest turn that skipped an input
                except KeyboardInterrupt:
                    interrupts.handled()
                    sys.stdout.write("\n(stopped)\n")
                    sys.stdout.flush()
            except (PlacecellError, sqlite3.DatabaseError) as exc:
                # One failed turn or command (no documents yet, a model that will not load, a damaged
                # store file) is not the session's end.
                if printer.streamed:  # a stream cut mid-answer: end its line before the error and the next prompt
                    sys.stdout.write("\n")
                    printer.streamed = False
                sys.stdout.flush()
                err_console.print(f"error: {exc if isinstance(exc, PlacecellError) else store_failure(exc)}",
                                  markup=False)
                failed += 1
    console.print("bye", markup=False)
    if failed and not sys.stdin.isatty():  # a script fed the session: it must see that some of it failed
        raise PlacecellError(f"{failed} of the session's turns and commands failed, see the errors above")


def _model_usable(settings, spec: str) -> bool:
    """Check a `/model NAME` before switching (a local model must resolve to a verified GGUF);
    the session keeps its model when the check fails."""
    from placecell.errors import PlacecellError
    from placecell.tools import models

    if settings.llm_backend != "llamacpp":
        return True
    try:
        models.resolve(spec, settings.models_dir)
    except PlacecellError as exc:
        err_console.print(f"error: {exc}; keeping {settings.model}", markup=False)
        return False
    return True


def _new_thread_name() -> str:
    import uuid

    return time.strftime("chat-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def _show_sources(backends) -> None:
    """The stored documents, as `placecell documents` lists them (the names /remove takes)."""
    from placecell.agents.ingest.documents import list_documents

    docs = list_documents(backends)
    if not docs:
        console.print("no documents yet: /ingest PATH", markup=False)
    for d in docs:
        gone = "  (file gone: /remove it)" if d.get("exists") is False else ""
        console.print(f"  {d['document']}  ({d['passages']} passage{'s' if d['passages'] != 1 else ''}){gone}",
                      markup=False)


def _remove(backends, target: str) -> bool:
    from placecell.agents.ingest.documents import remove_documents

    out = remove_documents(backends, [target])
    if out["unmatched"]:
        err_console.print(f"error: no stored document matches {target} (see: placecell documents)", markup=False)
        return False
    console.print(f"removed {len(out['documents'])} document(s), {out['removed_passages']} passage(s) "
                  f"({out['passages']} in the store)", markup=False)
    return True


def _ingest(backends, source: str, *, extract: bool, encoding: str) -> bool:
    """`/ingest PATH`; False when it failed or skipped an input (the session goes on; a piped
    session exits 1, as `placecell ingest` would)."""
    from placecell.agents.ingest.state import IngestContext
    from placecell.graphs.ingest import build_ingest_graph

    try:
        with interrupts.step():
            out = build_ingest_graph(backends).invoke({"sources": [source]}, context=IngestContext(
                extract=extract, encoding=encoding, chunk_chars=backends.settings.chunk_chars))
    except KeyboardInterrupt:
        interrupts.handled()
        console.print("(stopped)", markup=False)
        return False
    backends.forget_kg()
    for w in out.get("warnings", []):
        err_console.print(f"warning: {w}", markup=False)
    console.print(f"added {out.get('new_passages', 0)} new passages ({out.get('passages', 0)} in the store)",
                  markup=False)
    return bool(out.get("loaded")) and not out.get("skipped_inputs")  # as `placecell ingest`'s exit status
