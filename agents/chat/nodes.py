"""Nodes of the chat router graph. Each takes the conversation, returns one AI message.

Routing: the LLM picks a route through a JSON-schema constrained call; when it is unsure (low
confidence, or the typed fallback after invalid output) keyword rules decide. Citations are
numbered in code from the QA graph's retrieved passage ids, never written by the model.
"""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from placecell.agents.chat.state import ChatContext, ChatState, RouteDecision
from placecell.agents.events import emit
from placecell.errors import InputError

ROUTER_PROMPT = (
    "Route the user's message. Answer JSON with route and confidence (0 to 1).\n"
    "qa: a question about facts in the user's documents.\n"
    "recommend: asks for books or films to read or watch.\n"
    "ingest: asks to add a file, folder or URL.\n"
    "reply: greetings, thanks, chit-chat, anything else."
)
REPLY_PROMPT = "You are placecell, a helpful local assistant. Answer briefly."

_RECOMMEND = re.compile(r"\b(recommend\w*|suggest\w*|what (should|could) i (read|watch)|books? like|"
                        r"films? like|movies? like|similar to)\b", re.I)
_INGEST = re.compile(r"\b(ingest|index|add|load|import)\b", re.I)
_INGEST_ORDER = re.compile(r"(please\s+)?(ingest|index|add|load|import)\s+", re.I)
_QUESTION = re.compile(r"^(who|whom|whose|what|which|when|where|why|how|is|are|was|were|did|does|do|can|"
                       r"tell me|name|list)\b", re.I)
_CHITCHAT = re.compile(r"^(hi|hello|hey|thanks|thank you|bye|good (morning|evening|night)|ok|okay)\b", re.I)
_FOLLOW_UP = re.compile(r"^(and|what about|how about|also)\b|\b(he|she|it|they|him|her|them|his|its|their|"
                        r"that|this|there)\b", re.I)


def _ctx(runtime: Runtime[ChatContext] | None) -> ChatContext:
    return (runtime.context if runtime is not None else None) or ChatContext()


def _text(message) -> str:
    from placecell.tools.llm.langchain import content_text

    return content_text(message.content)


def last_human(messages) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage) or getattr(m, "type", "") == "human":
            return _text(m).strip()
    return ""


def previous_humans(messages) -> list[str]:
    humans = [_text(m).strip() for m in messages if getattr(m, "type", "") == "human"]
    return humans[:-1]


def find_sources(text: str) -> list[str]:
    """Files, folders and URLs named in a message."""
    found = []
    for token in text.split():
        token = token.strip("'\"`,;()")
        if re.match(r"https?://", token):
            found.append(token)
        elif token and ("/" in token or "." in token) and Path(token).expanduser().exists():
            found.append(str(Path(token).expanduser()))
    return found


def named_sources(text: str) -> list[str]:
    """What a message that starts with an ingest verb ("ingest notes/", "add report.pdf") names,
    found or not: a missing file is then reported as missing, not answered as chat."""
    m = _INGEST_ORDER.match(text.strip())
    if not m:
        return []
    found = find_sources(text)
    for token in text.strip()[m.end():].split():
        token = token.strip("'\"`,;()")
        if token and ("/" in token or re.search(r"\.[A-Za-z][A-Za-z0-9]{0,4}$", token)) and not re.match(r"https?://", token) \
                and str(Path(token).expanduser()) not in found:
            found.append(str(Path(token).expanduser()))
    return found


def keyword_route(text: str) -> str:
    """Deterministic routing, used when the model is unsure."""
    if (_INGEST.search(text) and find_sources(text)) or named_sources(text):
        return "ingest"
    if _RECOMMEND.search(text):
        return "recommend"
    if _CHITCHAT.match(text.strip()):
        return "reply"
    if text.rstrip().endswith("?") or _QUESTION.match(text.strip()):
        return "qa"
    return "reply"


def standalone_question(messages) -> str:
    """The last question, with the previous one prepended when it reads as a follow-up."""
    question = last_human(messages)
    earlier = previous_humans(messages)
    if earlier and len(question.split()) <= 12 and _FOLLOW_UP.search(question):
        return f"{earlier[-1]} {question}"
    return question


def liked_titles(text: str) -> list[str]:
    """Titles named after "like"/"similar to" ("books like Dune and Emma" -> ["Dune", "Emma"])."""
    m = re.search(r"\b(?:like|similar to|enjoyed|loved)\s+(.+)", text, re.I)
    if not m:
        return []
    parts = re.split(r",\s*|\s+and\s+|\s+or\s+", m.group(1).strip().rstrip("?.!"))
    return [p.strip().strip("'\"") for p in parts if p.strip()]


def format_citations(citations: list[dict]) -> str:
    if not citations:
        return ""
    return "\n\nSources:\n" + "\n".join(f"[{c['n']}] {c['title']} ({c['passage_id']})" for c in citations)


def format_carousels(out: dict) -> str:
    """Carousels as text; items backed by web evidence end with numbered citations of its URLs."""
    lines, sources = [], {}
    for carousel in out.get("carousels", []):
        lines.append(f"{carousel['title']}:")
        for i, item in enumerate(carousel["items"], 1):
            reason = f": {item['reason']}" if item.get("reason") else ""
            refs = "".join(f" [{sources.setdefault(u, len(sources) + 1)}]" for u in item.get("evidence_urls", []))
            lines.append(f"  {i}. {item['title']}{reason}{refs}")
    if not lines:
        lines = [f"- {item['title']}" for item in out.get("items", [])[:5]]
    lines += [f"note: {n}" for n in out.get("notes", []) if ("not in the" in n and "catalog" in n) or "web" in n]
    if sources:
        lines += ["", "Sources:"] + [f"[{n}] {url}" for url, n in sources.items()]
    return "\n".join(lines) or "I found nothing to recommend."


