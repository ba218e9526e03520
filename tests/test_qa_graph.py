"""The QA graph: NeuroPath (scored and faithful) on a hand-built KG with smollm2, the path events
it streams, its fallbacks, and the baseline methods."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placecell.agents.backends import Backends
from placecell.agents.qa.state import QAContext
from placecell.graphs.qa import build_qa_graph
from placecell.settings import Settings
from placecell.tools.stores.kg import KnowledgeGraph
from placecell.tools.stores.passages import Passage, passage_id

DOCS = {
    "Longleat": "Longleat\nLongleat is a stately home, the seat of the Marquesses of Bath. Longleat Safari Park is on its grounds.",
    "Alexander Thynn": "Alexander Thynn\nAlexander Thynn, 7th Marquess of Bath, was styled Viscount Weymouth between 1946 and 1992.",
    "Gary Groth": "Gary Groth\nGary Groth co-founded Fantagraphics Books.",
    "Capitol Records": "Capitol Records\nCapitol Records is an American record label based in Los Angeles.",
}
TRIPLES = {
    "Longleat": [["Longleat Safari Park", "located at", "Longleat"], ["Longleat", "seat of", "Marquess of Bath"]],
    "Alexander Thynn": [["Alexander Thynn", "title", "Marquess of Bath"], ["Alexander Thynn", "styled", "Viscount Weymouth"]],
    "Gary Groth": [["Gary Groth", "co-founded", "Fantagraphics Books"]],
    "Capitol Records": [["Capitol Records", "based in", "Los Angeles"]],
}
QUESTION = "Longleat Safari Park is on the grounds of the home of a politician styled as what title?"


def _backends(tmp_path, llm, with_triples=True) -> Backends:
    b = Backends(settings=Settings(home=tmp_path / "home"), llm=llm)
    passages = [Passage(passage_id(t), title, t) for title, t in DOCS.items()]
    b.get_registry().add_many(passages)
    vecs = b.get_embedder().embed([p.text for p in passages])
    b.get_vectors().upsert([p.id for p in passages], [p.text for p in passages], [{"title": p.title} for p in passages], vecs)
    kg = KnowledgeGraph()
    if with_triples:
        for p in passages:
            kg.add_passage(p.id, TRIPLES[p.title])
        kg.add_aliases(b.get_embedder().embed)
    kg.save(b.kg_path(llm.model_id))
    return b


def _run(backends, **ctx):
    graph = build_qa_graph(backends)
    events, result = [], {}
    for mode, chunk in graph.stream({"question": QUESTION}, context=QAContext(**ctx), stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk)
        else:
            result = chunk
    return result, events


@pytest.mark.parametrize("mode", ["scored", "faithful"])
def test_neuropath_streams_paths_and_returns_a_ranking(tmp_path, small_llm, mode):
    b = _backends(tmp_path, small_llm)
    result, events = _run(b, method="neuropath", mode=mode, top_k=2, max_hop=2)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "entities"
    titles = {p.id: p.title for p in b.get_registry().all()}
    assert len(result["ranking"]) == 4 and set(result["ranking"]) == set(titles)
    assert [c["passage_id"] for c in result["citations"]] == result["ranking"][:2]
    assert isinstance(result["answer"], str)
    for path in result["paths"]:
        assert len(path["triples"]) == len(path["passage_ids"]) and all(len(t) == 3 for t in path["triples"])
    if "seeds" in kinds and events[kinds.index("seeds")]["paths"]:
        assert "paths" in kinds  # the judge ran and streamed its step


def test_scored_mode_puts_path_passages_first(tmp_path, small_llm, monkeypatch):
    """With NER fixed to the question's entity, the seeded paths' passages lead the ranking."""
    from placecell.agents.qa import neuropath

    monkeypatch.setattr(neuropath, "query_entities", lambda llm, q: ["Longleat Safari Park"])
    b = _backends(tmp_path, small_llm)
    result, events = _run(b, method="neuropath", mode="scored", top_k=2, max_hop=2)
    titles = {p.id: p.title for p in b.get_registry().all()}
    assert titles[result["ranking"][0]] == "Longleat"
    assert result["paths"] and result["paths"][0]["triples"][0][0] == "longleat safari park"


def test_no_triples_falls_back_to_dense(tmp_path, small_llm):
    b = _backends(tmp_path, small_llm, with_triples=False)
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert result["paths"] == [] and len(result["ranking"]) == 4
    assert any("dense retrieval only" in n for n in result.get("notes", [])) or not result.get("notes")


def test_a_kg_from_an_older_normalisation_is_used_and_named(tmp_path, small_llm, monkeypatch):
    """A version-1 KG file still answers, and the run says how to rebuild it."""
    import json

    from placecell.agents.qa import neuropath

    monkeypatch.setattr(neuropath, "query_entities", lambda llm, q: ["Longleat Safari Park"])
    b = _backends(tmp_path, small_llm)
    path = b.kg_path(small_llm.model_id)
    fresh, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert not any("older placecell" in n for n in fresh.get("notes", []))
    data = json.loads(path.read_text())
    data["version"] = 1
    path.write_text(json.dumps(data))
    b.forget_kg()
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert result["paths"] and any("older placecell" in n and "placecell ingest" in n for n in result["notes"])


@pytest.mark.parametrize("method", ["dense", "bm25", "hybrid", "ppr"])
def test_baselines_through_the_graph(tmp_path, small_llm, method):
    b = _backends(tmp_path, small_llm)
    result, _ = _run(b, method=method, answer=False, rank_k=3)
    titles = {p.id: p.title for p in b.get_registry().all()}
    assert len(result["ranking"]) == 3 and result["answer"] == ""
    assert "Gary Groth" not in [titles[i] for i in result["ranking"][:1]]


def test_context_model_is_the_model_used(tmp_path, small_llm, small_model):
    """QAContext.model (a Studio field) picks the model; the backends' own LLM is not loaded."""
    from placecell.tools.llm import usage_scope

    b = _backends(tmp_path, small_llm)
    b.llm = None
    with usage_scope() as u:
        result, _ = _run(b, method="dense", top_k=1, model=str(small_model))
    assert b.llm is None and u.snapshot()["read"]["calls"] == 1 and result["citations"]


