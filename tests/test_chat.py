"""The chat router: keyword routing, the LLM decision and its fallback, code-built citations,
follow-ups, SQLite-persisted threads, streamed reply tokens, and the real CLI in a pseudo-terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from placecell.agents.backends import Backends
from placecell.agents.chat.nodes import find_sources, keyword_route, standalone_question
from placecell.agents.chat.state import ChatContext, RouteDecision
from placecell.graphs.chat import build_chat_graph
from placecell.settings import Settings
from support import fixed_answer_qa_graph


@pytest.mark.parametrize("text,route", [
    ("Who founded Fantagraphics?", "qa"),
    ("what title was the politician styled", "qa"),
    ("Can you recommend some books like Dune", "recommend"),
    ("suggest a film for tonight", "recommend"),
    ("hello!", "reply"),
    ("thanks, that was useful", "reply"),
    ("ingest /definitely/not/here.txt", "ingest"),  # an order to ingest: the ingest step says it is not found
    ("the ingest of /definitely/not/here.txt failed", "reply"),  # no order, and no file: chat
])
def test_keyword_route(text, route):
    assert keyword_route(text) == route


def test_keyword_route_ingests_existing_paths(tmp_path):
    doc = tmp_path / "notes.txt"
    doc.write_text("x")
    assert keyword_route(f"please ingest {doc}") == "ingest"
    assert find_sources(f"add {doc} and https://example.org/a") == [str(doc), "https://example.org/a"]


def test_liked_titles():
    from placecell.agents.chat.nodes import liked_titles

    assert liked_titles("recommend books like Dune and Emma?") == ["Dune", "Emma"]
    assert liked_titles("recommend something") == []


def test_follow_up_questions_see_the_previous_turn():
    msgs = [("human", "Who founded Fantagraphics Books?"), ("ai", "Gary Groth."), ("human", "When was he born?")]
    from langchain_core.messages import AIMessage, HumanMessage

    messages = [HumanMessage(t) if r == "human" else AIMessage(t) for r, t in msgs]
    assert standalone_question(messages) == "Who founded Fantagraphics Books? When was he born?"
    messages[-1] = HumanMessage("Where is Capitol Records based?")
    assert standalone_question(messages) == "Where is Capitol Records based?"


def _fake_qa_graph(seen: list):
    return fixed_answer_qa_graph(seen, [{"title": "Alexander Thynn", "passage_id": "p1"},
                                        {"title": "Longleat", "passage_id": "p2"}])


class _FakeLLM:
    model_id = "fake"

    def __init__(self, decision):
        self.decision = decision

    def structured(self, messages, schema_cls, fallback, **kw):
        return self.decision if self.decision is not None else fallback


def _graph(tmp_path, llm=None, checkpointer=None, seen=None):
    backends = Backends(settings=Settings(home=tmp_path / "home"), llm=llm)
    return build_chat_graph(backends, qa_graph=_fake_qa_graph(seen if seen is not None else []),
                            recommend_graph=lambda: None, checkpointer=checkpointer)


def test_qa_answers_end_with_numbered_citations_and_threads_persist(tmp_path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    from placecell.cli.chat import list_threads

    seen: list = []
    db = tmp_path / "home" / "chat.sqlite"
    db.parent.mkdir(parents=True)
    ctx = ChatContext(router="keywords")
    with SqliteSaver.from_conn_string(str(db)) as saver:
        graph = _graph(tmp_path, checkpointer=saver, seen=seen)
        config = {"configurable": {"thread_id": "longleat"}}
        out = graph.invoke({"messages": [("user", "Which title was the owner of Longleat styled?")]}, config, context=ctx)
        assert out["route"] == "qa"
        assert out["messages"][-1].content == ("Viscount Weymouth.\n\nSources:\n[1] Alexander Thynn (p1)\n"
                                               "[2] Longleat (p2)")
        assert [c["n"] for c in out["citations"]] == [1, 2]
    with SqliteSaver.from_conn_string(str(db)) as saver:  # a later run resumes the thread
        graph = _graph(tmp_path, checkpointer=saver, seen=seen)
        out = graph.invoke({"messages": [("user", "And what about his father?")]},
                           {"configurable": {"thread_id": "longleat"}}, context=ctx)
        assert len(out["messages"]) == 4
    assert seen[1] == "Which title was the owner of Longleat styled? And what about his father?"
    assert [name for name, _ in list_threads(Settings(home=tmp_path / "home"))] == ["longleat"]


@pytest.mark.parametrize("decision,route,by", [
    (RouteDecision(route="recommend", confidence=0.9), "recommend", "llm"),
    (RouteDecision(route="recommend", confidence=0.2), "qa", "keywords"),  # unsure: keywords decide
    (None, "qa", "keywords"),  # invalid output: the typed fallback, then keywords
])
def test_llm_route_with_keyword_fallback(tmp_path, decision, route, by):
    graph = _graph(tmp_path, llm=_FakeLLM(decision))
    events, final = [], {}
    for mode, chunk in graph.stream({"messages": [("user", "Who lived at Longleat?")]}, context=ChatContext(),
                                    stream_mode=["custom", "values"]):
        (events.append(chunk) if mode == "custom" else final.update(chunk))
    assert final["route"] == route
    assert events[0] == {"event": "route", "route": route, "by": by, **({"confidence": 0.9} if by == "llm" else {})}
    if route == "recommend":
        assert final["messages"][-1].content == "Recommendations are not set up here."


def test_plain_reply_streams_tokens_from_the_reply_node(tmp_path, small_llm):
    from langchain_core.messages import AIMessageChunk

    graph = _graph(tmp_path, llm=small_llm)
    tokens = []
    for mode, chunk in graph.stream({"messages": [("user", "hello")]}, context=ChatContext(router="keywords"),
                                    stream_mode=["messages", "values"]):
        if mode == "messages" and isinstance(chunk[0], AIMessageChunk):
            assert chunk[1]["langgraph_node"] == "reply"
            tokens.append(chunk[0].content)
        elif mode == "values":
            final = chunk
    assert len(tokens) > 1 and final["route"] == "reply"
    assert final["messages"][-1].content == "".join(tokens).strip()


def test_chat_cli_in_a_pseudo_terminal(tmp_path, small_model):
    """A short conversation as a person has it: /help, a question, Ctrl-C, /sources, /exit."""
    import subprocess

    import pexpect

    home = tmp_path / "home"
    doc = tmp_path / "longleat.txt"
    doc.write_text("Longleat\nLongleat is a stately home, the seat of the Marquesses of Bath. "
                   "Longleat Safari Park is on its grounds.\n")
    env = {**os.environ, "PLACECELL_HOME": str(home), "PLACECELL_MODEL": "smollm2-135m", "NO_COLOR": "1"}
    cli = [sys.executable, "-m", "placecell.cli"]
    subprocess.run([*cli, "ingest", str(doc), "--no-extract"], env=env, check=True, capture_output=True,
                   cwd=tmp_path)
    child = pexpect.spawn(cli[0], [*cli[1:], "chat", "--thread", "demo", "--method", "dense", "--router",
                                   "keywords", "--top-k", "1"], env=env, cwd=str(tmp_path), encoding="utf-8",
                          timeout=600, dimensions=(40, 200))
    try:
        child.expect("thread demo")
        child.expect("you> ")
        child.sendline("/help")
        child.expect("/ingest PATH")
        child.expect("you> ")
        child.sendline("What is on the grounds of Longleat?")
        child.expect(r"Sources:\r?\n\[1\] longleat \(")
        child.expect("you> ")
        child.sendintr()  # Ctrl-C at the prompt does not end the session
        # Under load the interrupt can land before or after readline starts: an empty line
        # afterwards gets a fresh prompt either way.
        child.sendline("")
        child.expect("you> ")
        child.sendline("/sources")
        child.expect("longleat")
        child.expect("you> ")
        child.sendline("/exit")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    out = subprocess.run([*cli, "threads"], env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["demo"]


def test_a_failed_turn_does_not_end_the_session(tmp_path):
    """An unknown /model is refused (the session keeps its model); a question before any
    document is ingested is an error for that turn; the session goes on to /exit."""
    import subprocess

    env = {**os.environ, "PLACECELL_HOME": str(tmp_path / "home"), "PLACECELL_MODEL": "smollm2-135m", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--method", "dense"],
                          input="/model no-such-model\nWho founded Fantagraphics?\n/model\n/exit\n", env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.stdout.rstrip().endswith("bye")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and "unknown model 'no-such-model'" in errors[0] and "keeping" in errors[0]
    assert "no documents ingested yet" in errors[1]
    # fed by a script, the session's exit says that part of it failed
    assert errors[2] == "error: 2 of the session's turns and commands failed, see the errors above"
    assert proc.returncode == 1
    assert "model: smollm2-135m" in proc.stdout and "Traceback" not in proc.stderr


def test_ingest_route_and_carousel_rendering(tmp_path):
    from placecell.agents.chat.nodes import format_carousels

    doc = tmp_path / "notes.txt"
    doc.write_text("x")
    calls = []

    class _Ingest:
        def invoke(self, inputs, context=None):
            calls.append(inputs["sources"])
            return {"new_passages": 1, "passages": 3}

    backends = Backends(settings=Settings(home=tmp_path / "home"))
    graph = build_chat_graph(backends, qa_graph=_fake_qa_graph([]), ingest_graph=_Ingest(), recommend_graph=lambda: None)
    out = graph.invoke({"messages": [("user", f"please ingest {doc}")]}, context=ChatContext(router="keywords"))
    assert calls == [[str(doc)]] and out["messages"][-1].content == "Added 1 new passages (3 in the store)."
    page = {"carousels": [{"title": "Top picks", "items": [{"title": "Educated", "reason": "memoir"}]}],
            "notes": ["1 history item(s) not in the goodbooks_399 catalog were ignored: 'Dune'", "cold start"]}
    assert format_carousels(page) == ("Top picks:\n  1. Educated: memoir\n"
                                      "note: 1 history item(s) not in the goodbooks_399 catalog were ignored: 'Dune'")


def test_chat_graph_astream(tmp_path):
    import asyncio

    graph = _graph(tmp_path)

    async def run():
        return [chunk async for chunk in graph.astream({"messages": [("user", "Who lived at Longleat?")]},
                                                      context=ChatContext(router="keywords"), stream_mode="updates")]

    updates = asyncio.run(run())
    assert [next(iter(u)) for u in updates] == ["route", "qa"]


def test_chat_ingests_a_local_url_with_allow_host(tmp_path):
    """The refusal told chat users to pass --allow-host, which chat did not have."""
    import subprocess

    from placecell.tools.web.localweb import LocalWebServer, Route

    routes = {"/robots.txt": Route(b"", "text/plain"),
              "/notes.txt": Route(b"The Kettle River feeds Osprey Lake.", "text/plain")}
    env = {**os.environ, "PLACECELL_HOME": str(tmp_path / "home"), "PLACECELL_MODEL": "smollm2-135m", "NO_COLOR": "1"}
    with LocalWebServer(routes) as srv:
        cmd = [sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--no-extract"]
        url = srv.url("/notes.txt")
        script = f"/ingest {url}\n/sources\n/exit\n"
        refused = subprocess.run(cmd, input=script, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        allowed = subprocess.run([*cmd, "--allow-host", "127.0.0.1"], input=script, env=env, capture_output=True,
                                 text=True, timeout=300, cwd=tmp_path)
    assert "loopback" in refused.stderr and "added 0 new passages" in refused.stdout
    assert "added 1 new passages" in allowed.stdout and "Traceback" not in allowed.stderr
    assert f"  {url}  (1 passage)" in allowed.stdout  # /sources lists documents, as `documents` does


def test_chat_remove_forgets_a_document(tmp_path):
    import subprocess

    note = tmp_path / "notes.md"
    note.write_text("The Kettle River feeds Osprey Lake.\n")
    env = {**os.environ, "PLACECELL_HOME": str(tmp_path / "home"), "PLACECELL_MODEL": "smollm2-135m", "NO_COLOR": "1"}
    script = f"/ingest {note}\n/remove\n/remove {tmp_path / 'other.md'}\n/remove {note}\n/sources\n/exit\n"
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--no-extract"],
                          input=script, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "added 1 new passages" in proc.stdout and "usage: /remove PATH" in proc.stderr
    assert f"error: no stored document matches {tmp_path / 'other.md'}" in proc.stderr
    assert "removed 1 document(s), 1 passage(s) (0 in the store)" in proc.stdout
    assert "no documents yet" in proc.stdout and proc.returncode == 1  # the unmatched /remove


def test_chat_ingest_reads_a_named_encoding(tmp_path):
    """/ingest had no way to read a cp1252 file; it now follows chat's --encoding, and a skipped
    input counts as a failed command (a piped session exits 1, as `placecell ingest` does)."""
    import subprocess

    note = tmp_path / "cafe.txt"
    note.write_bytes("Caf\u00e9 M\u00fcller serves cr\u00eapes.\n".encode("cp1252"))
    env = {**os.environ, "PLACECELL_HOME": str(tmp_path / "home"), "PLACECELL_MODEL": "smollm2-135m", "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--no-extract"]
    script = f"/ingest {note}\n/exit\n"
    skipped = subprocess.run(cmd, input=script, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "not UTF-8 text: --encoding NAME" in skipped.stderr and "added 0 new passages" in skipped.stdout
    assert skipped.returncode == 1 and "Traceback" not in skipped.stderr
    read = subprocess.run([*cmd, "--encoding", "cp1252"], input=script, env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert "added 1 new passages" in read.stdout and read.returncode == 0, read.stderr
    unknown = subprocess.run([*cmd, "--encoding", "klingon"], input=script, env=env, capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown encoding 'klingon'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    from placecell.tools.stores.passages import PassageRegistry

    texts = [p.text for p in PassageRegistry(tmp_path / "home" / "passages.sqlite").all()]
    assert any("Caf\u00e9 M\u00fcller serves cr\u00eapes." in t for t in texts)


def _chat(tmp_path, script, *args, home=None, **kw):
    import subprocess

    env = {**os.environ, "PLACECELL_HOME": str(home or tmp_path / "home"), "PLACECELL_MODEL": "smollm2-135m",
           "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--no-extract",
                           "--method", "dense", *args], input=script, env=env, capture_output=True, timeout=300,
                          cwd=tmp_path, **kw)


def test_chat_refuses_a_line_that_is_not_utf8_and_goes_on(tmp_path):
    """Such a line reached a cache key as lone surrogates: a traceback that ended the session,
    after the line was stored in the thread."""
    proc = _chat(tmp_path, b"\xff\xfe hello?\n/sources\n/exit\n", "--thread", "t1")
    err = proc.stderr.decode()
    assert "error: this line is not UTF-8 text" in err and "Traceback" not in err
    assert b"no documents yet" in proc.stdout and proc.stdout.rstrip().endswith(b"bye")
    assert proc.returncode == 1
    again = _chat(tmp_path, "/exit\n", "--thread", "t1", text=True)
    assert "resumed" not in again.stdout  # nothing of the refused line was saved


def test_chat_slash_command_mistakes_are_errors(tmp_path):
    proc = _chat(tmp_path, "/foo\n/ingest\n/new\n/exit\n", text=True)
    assert "error: unknown command /foo; /help lists them" in proc.stderr
    assert "error: usage: /ingest PATH" in proc.stderr
    assert "2 of the session's turns and commands failed" in proc.stderr and proc.returncode == 1
    assert "unknown command" not in proc.stdout


def test_chat_new_takes_a_thread_name_and_checks_it(tmp_path):
    proc = _chat(tmp_path, "/new reading-list\n/new " + "x" * 101 + "\n/exit\n", text=True)
    assert "thread reading-list" in proc.stdout
    assert "the thread name is 101 characters long; at most 100" in proc.stderr and proc.returncode == 1
    bad = _chat(tmp_path, "/exit\n", "--thread", "evil\x1b[31mred", text=True)
    assert bad.returncode == 2 and "control character" in bad.stderr and "Traceback" not in bad.stderr
    blank = _chat(tmp_path, "/exit\n", "--thread", "  ", text=True)
    assert blank.returncode == 2 and "the thread name is empty" in blank.stderr


def test_a_damaged_store_fails_the_command_not_the_session(tmp_path):
    """A damaged passages.sqlite ended chat at the first command; it is named, and the session goes on."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "passages.sqlite").write_bytes(b"\x00garbage" * 500)
    proc = _chat(tmp_path, "/sources\n/help\n/exit\n", text=True)
    assert f"error: {home / 'passages.sqlite'} is damaged (sqlite: file is not a database)" in proc.stderr
    assert "/ingest PATH" in proc.stdout and proc.stdout.rstrip().endswith("bye") and proc.returncode == 1
    assert (home / "passages.sqlite").read_bytes() == b"\x00garbage" * 500  # nothing was deleted


