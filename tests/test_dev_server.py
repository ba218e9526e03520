"""The four graphs behind `langgraph dev` (the `dev_server` fixture in conftest.py), driven over
HTTP with langgraph_sdk as Studio or another app drives them: ingest two files, ask about them,
get recommendations from the shipped catalog, and chat on a server-side thread, with smollm2."""

from __future__ import annotations

import pytest
from langgraph_sdk import get_sync_client

from placecell.tools.stores.passages import PassageRegistry

DOCS = {
    "capitol.txt": "Capitol Records\nCapitol Records is an American record label based in Los Angeles, "
                   "California. It was founded in 1942 by Johnny Mercer.\n",
    "longleat.txt": "Longleat\nLongleat is a stately home in Wiltshire, England, the seat of the Marquesses "
                    "of Bath. Longleat Safari Park is on its grounds.\n",
}
HISTORY = [{"item": "The Diary of a Young Girl"}, {"item": "Kitchen Confidential"}, {"item": "Into Thin Air"}]


@pytest.fixture(scope="module")
def client(dev_server):
    return get_sync_client(url=dev_server.url)


@pytest.fixture(scope="module")
def ingested(dev_server, client, tmp_path_factory) -> dict[str, str]:
    """Ingest DOCS through the server's ingest graph; {file stem: passage id}."""
    folder = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    out = client.runs.wait(None, "ingest", input={"sources": [str(folder)]}, context={"extract": False})
    assert out["loaded"] == 2 and out["new_passages"] == 2 and out["passages"] >= 2, out
    assert out["warnings"] == [] and out["extracted"] == 0
    registry = PassageRegistry(dev_server.home / "passages.sqlite")  # the server wrote it under PLACECELL_HOME
    try:
        ids = {p.title: p.id for p in registry.all() if p.title in ("capitol", "longleat")}
    finally:
        registry.close()
    assert set(ids) == {"capitol", "longleat"}
    return ids


def test_the_server_serves_the_four_graphs_with_their_context_schemas(client):
    assistants = client.assistants.search(limit=20)
    by_graph = {a["graph_id"]: a for a in assistants}
    assert set(by_graph) == {"ingest", "qa", "recommend", "chat"}
    schemas = client.assistants.get_schemas(by_graph["qa"]["assistant_id"])
    assert {"method", "mode", "top_k", "max_hop", "model"} <= set(schemas["context_schema"]["properties"])
    assert set(schemas["input_schema"]["properties"]) == {"question"}
    assert {"answer", "citations", "paths"} <= set(schemas["output_schema"]["properties"])
    nodes = {n["id"] for n in client.assistants.get_graph(by_graph["qa"]["assistant_id"])["nodes"]}
    assert {"ner", "seed", "prune", "judge", "expand", "complete", "retrieve", "read"} <= nodes


def test_ingest_then_qa_answers_from_the_ingested_file(client, ingested):
    thread = client.threads.create()
    updates, final = [], None
    for part in client.runs.stream(thread["thread_id"], "qa", input={"question": "Where is Capitol Records based?"},
                                   context={"method": "dense", "top_k": 1}, stream_mode=["updates", "values"]):
        if part.event == "updates":
            updates += list(part.data)
        elif part.event == "values":
            final = part.data
    assert updates == ["start", "retrieve", "read"]  # the dense baseline's path through the graph
    source = final["citations"][0]["source"]
    assert source.endswith("capitol.txt") and source.startswith("/")  # the file it came from
    assert final["citations"] == [{"title": "capitol", "passage_id": ingested["capitol"], "source": source}]
    assert final["ranking"][0] == ingested["capitol"] and len(set(final["ranking"])) == len(final["ranking"]) <= 10
    assert isinstance(final["answer"], str) and final["answer"].strip()
    assert final["method"] == "dense" and final["paths"] == []
    # the run's output is the thread's state
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["citations"] == final["citations"] and state["values"]["answer"] == final["answer"]


def test_recommend_from_the_shipped_catalog_without_web(client):
    from placecell.agents.recommend.catalog import load_recsys

    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], "recommend", input={"history": HISTORY},
                             context={"query_mode": "none", "explain_items": 1, "k": 4, "n_carousels": 2})
    out = client.runs.join(thread["thread_id"], run["run_id"])
    assert client.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"
    recsys = load_recsys("goodbooks_399")
    liked = {recsys.resolve(h["item"]) for h in HISTORY}
    assert None not in liked
    shown = [it for c in out["carousels"] for it in c["items"]]
    assert len(out["carousels"]) == 2 and all(1 <= len(c["items"]) <= 4 for c in out["carousels"])
    assert all(recsys.catalog.items[it["item_id"]].title == it["title"] for it in shown)
    assert not liked & {it["item_id"] for it in out["items"]}  # what you read is never recommended
    assert all(it["reason"] for it in shown)
    assert out["usage"]["explain"]["calls"] == 1  # one reason written by the LLM, the rest by template
    assert not out.get("queries") and not out.get("evidence")  # web off: no queries, no pages


def test_chat_on_a_server_thread_replies_then_answers_with_sources(client, ingested):
    thread_id = client.threads.create()["thread_id"]
    ctx = {"router": "keywords", "method": "dense", "top_k": 1}
    first = client.runs.wait(thread_id, "chat", input={"messages": [{"role": "user", "content": "hello"}]},
                             context=ctx)
    assert first["route"] == "reply" and first["citations"] == []
    assert [m["type"] for m in first["messages"]] == ["human", "ai"] and first["messages"][-1]["content"].strip()
    second = client.runs.wait(thread_id, "chat", context=ctx, input={
        "messages": [{"role": "user", "content": "Where is Capitol Records based?"}]})
    assert second["route"] == "qa"
    assert second["citations"][0].pop("source").endswith("capitol.txt")
    assert second["citations"] == [{"n": 1, "title": "capitol", "passage_id": ingested["capitol"]}]
    assert second["messages"][-1]["content"].endswith(f"Sources:\n[1] capitol ({ingested['capitol']})")
    # the server's checkpointer kept the first turn on the thread
    messages = client.threads.get_state(thread_id)["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[0]["content"] == "hello"
