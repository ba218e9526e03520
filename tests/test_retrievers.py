"""Baseline retrievers (dense, BM25, RRF hybrid, HippoRAG PPR) and IRCoT on a tiny corpus with
real MiniLM embeddings; no LLM (PPR gets its entities, IRCoT a scripted model)."""

from __future__ import annotations

import pytest

from placecell.agents.qa.ircot import ANSWER_MARK, parse_thought, run_ircot
from placecell.tools.llm.base import ChatResult
from placecell.tools.retrievers import RETRIEVERS, bm25, dense, hybrid, ppr, ppr_scores, rrf, tokenize
from placecell.tools.stores.kg import KnowledgeGraph
from placecell.tools.stores.passages import Passage, passage_id

CORPUS = [
    ("Lou Rawls", "Lou Rawls was an American soul singer who recorded for Capitol Records."),
    ("Love Is a Hurtin' Thing", "Love Is a Hurtin' Thing is a 1966 single by the singer Lou Rawls."),
    ("Capitol Records", "Capitol Records is a record label founded in Los Angeles in 1942."),
    ("Mont Blanc", "Mont Blanc is the highest mountain of the Alps, on the border of France and Italy."),
    ("Lake Geneva", "Lake Geneva is a deep lake on the north side of the Alps, shared by Switzerland and France."),
    ("Tour de France", "The Tour de France is an annual men's multiple-stage bicycle race held in France."),
]


class FakeBackends:
    """Registry and vectors as the ingest graph makes them, with the real embedder."""

    def __init__(self, tmp_path, llm=None):
        from placecell.agents.backends import Backends
        from placecell.settings import get_settings

        self._b = Backends(settings=get_settings(home=tmp_path / "home"), llm=llm)
        passages = [Passage(passage_id(f"{t}\n{x}"), t, f"{t}\n{x}") for t, x in CORPUS]
        self._b.get_registry().add_many(passages)
        vecs = self._b.get_embedder().embed([p.text for p in passages])
        self._b.get_vectors().upsert([p.id for p in passages], [p.text for p in passages],
                                     [{"title": p.title} for p in passages], vecs)
        self.ids = {p.title: p.id for p in passages}

    def __getattr__(self, name):
        return getattr(self._b, name)


@pytest.fixture
def backends(tmp_path):
    return FakeBackends(tmp_path)


def titles(backends, ranking):
    by_id = {v: k for k, v in backends.ids.items()}
    return [by_id[pid] for pid, _ in ranking]


def test_tokenize_lowercases_words():
    assert tokenize("Lou Rawls' 1966 single, Capitol-Records!") == ["lou", "rawls", "1966", "single", "capitol",
                                                                   "records"]


def test_tokenize_folds_accents_so_an_unaccented_question_matches():
    assert tokenize("The Tekezé River, Aschenbrödel") == tokenize("the Tekeze river, aschenbrodel")
    assert tokenize("がぎ йод") == ["がぎ", "йод"]  # marks of other scripts stay


def test_dense_is_exact_cosine(backends):
    ranking = dense("Which record label is based in Los Angeles?", backends, 6)
    assert titles(backends, ranking)[0] == "Capitol Records"
    reg = backends.get_registry()
    emb = backends.get_embedder().embed
    q = emb(["Which record label is based in Los Angeles?"])[0]
    expected = {pid: float(emb([reg.get(pid).text])[0] @ q) for pid, _ in ranking}
    assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)
    for pid, score in ranking:
        assert score == pytest.approx(expected[pid], abs=1e-5)


def test_bm25_matches_rank_bm25_defaults(backends):
    from rank_bm25 import BM25Okapi

    reg = backends.get_registry()
    passages = reg.all()
    scores = BM25Okapi([tokenize(p.text) for p in passages]).get_scores(tokenize("highest mountain Alps"))
    ranking = bm25("highest mountain Alps", backends, 3)
    assert titles(backends, ranking)[0] == "Mont Blanc"
    assert ranking[0][1] == pytest.approx(max(scores))
    assert len(ranking) == 3


