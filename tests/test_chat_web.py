"""Chat recommendations with web evidence: the recommend route searches and fetches the local
web on 127.0.0.1 (shown live as custom events) and the reply cites the pages it used."""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage

from placecell.agents.backends import Backends
from placecell.agents.chat.nodes import format_carousels
from placecell.agents.chat.state import ChatContext
from placecell.agents.recommend.fakes import HashingEmbedder, ScriptedLLM
from placecell.graphs.chat import build_chat_graph
from placecell.settings import Settings


def test_recommend_turn_with_local_web_cites_fetched_pages(tmp_path):
    backends = Backends(settings=Settings(home=tmp_path / "home"), llm=ScriptedLLM(), embedder=HashingEmbedder())
    graph = build_chat_graph(backends, qa_graph=None)
    events, final = [], None
    message = "Recommend books like The Diary of a Young Girl and Into Thin Air"
    for namespace, kind, payload in graph.stream({"messages": [HumanMessage(message)]},
                                                 context=ChatContext(router="keywords", web="local"),
                                                 stream_mode=["custom", "values"], subgraphs=True):
        if kind == "custom":
            events.append(payload)
        elif kind == "values" and not namespace:
            final = payload
    kinds = {e.get("event") for e in events}
    assert {"route", "search", "fetch"} <= kinds
    fetched = [e["url"] for e in events if e.get("event") == "fetch"]
    assert fetched and all(u.startswith("http://127.0.0.1:") for u in fetched)
    reply = final["messages"][-1].content
    assert "Sources:" in reply
    cited = [line.split("] ", 1)[1] for line in reply.split("Sources:")[1].strip().splitlines()]
    assert cited and set(cited) <= set(fetched)  # every cited URL is a page that was fetched
    assert "/deals/" not in reply  # instruction-carrying pages of the local web are never cited
    items = re.findall(r"^\s+\d+\. ([^:\[]+)", reply, re.M)
    assert items and not any("Diary of a Young Girl" in t or "Into Thin Air" in t for t in items)  # liked: not offered


def test_carousel_text_numbers_each_source_once():
    out = {"carousels": [{"title": "Because you liked X", "items": [
        {"title": "A", "reason": "r", "evidence_urls": ["http://h/1", "http://h/2"]},
        {"title": "B", "reason": "", "evidence_urls": ["http://h/2"]}]}]}
    text = format_carousels(out)
    assert "1. A: r [1] [2]" in text and "2. B [2]" in text
    assert text.endswith("Sources:\n[1] http://h/1\n[2] http://h/2")
