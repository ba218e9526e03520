"""Graph inputs an embedding app can get wrong: each graph's first node turns them into one
InputError (not a KeyError or AttributeError from deep inside), before any model is loaded."""

from __future__ import annotations

import pytest

from placecell.agents.backends import Backends
from placecell.errors import InputError
from placecell.settings import Settings


@pytest.fixture
def backends(tmp_path):
    return Backends(settings=Settings(home=tmp_path / "home"))


@pytest.mark.parametrize("inputs, message", [
    ({}, "input 'question' must be text, not NoneType"),
    ({"question": 5}, "input 'question' must be text, not int"),
    ({"question": "   "}, "input 'question' is empty"),
])
def test_qa_graph_inputs(backends, inputs, message):
    from placecell.graphs.qa import build_qa_graph

    with pytest.raises(InputError, match=message):
        build_qa_graph(backends).invoke(inputs)


@pytest.mark.parametrize("inputs, message", [
    ({"sources": "notes.md"}, "input 'sources' must be a list of paths or URLs, not str"),
    ({"sources": [42]}, "got 42"),
    ({"sources": []}, "input 'sources' is empty"),
    ({}, "input 'sources' is empty"),
])
def test_ingest_graph_inputs(backends, tmp_path, monkeypatch, inputs, message):
    from placecell.graphs.ingest import build_ingest_graph

    monkeypatch.chdir(tmp_path)  # a string source was read character by character: "." ingested the folder
    (tmp_path / "private.txt").write_text("not to be ingested")
    with pytest.raises(InputError, match=message):
        build_ingest_graph(backends).invoke(inputs)
    assert len(backends.get_registry()) == 0


@pytest.mark.parametrize("inputs, context, message", [
    ({"history": ["Dune"]}, {}, r"input 'history' must be a list of \{item, rating\} entries; got 'Dune'"),
    ({"likes": ["sea"]}, {}, "input 'likes' must be text, not list"),
    ({"user_id": "8", "candidates": "1234"}, {}, "input 'candidates' must be a list of item ids, not str"),
    ({"history": [{"item": "1", "rating": "five"}]}, {}, "rating must be a number, not 'five'"),
    ({"likes": "sea stories"}, {"catalog": "movielens"}, "recommends from the goodbooks_399 catalog, not 'movielens'"),
])
def test_recommend_graph_inputs(inputs, context, message):
    from placecell.agents.recommend.state import RecommendContext
    from placecell.graphs.recommend import build_recommend_graph

    with pytest.raises(InputError, match=message):
        build_recommend_graph().invoke(inputs, context=RecommendContext(query_mode="none", explain=False, **context))


def test_a_misspelt_run_setting_is_named(backends):
    """A context given as a dict with an unknown key was Python's bare TypeError from the dataclass."""
    import re

    from placecell.agents.chat.state import ChatContext
    from placecell.agents.ingest.state import IngestContext
    from placecell.agents.recommend.state import RecommendContext
    from placecell.graphs.qa import build_qa_graph

    with pytest.raises(InputError, match=re.escape("QAContext has no setting 'topk'; did you mean 'top_k'?")):
        build_qa_graph(backends).invoke({"question": "Who?"}, context={"topk": 3, "method": "dense"})
    for cls in (ChatContext, IngestContext, RecommendContext):
        with pytest.raises(InputError, match=f"{cls.__name__} has no setting 'xyzzy'"):
            cls(xyzzy=1)