def test_bm25_fusion_reorders_the_neuropath_ranking_by_reciprocal_rank(tmp_path, small_llm, monkeypatch):
    from placecell.agents.qa import neuropath
    from placecell.tools import retrievers

    monkeypatch.setattr(neuropath, "query_entities", lambda llm, q: ["Longleat Safari Park"])
    b = _backends(tmp_path, small_llm)
    plain, _ = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4, fuse_bm25=False)
    lexical = plain["ranking"][::-1]  # a lexical ranking that disagrees with the paths
    monkeypatch.setattr(retrievers, "bm25", lambda question, backends, k=10, **_: [(p, 1.0) for p in lexical][:k])
    fused, _ = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4, fuse_bm25=True)
    RRF_K = retrievers.RRF_K
    score = {pid: 1 / (RRF_K + 1 + plain["ranking"].index(pid)) + 1 / (RRF_K + 1 + lexical.index(pid))
             for pid in plain["ranking"]}
    assert sorted(fused["ranking"]) == sorted(plain["ranking"]) and fused["ranking"] != plain["ranking"]
    assert fused["ranking"] == sorted(plain["ranking"], key=lambda pid: (-score[pid], plain["ranking"].index(pid)))
    assert fused["paths"] == plain["paths"]  # fusion reorders passages, it does not change the paths shown
    by_default, _ = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4)
    assert by_default["ranking"] == fused["ranking"]  # on unless switched off
    faithful, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=4, fuse_bm25=True)
    faithful_plain, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=4, fuse_bm25=False)
    assert faithful["ranking"] == faithful_plain["ranking"]  # the paper's method is never fused


def test_cover_entities_ranks_first_the_pair_that_mentions_the_question_entities(tmp_path, small_llm, monkeypatch):
    from placecell.agents.qa import neuropath
    from placecell.tools import retrievers

    monkeypatch.setattr(neuropath, "query_entities", lambda llm, q: ["Longleat Safari Park", "Gary Groth"])
    b = _backends(tmp_path, small_llm)
    plain, _ = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4, fuse_bm25=False)
    titles = {p.id: p.title for p in b.get_registry().all()}
    groth = next(pid for pid, t in titles.items() if t == "Gary Groth")
    lexical = [pid for pid in plain["ranking"] if pid != groth] + [groth]  # the Groth passage last
    monkeypatch.setattr(retrievers, "bm25", lambda question, backends, k=10, **_: [(p, 1.0) for p in lexical][:k])
    fused, fused_events = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4, cover_entities=False)
    covered, events = _run(b, method="neuropath", mode="scored", answer=False, rank_k=4)  # on by default
    assert groth in fused["ranking"][2:]
    # The passage naming Longleat Safari Park stays first; Gary Groth's passage joins it.
    assert covered["ranking"][:2] == [fused["ranking"][0], groth]
    # The stream says so (the CLI prints it), with the titles of the new top two.
    cover_events = [e for e in events if e.get("event") == "cover"]
    assert [e["passage_ids"] for e in cover_events] == [covered["ranking"][:2]]
    assert cover_events[0]["titles"] == ["Longleat", "Gary Groth"]
    assert not [e for e in fused_events if e.get("event") == "cover"]
    assert sorted(covered["ranking"]) == sorted(fused["ranking"]) and covered["paths"] == fused["paths"]
    faithful, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=4, cover_entities=True)
    faithful_plain, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=4, cover_entities=False)
    assert faithful["ranking"] == faithful_plain["ranking"]  # the paper's method stays as published