def test_bm25_index_follows_the_registry(backends):
    assert "Dijon" not in titles(backends, bm25("mustard city", backends, 6))
    text = "Dijon\nDijon is a city in Burgundy, famous for its mustard."
    backends.get_registry().add_many([Passage(passage_id(text), "Dijon", text)])
    backends.ids["Dijon"] = passage_id(text)
    assert titles(backends, bm25("mustard city", backends, 1)) == ["Dijon"]


def test_rrf_by_hand():
    fused = rrf([[("a", 9.0), ("b", 5.0), ("c", 1.0)], [("b", 3.0), ("c", 2.0), ("a", 1.0)]])
    assert [pid for pid, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61 + 1 / 63)


def test_hybrid_fuses_full_dense_and_bm25(backends):
    q = "singer recorded for a Los Angeles label"
    expected = rrf([dense(q, backends, None), bm25(q, backends, None)], 4)
    assert hybrid(q, backends, 4) == expected
    assert set(RETRIEVERS) == {"dense", "bm25", "hybrid", "ppr"}


def hand_kg(ids) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    kg.add_passage(ids["Love Is a Hurtin' Thing"], [["Love Is a Hurtin' Thing", "single by", "Lou Rawls"]])
    kg.add_passage(ids["Lou Rawls"], [["Lou Rawls", "recorded for", "Capitol Records"],
                                      ["Lou Rawls", "is", "soul singer"]])
    kg.add_passage(ids["Capitol Records"], [["Capitol Records", "founded in", "Los Angeles"]])
    kg.add_passage(ids["Mont Blanc"], [["Mont Blanc", "highest mountain of", "Alps"]])
    kg.add_passage(ids["Lake Geneva"], [["Lake Geneva", "north side of", "Alps"]])
    return kg


def test_ppr_spreads_from_seed_to_second_hop(backends):
    kg = hand_kg(backends.ids)
    ranking = ppr("Which label did the singer of Love Is a Hurtin' Thing record for?", backends, 6,
                  entities=["Love Is a Hurtin' Thing"], kg=kg)
    top = titles(backends, ranking)
    assert set(top[:2]) == {"Love Is a Hurtin' Thing", "Lou Rawls"}
    assert top[2] == "Capitol Records"  # two hops away, still reached
    assert all(s > 0 for _, s in ranking[:3])
    assert len(ranking) == 6 and len(set(top)) == 6  # unreached passages are filled in by dense


def test_ppr_mass_is_sum_over_passage_entities(backends):
    import networkx as nx

    kg = hand_kg(backends.ids)
    seeds = ["lou rawls"]
    scores = ppr_scores(kg, seeds, damping=0.5)
    g = nx.Graph()
    for h, _, t, _ in kg.triples():
        g.add_edge(h, t, weight=g.get_edge_data(h, t, {"weight": 0})["weight"] + 1)
    mass = nx.pagerank(g, alpha=0.5, personalization={"lou rawls": 1.0}, weight="weight")
    pid = backends.ids["Lou Rawls"]
    assert scores[pid] == pytest.approx(mass["lou rawls"] + mass["capitol records"] + mass["soul singer"], abs=1e-5)
    assert scores[backends.ids["Mont Blanc"]] == 0.0  # unreachable from the seed


def test_ppr_follows_alias_edges(backends):
    kg = hand_kg(backends.ids)
    kg.g.add_edge("capitol records", "lake geneva", key="alias", kind="alias", score=0.9)
    kg.g.add_edge("lake geneva", "capitol records", key="alias", kind="alias", score=0.9)
    scores = ppr_scores(kg, ["capitol records"])
    assert scores[backends.ids["Lake Geneva"]] > scores[backends.ids["Mont Blanc"]] > 0


@pytest.mark.parametrize("kg_kind,entities", [("empty", ["Lou Rawls"]), ("hand", [])])
def test_ppr_falls_back_to_dense(backends, kg_kind, entities):
    kg = KnowledgeGraph() if kg_kind == "empty" else hand_kg(backends.ids)
    q = "highest mountain in the Alps"
    assert ppr(q, backends, 4, entities=entities, kg=kg) == dense(q, backends, 4)


