"""The recommendation graph offline: scripted LLM, hashing embedder, local web / replayed archive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ddgs.exceptions import DDGSException

from placecell.agents.recommend.catalog import load_recsys, read_history_file, web_items
from placecell.agents.recommend.fakes import HashingEmbedder, ScriptedLLM
from placecell.agents.recommend.state import RecommendContext
from placecell.errors import InputError
from placecell.graphs.recommend import build_recommend_graph
from placecell.tools.web.client import FetchOptions, WebClient
from placecell.agents.recommend.webstep import fetch_pages, run_searches
from placecell.tools.web.localweb import build_local_web, pick_injection_target
from placecell.tools.web.search import DDGSSearch

FIXTURE = Path(__file__).parent / "fixtures" / "web" / "goodbooks_user"
HISTORY = [{"item": "The Diary of a Young Girl"}, {"item": "Kitchen Confidential"}, {"item": "Into Thin Air"}]
LOCAL = FetchOptions(allow_hosts=("127.0.0.1",))
FAST = dict(use_ctr=False)  # the CTR model is exercised by the tool-node tests (issue 4)


@pytest.fixture(scope="module")
def recsys():
    return load_recsys("goodbooks_399")


def run(recsys, web, inputs, **ctx):
    graph = build_recommend_graph(recsys, web=web, llm=ScriptedLLM(), embedder=HashingEmbedder())
    return graph.invoke(inputs, context=RecommendContext(**{**FAST, **ctx}))


def test_full_graph_on_the_local_web(recsys):
    pages = build_local_web(web_items(recsys.catalog), injections=5)
    with WebClient("local", local_pages=pages, options=LOCAL) as web:
        out = run(recsys, web, {"history": HISTORY})
    assert len(out["queries"]) == 3 and out["keywords"]
    assert out["evidence"] and all("/deals/" not in e["url"] for e in out["evidence"])
    assert out["web"]["dropped_pages"] and all("/deals/" in u for u in out["web"]["dropped_pages"])
    shown = [it for c in out["carousels"] for it in c["items"]]
    assert shown and all(it["reason"] for it in shown)
    liked = {recsys.resolve(h["item"]) for h in HISTORY}
    assert None not in liked
    assert not liked & {it["item_id"] for it in out["items"]}  # history is never recommended
    cited = {u for it in shown for u in it["evidence_urls"]}
    assert cited and cited <= {e["url"] for e in out["evidence"]}  # citations come from selected evidence
    assert out["usage"]["reason"]["calls"] == 1 and out["usage"]["explain"]["calls"] == 1


def test_replay_from_recorded_fixture_is_offline_and_deterministic(recsys):
    with WebClient("replay", web_dir=FIXTURE) as web:
        first = run(recsys, web, {"history": HISTORY}, layout=False)
        second = run(recsys, web, {"history": HISTORY}, layout=False)
    assert first["web"]["search_errors"] == [] and first["evidence"]
    assert [i["item_id"] for i in first["items"]] == [i["item_id"] for i in second["items"]]


def test_injection_pages_do_not_move_the_ranking(recsys):
    items = web_items(recsys.catalog)
    target = pick_injection_target(items)
    candidates = [target.item_id] + [i.id for i in list(recsys.catalog.items.values())[:60] if i.id != target.item_id]
    inputs = {"history": HISTORY, "candidates": candidates}
    with WebClient("local", local_pages=build_local_web(items), options=LOCAL) as clean, \
            WebClient("local", local_pages=build_local_web(items, injections=19, target=target), options=LOCAL) as noisy:
        a = run(recsys, clean, inputs, layout=False)
        b = run(recsys, noisy, inputs, layout=False)
    assert b["web"]["dropped_pages"]  # the injection pages were retrieved ...
    assert [i["item_id"] for i in a["items"]][:10] == [i["item_id"] for i in b["items"]][:10]  # ... and ignored
    rank = lambda out: [i["item_id"] for i in out["items"]].index(target.item_id)  # noqa: E731
    assert rank(a) == rank(b)


def test_search_failure_is_reported_in_state_not_raised(recsys, monkeypatch):
    def offline(self, query, max_results):
        raise DDGSException("https://html.duckduckgo.com ConnectError: offline")

    monkeypatch.setattr(DDGSSearch, "_raw_search", offline)
    with WebClient("live") as web:
        out = run(recsys, web, {"history": HISTORY})
    assert len(out["web"]["search_errors"]) == 3 and "ConnectError" in out["web"]["search_errors"][0]
    assert any("web search trouble" in n for n in out["notes"])
    assert out["carousels"] and not out.get("evidence")  # went on with CF alone


def test_unknown_items_and_cold_start_are_explained(recsys):
    with WebClient("off") as web:
        out = run(recsys, None, {"history": [{"item": "No Such Book Anywhere"}]}, explain=False)
    assert any("not in the goodbooks_399 catalog" in n for n in out["notes"])
    assert any("cold start" in n for n in out["notes"])
    assert out["items"] and out["carousels"]
    assert web.backend_name == "off"


def test_without_the_web_nothing_claims_web_evidence(recsys):
    """Cold start with the web off: the note says so, and the templated reasons name popularity only."""
    out = run(recsys, None, {"history": []}, query_mode="none")
    assert any("cold start" in n and "web search is off" in n for n in out["notes"])
    shown = [it for c in out["carousels"] for it in c["items"]]
    assert shown and all(not it["evidence_urls"] for it in shown)
    assert all(it["reason"] and "web" not in it["reason"].lower() for it in shown)


def test_template_reasons_name_the_web_evidence_only_when_there_is_some():
    from types import SimpleNamespace

    from placecell.agents.recommend.prompting import template_reason

    item = SimpleNamespace(title="Night", tags=["memoir"])
    liked = [SimpleNamespace(title="Dune", tags=["science-fiction"])]
    assert "web evidence" in template_reason(item, liked, with_evidence=True)
    assert "web" not in template_reason(item, liked) and "web" not in template_reason(item, [])
    assert "web evidence" in template_reason(item, [], with_evidence=True)
    assert template_reason(item, [SimpleNamespace(title="Maus", tags=["memoir"])]) == "Shares memoir with what you liked."


def test_likes_text_names_catalog_titles(recsys):
    out = run(recsys, None, {"likes": "I loved Kitchen Confidential and anything about food"}, explain=False)
    assert not any("cold start" in n for n in out["notes"])
    assert recsys.resolve("Kitchen Confidential") not in {i["item_id"] for i in out["items"]}


def test_movielens_titles_resolve_as_people_write_them():
    ml = load_recsys("movielens")  # titles only: no model is loaded
    title = lambda iid: ml.catalog.items[iid].title
    assert title(ml.resolve("The Matrix")) == "Matrix, The" and ml.resolve("matrix, the") == ml.resolve("The Matrix")
    assert title(ml.resolve("Les Miserables")) == "Misérables, Les" == title(ml.resolve("Les Misérables"))
    leon = ml.resolve("Léon: The Professional")
    assert ml.resolve("Leon: the professional") == ml.resolve("Léon") == leon  # an alternative title
    assert title(ml.resolve("La Cité des enfants perdus")).startswith("City of Lost Children, The")
    assert ml.resolve("Monsters, Inc.") and ml.resolve("Matrix, The Reloaded") is None
    # In free text a title put the way people write it counts when capitalised, and a title inside
    # a longer one found there ("The Professional" in "Léon: The Professional") does not count.
    found = ml.titles_in("I loved The Usual Suspects and Léon: The Professional for its professional approach, "
                         "also Toy Story 2; the professional approach and the matrix of risks name no film")
    assert set(found) == {ml.resolve("Toy Story 2"), ml.resolve("The Usual Suspects"), leon} and len(found) == 3
    assert set(ml.titles_in("Toy Story 2 and then Toy Story")) == {ml.resolve("Toy Story"), ml.resolve("Toy Story 2")}


def test_low_ratings_are_seen_not_liked(recsys):
    out = run(recsys, None, {"history": [{"item": "Into Thin Air", "rating": 1.0}]}, explain=False, layout=False)
    assert any("cold start" in n for n in out["notes"])
    assert recsys.resolve("Into Thin Air") not in {i["item_id"] for i in out["items"]}


def test_history_files(tmp_path):
    csv_file = tmp_path / "h.csv"
    csv_file.write_text("item,rating\nInto Thin Air,5\n15,\n")
    assert read_history_file(csv_file) == [{"item": "Into Thin Air", "rating": 5.0}, {"item": "15", "rating": None}]
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text('{"item": "15", "rating": 4}\n\n{"item": "40"}\n')
    assert [h["item"] for h in read_history_file(jsonl)] == ["15", "40"]
    (tmp_path / "empty.csv").write_text("")
    assert read_history_file(tmp_path / "empty.csv") == []
    (tmp_path / "bad.csv").write_text("book,score\nx,1\n")
    with pytest.raises(InputError, match="'item' column"):
        read_history_file(tmp_path / "bad.csv")
    (tmp_path / "bad_rating.csv").write_text("item,rating\nx,great\n")
    with pytest.raises(InputError, match="not a number"):
        read_history_file(tmp_path / "bad_rating.csv")
    with pytest.raises(InputError, match="not found"):
        read_history_file(tmp_path / "missing.csv")
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(InputError, match="binary.csv: not a text file"):
        read_history_file(tmp_path / "binary.csv")
    (tmp_path / "latin1.csv").write_bytes("item\nAmélie\n".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.csv: not UTF-8 text"):
        read_history_file(tmp_path / "latin1.csv")
    (tmp_path / "utf16.csv").write_bytes("item\nAmélie\n".encode("utf-16"))  # with its BOM, as Excel saves it
    with pytest.raises(InputError, match="utf16.csv: UTF-16 text; save it as UTF-8"):
        read_history_file(tmp_path / "utf16.csv")


def test_a_csv_row_with_more_cells_than_columns_is_refused(tmp_path):
    """An unquoted comma in a title used to cut it short in silence ('Dune, Part Two' became 'Dune'
    and the rest went nowhere); a row without its optional rating is still read."""
    ragged = tmp_path / "h.csv"
    ragged.write_text("item\n15\nDune, Part Two\n")
    with pytest.raises(InputError, match=re.escape("h.csv:3: more cells than the 1 columns (item); put a cell "
                                                   "that holds a comma in double quotes")):
        read_history_file(ragged)
    ragged.write_text('item,rating\n"Eat, Pray, Love",5\n15\nThe Hobbit,5,\n')  # a spreadsheet's trailing comma
    assert read_history_file(ragged) == [{"item": "Eat, Pray, Love", "rating": 5.0}, {"item": "15", "rating": None},
                                         {"item": "The Hobbit", "rating": 5.0}]


def test_history_entries_of_the_wrong_kind_are_named(tmp_path):
    """A list item became the unknown title "['81']", a rating of true was 1.0 (a silent dislike),
    1e308 was accepted, and a .json array was read line by line ("has no 'item'")."""
    array = tmp_path / "h.json"
    array.write_text('[\n {"item": "15", "rating": 5},\n {"item": 40}\n]\n')
    assert read_history_file(array) == [{"item": "15", "rating": 5.0}, {"item": "40", "rating": None}]
    for line, message in (('{"item": ["81"]}', "entry 1: ['81']: 'item' must be a catalog id or title"),
                          ('{"item": "81", "rating": true}', "entry 1: '81': rating must be a number, not True"),
                          ('{"item": "81", "rating": 1e308}', "entry 1: '81': rating 1e+308 is outside the 0-5 star scale"),
                          ('{"item": "81", "rating": [5]}', "entry 1 has a rating that is not a number: [5]"),
                          ('["81", 5]', "entry 1 is not an object with an 'item' (list)")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(line + "\n")
        with pytest.raises(InputError, match=re.escape(message)):
            read_history_file(bad)
    (tmp_path / "neg.csv").write_text("item,rating\n81,-2\n")
    with pytest.raises(InputError, match="rating -2 is outside the 0-5 star scale"):
        read_history_file(tmp_path / "neg.csv")


def test_the_graph_checks_history_entries_too(recsys):
    with pytest.raises(InputError, match="'item' must be a catalog id or title"):
        run(recsys, None, {"history": [{"item": {"id": 81}}]}, explain=False, layout=False)
    with pytest.raises(InputError, match="outside the 0-5 star scale"):
        run(recsys, None, {"history": [{"item": "81", "rating": 11}]}, explain=False, layout=False)


def _kept_urls(web, query):
    hits, _ = run_searches(web, [query], 6)
    outcome = fetch_pages(web, hits, 6, 12)
    return [p["url"].split("/", 3)[-1] for p in outcome.pages], outcome.dropped


def test_planted_pages_change_no_query_s_pages(recsys):
    """Over many tag queries, the kept pages are the same with and without instruction pages:
    planted pages are dropped before ranks count and a crowded result list is searched deeper."""
    items = web_items(recsys.catalog)
    target = pick_injection_target(items)
    queries = [" ".join(it.tags[:3]) + " books" for it in items[:: len(items) // 40]][:40]
    crowded = 0
    with WebClient("local", local_pages=build_local_web(items), options=LOCAL) as clean, \
            WebClient("local", local_pages=build_local_web(items, injections=60, target=target),
                      options=FetchOptions(allow_hosts=("127.0.0.1",))) as noisy:
        for query in queries:
            kept_clean, _ = _kept_urls(clean, query)
            kept_noisy, dropped = _kept_urls(noisy, query)
            assert kept_noisy == kept_clean, query
            crowded += len(dropped) > 6  # more planted pages than a query keeps: only deepening helps
    assert crowded  # the test web really crowds some result lists


def test_model_reasons_that_echo_the_item_or_carry_debris_get_the_template():
    """The failures seen in the goodbooks eval's example pages, each rejected; a real reason kept."""
    from types import SimpleNamespace

    from placecell.agents.recommend.prompting import usable_reason

    night = SimpleNamespace(title="Night (The Night Trilogy #1)", tags=["non-fiction", "classics", "history", "memoir"])
    assert not usable_reason("Night (The Night Trilogy #1) | tags: non-fiction, classics, history, memoir", night, set())
    assert not usable_reason("Night, a classic history memoir", night, set())  # only the item's own words
    assert not usable_reason("Richard Feynman's book 'What Do You Care'}],", night, set())
    assert not usable_reason("Life", night, set())
    good = "A short first-hand account of survival, like the memoirs you enjoyed by Anne Frank."
    assert usable_reason(good, night, set())
    assert not usable_reason(good, night, {good.lower()})  # the same sentence for a second item
    # Another book's line from the prompt, presented as this item's reason (goodbooks eval, user 219)
    prompt = "Books this person liked:\n- The Diary of a Young Girl by Anne Frank, Eleanor Roosevelt (1947) | tags: autobiography, education"
    copied = "The Diary of a Young Girl by Anne Frank, Eleanor Roosevelt (1947) is a memoir that explores the themes of autobiography"
    assert usable_reason(copied, night, set()) and not usable_reason(copied, night, set(), shown=prompt)
    assert usable_reason(good, night, set(), shown=prompt)  # naming a liked book is not copying it