def test_title_links_put_the_passage_the_top_two_name_third(tmp_path, small_llm, monkeypatch):
    from placecell.tools import retrievers

    b = _backends(tmp_path, small_llm)
    # A passage titled with a name the Longleat passage's body uses: the next hop's page.
    text = "Longleat Safari Park\nLongleat Safari Park opened in 1966, the first drive-through safari park outside Africa."
    park = Passage(passage_id(text), "Longleat Safari Park", text)
    b.get_registry().add_many([park])
    b.get_vectors().upsert([park.id], [text], [{"title": park.title}], b.get_embedder().embed([text]))
    titles = {p.id: p.title for p in b.get_registry().all()}
    longleat = next(pid for pid, t in titles.items() if t == "Longleat")
    # BM25 puts Longleat first and the park last, so the fused ranking leaves the park out of the top two.
    lexical = [longleat] + [pid for pid in titles if pid not in (longleat, park.id)] + [park.id]
    monkeypatch.setattr(retrievers, "bm25", lambda question, backends, k=10, **_: [(p, 1.0) for p in lexical][:k])
    settings = dict(method="neuropath", mode="scored", answer=False, rank_k=5, cover_entities=False)
    plain, plain_events = _run(b, title_links=False, **settings)
    linked, events = _run(b, **settings)  # on by default
    assert plain["ranking"][0] == longleat and park.id not in plain["ranking"][:3]
    assert linked["ranking"][:2] == plain["ranking"][:2]  # the top two stay
    assert linked["ranking"][2] == park.id  # "Longleat Safari Park is on its grounds" links to it
    assert sorted(linked["ranking"]) == sorted(plain["ranking"]) and linked["paths"] == plain["paths"]
    link_events = [e for e in events if e.get("event") == "links"]
    assert link_events == [{"event": "links", "from": [titles[pid] for pid in plain["ranking"][:2]],
                            "passage_ids": [park.id], "titles": ["Longleat Safari Park"]}]
    assert not [e for e in plain_events if e.get("event") == "links"]
    faithful, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=5, title_links=True)
    faithful_plain, _ = _run(b, method="neuropath", mode="faithful", answer=False, rank_k=5, title_links=False)
    assert faithful["ranking"] == faithful_plain["ranking"]  # the paper's method stays as published


def test_keep_nearest_brings_the_question_s_nearest_passage_to_the_reader(tmp_path, small_llm, monkeypatch):
    from placecell.agents.qa.nodes import complete_ranking
    from placecell.tools import retrievers

    b = _backends(tmp_path, small_llm)
    titles = {p.id: p.title for p in b.get_registry().all()}
    nearest = retrievers.dense(QUESTION, b, 1)[0][0]
    # The paths and BM25 both put the question's nearest passage last.
    others = [pid for pid in titles if pid != nearest]
    monkeypatch.setattr(retrievers, "bm25", lambda question, backends, k=10, **_: [(p, 1.0) for p in others + [nearest]][:k])
    ctx = QAContext(method="neuropath", top_k=2, rank_k=4, cover_entities=False, title_links=False)
    plain_events, events = [], []
    plain = complete_ranking(b, replace(ctx, keep_nearest=0), QUESTION, others, emit_event=plain_events.append)
    kept = complete_ranking(b, ctx, QUESTION, others, emit_event=events.append)  # on by default
    assert plain[-1] == nearest and kept == [plain[0], nearest, *plain[1:3]]
    assert events == [{"event": "nearest", "passage_ids": [nearest], "titles": [titles[nearest]]}] and not plain_events
    faithful = replace(ctx, mode="faithful")
    assert complete_ranking(b, faithful, QUESTION, others) == complete_ranking(b, replace(faithful, keep_nearest=0), QUESTION, others)