def make_nodes(backends, *, qa_graph, recommend_graph=None, ingest_graph=None, web_recommend_graph=None):
    """`recommend_graph`/`ingest_graph` may be zero-argument callables (built on first use).
    `web_recommend_graph(recsys, web_client)` builds a recommendation graph over an entered web
    client; it is used when the context's `web` is not "off"."""
    built: dict = {}

    def _graph(name, spec):
        if name not in built:
            built[name] = spec() if callable(spec) and not hasattr(spec, "invoke") else spec
        return built[name]

    def route(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
        ctx = _ctx(runtime)
        text = last_human(state.get("messages") or [])
        if not text:  # the reply model would otherwise answer an empty conversation
            raise InputError("input 'messages' has no user message with text to answer")
        if ctx.router == "llm":
            unsure = RouteDecision(route="reply", confidence=0.0)
            messages = [{"role": "system", "content": ROUTER_PROMPT}, {"role": "user", "content": text[:2000]}]
            decision = backends.get_llm().structured(messages, RouteDecision, unsure, node="route", max_tokens=40)
            if decision.confidence >= ctx.min_confidence:
                emit({"event": "route", "route": decision.route, "by": "llm", "confidence": decision.confidence})
                return {"route": decision.route, "routed_by": "llm", "problems": 0}
        chosen = keyword_route(text)
        emit({"event": "route", "route": chosen, "by": "keywords"})
        return {"route": chosen, "routed_by": "keywords", "problems": 0}

    def qa(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
        from placecell.agents.qa.state import QAContext

        ctx = _ctx(runtime)
        question = standalone_question(state["messages"])
        out = qa_graph.invoke({"question": question}, context=QAContext(
            method=ctx.method, mode=ctx.mode, top_k=ctx.top_k, rank_k=max(QAContext.rank_k, ctx.top_k), max_hop=ctx.max_hop))
        citations = [{"n": i, "title": c["title"], "passage_id": c["passage_id"], "source": c.get("source", "")}
                     for i, c in enumerate(out.get("citations", []), 1)]
        answer = out.get("answer") or ("I found nothing about that in your documents." if not citations
                                       else "I could not write an answer from these passages.")
        return {"question": question, "citations": citations,
                "messages": [AIMessage(answer + format_citations(citations), name="qa")]}

    def recommend(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
        from placecell.agents.recommend.state import RecommendContext

        ctx = _ctx(runtime)
        text = last_human(state["messages"])
        inputs = {"likes": text, "history": [{"item": t} for t in liked_titles(text)]}
        if ctx.web != "off" and web_recommend_graph is not None:
            from placecell.agents.recommend.webstep import open_web_client

            recsys = _graph("recsys", _load_recsys)
            with open_web_client(ctx.web, ctx.web_dir or None, [], backends.settings, recsys) as client:
                out = web_recommend_graph(recsys, client).invoke(inputs, context=RecommendContext(query_mode="reasoned"))
            return {"citations": [], "messages": [AIMessage(format_carousels(out), name="recommend")]}
        graph = _graph("recommend", recommend_graph)
        if graph is None:
            return {"citations": [], "messages": [AIMessage("Recommendations are not set up here.", name="recommend")]}
        out = graph.invoke(inputs, context=RecommendContext(query_mode="none", explain=False))
        return {"citations": [], "messages": [AIMessage(format_carousels(out), name="recommend")]}

    def ingest(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
        from placecell.agents.ingest.state import IngestContext

        text = last_human(state["messages"])
        sources = named_sources(text) or find_sources(text)
        if not sources:
            # a question back, not a failure: the router may have sent a plain question here
            return {"citations": [], "problems": 0,
                    "messages": [AIMessage("Which file, folder or URL should I add?", name="ingest")]}
        graph = _graph("ingest", ingest_graph)
        out = graph.invoke({"sources": sources}, context=IngestContext(
            extract=_ctx(runtime).extract, encoding=_ctx(runtime).encoding, chunk_chars=backends.settings.chunk_chars))
        backends.forget_kg()
        text = f"Added {out.get('new_passages', 0)} new passages ({out.get('passages', 0)} in the store)."
        if out.get("warnings"):
            text += " Warnings: " + "; ".join(out["warnings"])
        return {"citations": [], "problems": out.get("skipped_inputs", 0) + (not out.get("loaded")),
                "messages": [AIMessage(text, name="ingest")]}

    def reply(state: ChatState, runtime: Runtime[ChatContext]) -> dict:
        from placecell.tools.llm.langchain import PlacecellChatModel

        ctx = _ctx(runtime)
        said = [m for m in state["messages"] if getattr(m, "type", "") in ("human", "ai")]
        # the message being answered, after at most history_turns earlier ones (`[-0:]` would be all of them)
        history = (said[:-1][-ctx.history_turns:] if ctx.history_turns else []) + said[-1:]
        model = PlacecellChatModel(llm=backends.get_llm(), node="reply", max_tokens=128)
        answer = model.invoke([SystemMessage(REPLY_PROMPT), *history])
        return {"citations": [], "messages": [AIMessage(_text(answer).strip(), name="reply")]}

    return {"route": route, "qa": qa, "recommend": recommend, "ingest": ingest, "reply": reply}


def _load_recsys():
    from placecell.agents.recommend.catalog import load_recsys

    return load_recsys("goodbooks_399")
