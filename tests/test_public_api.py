"""The public API: lazy exports from `placecell`, langgraph.json entries, embedding the QA graph
in another app's graph, and two concurrent async questions on one in-process model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import placecell

ROOT = Path(placecell.__file__).parent


def test_import_is_cheap_and_names_load_on_use():
    code = "import sys, placecell; print('langgraph' in sys.modules, 'llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    for name in placecell.__all__:
        assert getattr(placecell, name) is not None
    assert callable(placecell.build_chat_graph) and callable(placecell.build_recommend_graph)
    assert "question" in placecell.QAInput.__annotations__
    with pytest.raises(AttributeError):
        placecell.no_such_name  # noqa: B018


def test_langgraph_json_lists_the_four_graphs():
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."] and "env" in config
    assert set(config["graphs"]) == {"ingest", "qa", "recommend", "chat"}
    for name in ("ingest", "qa", "chat"):  # built on attribute access, loading no model
        module_path, attr = config["graphs"][name].split(":")
        module = __import__("placecell.graphs." + Path(module_path).stem, fromlist=[attr])
        graph = getattr(module, attr)
        assert graph.name == name and graph.checkpointer is None


def test_langgraph_json_recommend_entry_resolves():
    import placecell.graphs.recommend as module

    assert module.graph.name == "recommend" and module.graph.checkpointer is None


def _tiny_backends(tmp_path, llm):
    from placecell.agents.backends import Backends
    from placecell.settings import Settings
    from placecell.tools.stores.passages import Passage, passage_id

    texts = {"Longleat": "Longleat is a stately home; Longleat Safari Park is on its grounds.",
             "Capitol Records": "Capitol Records is an American record label based in Los Angeles."}
    b = Backends(settings=Settings(home=tmp_path / "home"), llm=llm)
    passages = [Passage(passage_id(t), title, t) for title, t in texts.items()]
    b.get_registry().add_many(passages)
    b.get_vectors().upsert([p.id for p in passages], [p.text for p in passages], [{"title": p.title} for p in passages],
                           b.get_embedder().embed([p.text for p in passages]))
    return b


def test_qa_graph_mounts_as_a_subgraph_in_another_app(tmp_path, small_llm):
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from placecell import QAContext, build_qa_graph

    class AppState(TypedDict, total=False):
        question: str
        answer: str
        citations: list

    app = StateGraph(AppState)
    app.add_node("placecell", build_qa_graph(_tiny_backends(tmp_path, small_llm)))
    app.add_edge(START, "placecell")
    app.add_edge("placecell", END)
    out = app.compile().invoke({"question": "Where is Capitol Records based?"},
                               context=QAContext(method="dense", top_k=1))
    assert out["citations"][0]["title"] == "Capitol Records" and isinstance(out["answer"], str)


def test_two_concurrent_questions_on_one_in_process_model(tmp_path, small_llm):
    from placecell import QAContext, build_qa_graph

    graph = build_qa_graph(_tiny_backends(tmp_path, small_llm))
    ctx = QAContext(method="dense", top_k=1)

    async def both():
        return await asyncio.wait_for(asyncio.gather(
            graph.ainvoke({"question": "Where is Capitol Records based?"}, context=ctx),
            graph.ainvoke({"question": "What is on the grounds of Longleat?"}, context=ctx)), timeout=600)

    first, second = asyncio.run(both())
    assert first["citations"][0]["title"] == "Capitol Records"
    assert second["citations"][0]["title"] == "Longleat"
    assert all(isinstance(o["answer"], str) for o in (first, second))


def test_env_example_lists_every_setting():
    """`.env.example` is where users look up settings: one that is missing there is unknown to them."""
    import re
    from pathlib import Path

    from placecell.settings import Settings

    text = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    listed = set(re.findall(r"^(PLACECELL_\w+)=", text, re.M))
    fields = {f"PLACECELL_{name.upper()}" for name in Settings.model_fields}
    assert fields <= listed, sorted(fields - listed)
    # the one variable read outside Settings (by every process taking a llama.cpp turn)
    assert listed - fields == {"PLACECELL_LLM_MACHINE_LOCK"}