def test_path_probe_none_judges_paths_without_probe_calls(tmp_path, small_llm):
    from placecell.tools.llm import usage_scope

    b = _backends(tmp_path, small_llm)
    with usage_scope() as probed:
        _run(b, method="neuropath", top_k=2, max_hop=2, answer=False, path_probe="each")
    with usage_scope() as unprobed:
        result, events = _run(b, method="neuropath", top_k=2, max_hop=2, answer=False, path_probe="none")
    assert "path_probe" in probed.snapshot()  # the hand-built KG gives the judge paths to probe
    assert "path_probe" not in unprobed.snapshot() and "path_reason" in unprobed.snapshot()
    assert "paths" in [e["event"] for e in events] and result["paths"]


def test_reason_rounds_one_reasons_once_and_still_expands_the_second_hop(tmp_path, small_llm, monkeypatch):
    """The lean setting: hop 2 is still expanded and judged, steered by hop 1's reasoning, which
    is also what the completion query and the last path event carry."""
    from placecell.agents.qa import neuropath
    from placecell.tools.llm import usage_scope

    monkeypatch.setattr(neuropath, "query_entities", lambda llm, q: ["Longleat Safari Park"])
    calls = []

    def reasoning(llm, question, paths):
        calls.append(len(calls) + 1)
        return neuropath.PathReasoning(current_chain=f"chain {len(calls)}",
                                       expansion_requirements="the title of the Marquess of Bath")

    monkeypatch.setattr(neuropath, "reason_over_paths", reasoning)
    b = _backends(tmp_path, small_llm)
    _, every = _run(b, method="neuropath", max_hop=2, answer=False, path_probe="none", reason_rounds=2)
    assert calls == [1, 2]
    calls.clear()
    with usage_scope() as usage:
        result, lean = _run(b, method="neuropath", max_hop=2, answer=False)  # the default is the lean setting
    assert calls == [1]
    hops = [e for e in lean if e["event"] == "paths"]
    assert [e["hop"] for e in hops] == [1, 2] and hops[-1]["chain"] == "chain 1"
    assert any(len(p["triples"]) == 2 for p in result["paths"])  # a two-hop path was kept
    assert set(usage.snapshot()) <= {"ner"}  # no probes, no second reasoning call (patched out here)


def test_kg_model_id_reads_the_knowledge_graph_another_model_extracted(tmp_path, small_llm):
    """`Backends.kg_model_id` (eval `--kg-model`): a 0.5B model answering on a 1.5B model's KG.
    The asking model's own KG here is empty; with kg_model_id the paths come from the other one."""
    b = _backends(tmp_path, small_llm, with_triples=False)  # the asking model's KG: no triples
    other = KnowledgeGraph()
    for title in DOCS:
        other.add_passage(passage_id(DOCS[title]), TRIPLES[title])
    other.save(b.kg_path("extractor-model"))
    assert b.load_kg(small_llm.model_id).n_triples() == 0
    b.kg_model_id = "extractor-model"
    assert b.load_kg(small_llm.model_id).n_triples() == sum(len(t) for t in TRIPLES.values())
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert result["paths"] and not any("dense retrieval only" in n for n in result.get("notes", []))


def test_ask_prints_why_the_top_passages_changed(capsys):
    from placecell.cli.docs import _show_step

    _show_step({"event": "cover", "passage_ids": ["p1", "p2"], "titles": ["Travis Parrott", "Menno Oosting"]})
    assert "name the most question entities: Travis Parrott; Menno Oosting" in capsys.readouterr().err
    _show_step({"event": "links", "from": ["Longleat"], "passage_ids": ["p3"], "titles": ["Longleat Safari Park"]})
    assert "the passages named in Longleat: Longleat Safari Park" in capsys.readouterr().err


def test_a_question_no_passage_shares_a_word_with_gets_no_answer_and_no_citation(tmp_path, small_llm):
    """Retrieval returns its top k whatever the question; the reader then made up 'the boiling point
    of mercury' and cited an unrelated passage. No LLM call is made for it now."""
    from placecell.agents.qa.nodes import shares_a_word
    from placecell.tools.llm import usage_scope

    b = _backends(tmp_path, small_llm)
    graph = build_qa_graph(b)
    with usage_scope() as u:
        result = graph.invoke({"question": "What is the boiling point of mercury?"},
                              context=QAContext(method="bm25", top_k=2))
    assert result["answer"] == "" and result["citations"] == [] and "read" not in u.snapshot()
    assert any("do not seem to cover it" in n for n in result["notes"])
    passages = [Passage("x", "Fantagraphics", "Its founding was in 1976.")]
    assert shares_a_word("Who founded it?", passages)  # 'founded' meets 'founding' by their first letters
    assert shares_a_word("Qui a fondé Tokyo?", passages) is False
    assert shares_a_word("東京は?", passages)  # no word the tokeniser splits: not judged