def test_ppr_asks_the_ner_function_for_entities(tmp_path):
    b = FakeBackends(tmp_path, llm="the-llm")
    seen = []

    def ner(llm, question):
        seen.append((llm, question))
        return ["Mont Blanc"]

    ranking = ppr("How high is Mont Blanc?", b, 3, ner=ner, kg=hand_kg(b.ids))
    assert seen == [("the-llm", "How high is Mont Blanc?")]
    assert titles(b, ranking)[0] == "Mont Blanc"


class ScriptedLLM:
    """Returns the given thoughts in order and records the prompts."""

    n_ctx = 4096

    def __init__(self, thoughts):
        self.thoughts, self.calls = list(thoughts), []

    def count_tokens(self, text):
        return len(text) // 4

    def chat(self, messages, *, max_tokens=512, stop=None, node="chat", **_):
        self.calls.append((messages[-1]["content"], node))
        return ChatResult(text=self.thoughts.pop(0))


def test_ircot_retrieves_with_each_thought_and_merges_by_best_score(backends):
    llm = ScriptedLLM(["Love Is a Hurtin' Thing is by Lou Rawls.\nignored", "So the answer is: Capitol Records."])
    result = run_ircot("Which label did the singer of Love Is a Hurtin' Thing record for?", backends, 6, llm=llm)
    assert result.thoughts == ["Love Is a Hurtin' Thing is by Lou Rawls.", "So the answer is: Capitol Records."]
    assert result.steps == 2  # stopped at "answer is" before a third retrieval
    assert [node for _, node in llm.calls] == ["ircot", "ircot"]
    assert "Thought so far: Love Is a Hurtin' Thing is by Lou Rawls." in llm.calls[1][0]
    pool = dict(dense("Which label did the singer of Love Is a Hurtin' Thing record for?", backends, 2))
    for pid, score in dense("Love Is a Hurtin' Thing is by Lou Rawls.", backends, 4):
        pool[pid] = max(pool.get(pid, score), score)
    merged = sorted(pool.items(), key=lambda x: -x[1])
    assert result.ranking[: len(merged)] == merged
    assert len(result.ranking) == 6 and len({pid for pid, _ in result.ranking}) == 6


def test_ircot_stops_after_three_retrievals(backends):
    llm = ScriptedLLM(["Lou Rawls recorded for Capitol Records.", "Capitol Records is in Los Angeles.", "unused"])
    result = run_ircot("Where is the label of Lou Rawls based?", backends, 10, llm=llm)
    assert result.steps == 3 and len(llm.calls) == 2
    assert len(result.ranking) == 6  # the whole corpus: nothing to fill beyond it


def test_parse_thought():
    assert parse_thought("\n Next step: Paris is in France.\nmore") == "Paris is in France."
    assert parse_thought("   ") == ""
    assert parse_thought("Wikipedia Title: Paris\nParis is in France.") == "Paris is in France."
    assert ANSWER_MARK in parse_thought("So the answer is: Paris").lower()


def test_ircot_drops_passages_that_do_not_fit(backends):
    from placecell import prompts

    question = "What is Mont Blanc the highest mountain of?"
    llm = ScriptedLLM(["So the answer is: Alps."])
    bare = prompts.load("ircot_step").format(passages="(none)", question=question, thoughts="(none)")
    examples = bare.count("Wikipedia Title:")
    llm.n_ctx = llm.count_tokens(bare) + 128 + 40  # the margin for the thought + room for one passage
    run_ircot(question, backends, 4, llm=llm)
    prompt = llm.calls[0][0]
    assert llm.count_tokens(prompt) + 128 <= llm.n_ctx
    assert prompt.count("Wikipedia Title:") == examples + 1  # only the best real passage fits
    assert "Wikipedia Title: Mont Blanc" in prompt