def test_typed_ingest_of_a_missing_file_says_so(tmp_path):
    """"ingest nofile.txt" went to plain chat (the file does not exist, so no source was found)."""
    proc = _chat(tmp_path, "ingest nofile.txt\n/exit\n", text=True)
    assert "Added 0 new passages" in proc.stdout and "nofile.txt: not found" in proc.stdout
    assert proc.returncode == 1 and "1 of the session's turns" in proc.stderr


def test_keyword_route_for_named_but_missing_sources():
    from placecell.agents.chat.nodes import keyword_route, named_sources

    assert keyword_route("ingest nofile.txt") == "ingest"
    assert keyword_route("please add notes/2024/") == "ingest"
    assert named_sources("add notes/a.md and b.txt") == [os.path.join("notes", "a.md"), "b.txt"]
    assert keyword_route("load 2.5 kg of apples") == "reply"  # a number is not a file name
    assert keyword_route("what does the ingest step do?") == "qa"


class _RecordingLLM:
    """Answers "ok" and keeps the messages each reply call saw."""

    model_id = "recording"

    def __init__(self):
        self.seen: list[list[str]] = []

    def stream(self, messages, **kw):
        self.seen.append([m["content"] for m in messages])
        yield "ok"

    def chat(self, messages, **kw):
        from placecell.tools.llm.base import ChatResult

        self.seen.append([m["content"] for m in messages])
        return ChatResult(text="ok", prompt_tokens=1, completion_tokens=1, seconds=0.0)