def test_a_checkpointed_thread_reports_each_run_on_its_own(tmp_path, small_llm):
    """Notes added up over a thread's runs: the second question repeated the first one's note."""
    from langgraph.checkpoint.memory import InMemorySaver

    graph = build_qa_graph(_backends(tmp_path, small_llm), checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    first = graph.invoke({"question": "What is the boiling point of mercury?"}, thread,
                         context=QAContext(method="bm25", top_k=2))
    assert any("do not seem to cover it" in n for n in first["notes"])
    second = graph.invoke({"question": "Who co-founded Fantagraphics Books?"}, thread,
                          context=QAContext(method="bm25", top_k=2, answer=False))
    assert second["notes"] == [] and second["citations"][0]["title"] == "Gary Groth"


def test_top_k_beyond_the_ranking_is_refused_not_cut(tmp_path):
    """top_k 15 gave 10 passages: the reader's passages come from the rank_k-long ranking."""
    from placecell.errors import InputError

    with pytest.raises(InputError, match="top_k 15 is more than rank_k 10: .*; lower top_k or raise rank_k"):
        QAContext(top_k=15)
    assert QAContext(top_k=15, rank_k=15).top_k == 15
    assert QAContext(rank_k=3, answer=False).rank_k == 3  # a short ranking, no reader: top_k is not read


def test_another_models_graph_is_named_and_a_rewritten_graph_is_reloaded(tmp_path, small_llm):
    """With no graph of the answering model, the newest one answered with no note; and a Backends that
    had loaded a graph kept it after another process (the CLI beside a server) rewrote the file."""
    b = _backends(tmp_path, small_llm)
    own = b.kg_path(small_llm.model_id)
    own.rename(b.kg_path("extractor-model"))  # only another model's graph is here
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert result["paths"] and any("built by another model" in n for n in result["notes"])
    other = b.kg_path("extractor-model")
    kg = b.load_kg(small_llm.model_id)
    grown = KnowledgeGraph.from_json(kg.to_json())
    grown.add_passage(passage_id(DOCS["Gary Groth"]), [["Gary Groth", "edits", "The Comics Journal"]])
    import os

    grown.save(other)
    os.utime(other, ns=(1, 1))  # a rewrite within the same clock tick is still seen: size and mtime both count
    assert b.load_kg(small_llm.model_id).n_triples() == kg.n_triples() + 1
    other.rename(own)  # this model's own graph: no note
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert not any("built by another model" in n for n in result["notes"])


def test_a_graph_that_covers_part_of_the_passages_says_so(tmp_path, small_llm):
    """A graph built before more files were stored (with --no-extract, or by another backend's ingest)
    answered from part of them with no note."""
    from placecell.agents.ingest.extract import SCHEMA_VERSION

    b = _backends(tmp_path, small_llm)
    cache = b.extraction_cache(small_llm.model_id, SCHEMA_VERSION)
    ids = b.get_registry().ids()
    for pid in ids[:3]:
        cache.put(pid, {"triples": [], "failed": False})
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert f"the knowledge graph covers 3 of {len(ids)} passages" in " ".join(result["notes"])
    cache.put(ids[3], {"triples": [], "failed": False})  # the count follows the cache file
    result, _ = _run(b, method="neuropath", mode="scored", answer=False)
    assert not any("covers" in n for n in result["notes"])


def test_the_graph_notes_are_per_model_and_follow_the_stored_passages(tmp_path, small_llm):
    """A flag set on the shared graph object by one model's run was read by another's; and the
    coverage count was kept while the stored passages changed but their number did not."""
    from placecell.agents.ingest.extract import SCHEMA_VERSION

    b = _backends(tmp_path, small_llm)
    assert not b.answers_with_another_models_kg(small_llm.model_id)
    assert b.answers_with_another_models_kg("model-without-a-graph")
    assert not b.answers_with_another_models_kg(small_llm.model_id)  # whatever was asked before
    cache = b.extraction_cache(small_llm.model_id, SCHEMA_VERSION)
    for pid in b.get_registry().ids():
        cache.put(pid, {"triples": [], "failed": False})
    assert b.unextracted(small_llm.model_id) == (0, len(DOCS))
    registry = b.get_registry()
    gone = registry.ids()[0]
    with registry._lock, registry._conn:  # these passages belong to no document: drop the row itself
        registry._conn.execute("DELETE FROM passages WHERE id=?", (gone,))
    registry.add_many([Passage(passage_id("Newcomer\nA new passage."), "Newcomer", "Newcomer\nA new passage.")])
    assert b.unextracted(small_llm.model_id) == (1, len(DOCS))