def test_query_mode_both_searches_the_titles_then_the_reasoned_keywords(recsys):
    pages = build_local_web(web_items(recsys.catalog))
    with WebClient("local", local_pages=pages, options=LOCAL) as web:
        direct = run(recsys, web, {"history": HISTORY}, query_mode="direct", explain=False, layout=False)
        reasoned = run(recsys, web, {"history": HISTORY}, query_mode="reasoned", explain=False, layout=False)
        both = run(recsys, web, {"history": HISTORY}, query_mode="both", explain=False, layout=False)
    assert "reason" not in direct["usage"] and both["usage"]["reason"]["calls"] == 1
    assert both["queries"] == list(dict.fromkeys(direct["queries"] + reasoned["queries"]))
    assert len(both["queries"]) > len(direct["queries"]) and both["keywords"] == reasoned["keywords"]


def test_a_failed_explanation_call_keeps_the_page(recsys):
    """An endpoint that times out on the last, optional step used to throw the ranked page away."""
    from placecell.agents.recommend.fakes import default_script
    from placecell.errors import PlacecellError

    def endpoint_times_out_on_explain(messages, node):
        if node == "explain":
            raise PlacecellError("LLM endpoint http://127.0.0.1:9/v1 timed out after 300 s (PLACECELL_LLM_TIMEOUT)")
        return default_script(messages, node)

    graph = build_recommend_graph(recsys, web=None, llm=ScriptedLLM(endpoint_times_out_on_explain),
                                  embedder=HashingEmbedder())
    out = graph.invoke({"history": HISTORY}, context=RecommendContext(**FAST))
    assert out["carousels"] and all(it["reason"] for c in out["carousels"] for it in c["items"])
    assert any(n.startswith("explanations templated: the model call failed (LLM endpoint") for n in out["notes"])


def test_a_checkpointed_thread_reports_each_run_on_its_own(recsys):
    """Notes and usage added up over a thread's runs, and a run without the web kept the last run's queries."""
    from langgraph.checkpoint.memory import InMemorySaver

    graph = build_recommend_graph(recsys, web=None, llm=ScriptedLLM(), embedder=HashingEmbedder(),
                                  checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    pages = build_local_web(web_items(recsys.catalog))
    with WebClient("local", local_pages=pages, options=LOCAL) as web:
        with_web = build_recommend_graph(recsys, web=web, llm=ScriptedLLM(), embedder=HashingEmbedder(),
                                         checkpointer=graph.checkpointer)
        first = with_web.invoke({"history": [*HISTORY, {"item": "No Such Book"}]}, thread,
                                context=RecommendContext(**FAST))
    assert first["queries"] and first["usage"] and any("No Such Book" in n for n in first["notes"])
    second = graph.invoke({"history": HISTORY}, thread, context=RecommendContext(**{**FAST, "query_mode": "none"}))
    assert not any("No Such Book" in n for n in second["notes"])
    assert second["queries"] == [] and second["evidence"] == [] and second["web"] == {"backend": "off"}
    assert "reason" not in second["usage"]