@pytest.mark.parametrize("turns, expected", [(0, ["ok bye"]), (2, ["thanks a lot", "ok", "ok bye"])])
def test_a_plain_reply_sees_history_turns_earlier_messages(tmp_path, turns, expected):
    """history_turns=0 sent the whole conversation ([-0:] is every message)."""
    from langgraph.checkpoint.memory import InMemorySaver

    llm = _RecordingLLM()
    graph = _graph(tmp_path, llm=llm, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    for text in ("hello there", "thanks a lot", "ok bye"):
        graph.invoke({"messages": [("user", text)]}, thread, context=ChatContext(router="keywords", history_turns=turns))
    assert llm.seen[-1][1:] == expected  # after the system prompt


def test_content_blocks_are_read_as_their_text_and_a_turn_needs_one(tmp_path):
    """A LangChain content-block message was routed by the repr of its blocks (to a plain reply), and
    input without a user message ran the reply model on an empty conversation."""
    from placecell.errors import InputError

    graph = _graph(tmp_path, llm=_RecordingLLM())
    blocks = [{"type": "text", "text": "Which title was the owner of"}, {"type": "image_url", "image_url": {"url": "x"}},
              {"type": "text", "text": "Longleat styled?"}]
    out = graph.invoke({"messages": [{"role": "user", "content": blocks}]}, context=ChatContext(router="keywords"))
    assert out["route"] == "qa"
    llm = _RecordingLLM()
    hello = [{"type": "text", "text": "hello there"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    _graph(tmp_path, llm=llm).invoke({"messages": [{"role": "user", "content": hello}]},
                                     context=ChatContext(router="keywords"))
    assert llm.seen[-1][1:] == ["hello there"]  # the reply model got the blocks' repr, image data and all
    for empty in ({}, {"messages": []}, {"messages": [("user", "   ")]}):
        with pytest.raises(InputError, match="no user message with text"):
            graph.invoke(empty, context=ChatContext(router="keywords"))
