"""NeuroPath's path mechanics without an LLM: seeds, hop 1, expansion, pruning, candidates."""

from __future__ import annotations

import numpy as np
import pytest

from placecell.agents.qa import neuropath as npath
from placecell.tools.stores.kg import KnowledgeGraph


def _kg():
    kg = KnowledgeGraph()
    kg.add_passage("p1", [["Longleat Safari Park", "located at", "Longleat"]])
    kg.add_passage("p2", [["Longleat", "seat of", "Alexander Thynn"], ["Longleat", "built in", "1580"]])
    kg.add_passage("p3", [["Alexander Thynn", "styled", "Viscount Weymouth"]])
    return kg


def test_surface_entities():
    assert npath.surface_entities("Are Travis Parrott and Menno Oosting both tennis players?") == [
        "Travis Parrott", "Menno Oosting"]
    assert npath.surface_entities('Who directed "El Extrano Viaje"?')[0] == "El Extrano Viaje"


def test_hop1_expand_and_candidates():
    kg = _kg()
    hop1 = npath.hop1_paths(kg, ["longleat safari park"])
    assert [p["frontier"] for p in hop1] == ["longleat"] and hop1[0]["passage_ids"] == ["p1"]
    known = {npath.path_text(p) for p in hop1}
    hop2 = npath.expand_paths(kg, hop1, known)
    assert {p["triples"][-1][2] for p in hop2} == {"alexander thynn", "1580"}
    assert all(len(p["triples"]) == 2 and p["passage_ids"] == ["p1", "p2"] for p in hop2)
    thynn = [p for p in hop2 if p["frontier"] == "alexander thynn"]
    hop3 = npath.expand_paths(kg, thynn, known)
    assert hop3[0]["triples"][-1] == ["alexander thynn", "styled", "viscount weymouth"]
    assert npath.candidate_passages(hop3 + hop2) == ["p1", "p2", "p3"]
    assert npath.expand_paths(kg, thynn, known) == []  # already known: no duplicates


def test_prune_keeps_the_most_similar():
    paths = [{"triples": [[f"e{i}", "r", "x"]], "passage_ids": ["p"], "frontier": "x", "score": 0} for i in range(5)]

    def embed(texts):
        # e3 is closest to the query by construction.
        return np.array([[1.0, 0.0] if ("e3" in t or t == "q") else [0.0, 1.0] for t in texts])

    kept = npath.prune(embed, paths, "q", 2)
    assert len(kept) == 2 and kept[0]["triples"][0][0] == "e3"
    assert npath.prune(embed, paths, "q", 10) == paths


def test_valid_ids_are_one_based_unique_in_range():
    assert npath.valid_ids([2, 2, 0, 7, 1], 3) == [1, 0]


def test_link_seeds_nearest_plus_aliases():
    kg = _kg()
    kg.g.add_edge("longleat", "longleat house", key="alias", kind="alias", score=0.9)
    names = kg.entities()

    def embed(texts):
        return np.array([[1.0 if t == n or (t == "longleat" and n == "longleat") else 0.0 for n in names]
                         for t in texts]) + 1e-6

    assert npath.link_seeds(kg, embed, ["Longleat"]) == ["longleat", "longleat house"]


def test_reasoning_fallback_survives_a_long_question():
    """A 300-character question (HotpotQA has them) once crashed the fallback's validation."""
    class Unparseable:
        def structured(self, messages, schema_cls, fallback, **kw):
            return fallback  # what the helper returns after a failed retry

    question = "Brain Box was a live, interactive quiz show broadcast on which channel " * 5
    out = npath.reason_over_paths(Unparseable(), question, [])
    assert out.expansion_requirements == question[:200] and out.current_chain == ""


def test_listing_probe_cancels_a_first_position_bias():
    """A model that always answers "1" favours whichever path is listed first; reading the listing
    forward and reversed gives the two ends the same score, and a path the model really prefers
    (here: the one mentioning Dijon, wherever it is listed) still comes out on top."""

    class Biased:
        def next_token_probs(self, messages, candidates, *, prefix="", node="probe"):
            lines = [ln for ln in messages[0]["content"].splitlines() if ln[:1].isdigit()]
            raw = {c: (0.5 if c == "1" else 0.1) + (1.0 if "dijon" in lines[int(c) - 1] else 0.0) for c in candidates}
            total = sum(raw.values())
            return {c: v / total for c, v in raw.items()}

    paths = [{"triples": [[f"e{i}", "r", "dijon" if i == 2 else f"x{i}"]], "passage_ids": ["p"], "frontier": "x"}
             for i in range(4)]
    scores = npath.llm_path_scores(Biased(), "q?", paths, [0, 1, 2, 3], probe="list")
    assert max(scores, key=scores.get) == 2
    assert abs(scores[0] - scores[3]) < 1e-9  # first and last listed trade places: the bias cancels
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_no_probe_scores_paths_without_calling_the_model():
    """probe "none": no LLM call; the path most similar to the query, which also touches a query
    entity, ranks first, and an unknown probe name is refused."""

    class NoCalls:
        def next_token_probs(self, *a, **k):
            raise AssertionError("probe 'none' must not call the model")

    paths = [{"triples": [["dijon", "capital of", "burgundy"]], "passage_ids": ["p1"], "frontier": "burgundy"},
             {"triples": [["lyon", "river", "rhone"]], "passage_ids": ["p2"], "frontier": "rhone"},
             {"triples": [["paris", "river", "seine"]], "passage_ids": ["p3"], "frontier": "seine"}]

    def embed(texts):  # the query is closest to the Dijon path, then Lyon
        table = {"dijon": [1.0, 0.0], "lyon": [0.6, 0.8], "paris": [0.0, 1.0]}
        return np.array([next((v for k, v in table.items() if k in t.lower()), [1.0, 0.1]) for t in texts])

    scores = npath.score_paths(NoCalls(), embed, "Which region is Dijon the capital of?", "dijon capital region",
                               paths, {"dijon"}, {"dijon"}, probe="none")
    assert scores[0] > scores[1] > scores[2] and all(0.0 <= s <= 1.0 for s in scores)
    with pytest.raises(ValueError):
        npath.score_paths(NoCalls(), embed, "q", "q", paths, set(), set(), probe="maybe")


def test_an_entity_with_numbers_links_only_to_one_sharing_a_number():
    """Embeddings put dates close together: "1946-92" must not seed "1964 05 17" (seen in the demo)."""
    kg = _kg()
    kg.add_passage("p4", [["Alexander Thynn", "born", "1964 05 17"], ["Alexander Thynn", "heir from", "1946"],
                          ["Alexander Thynn", "was a", "politician"]])
    names = kg.entities()

    def embed(texts):  # every number-like text is nearest to "1964 05 17"
        return np.array([[1.0 if (n == "1964 05 17" and any(c.isdigit() for c in t)) or n == t else 0.0
                          for n in names] for t in texts]) + 1e-6

    assert npath.link_seeds(kg, embed, ["1946-92"]) == ["1946"]
    assert npath.link_seeds(kg, embed, ["2001"]) == []  # no entity shares a number: no seed
    assert npath.link_seeds(kg, embed, ["politician", "1964"]) == ["politician", "1964 05 17"]


def test_cover_entities_first_puts_the_pair_that_mentions_most_question_entities_first():
    texts = {"a": "Travis Parrott\nTravis Parrott is an American tennis player.",
             "b": "Travis Parrott (born 1980) won the ATP doubles title.",
             "c": "Menno Oosting\nMenno Oosting was a Dutch tennis player.",
             "d": "Tennis is a racket sport.",
             "e": "Oostingen is a village."}  # a name inside another word is no mention
    ranking = ["a", "b", "d", "e", "c"]
    entities = ["Travis Parrott", "Menno Oosting"]
    assert npath.cover_entities_first(ranking, texts, entities) == ["a", "c", "b", "d", "e"]
    # Ties in coverage keep the best-ranked pair; no entity mentioned anywhere changes nothing.
    assert npath.cover_entities_first(ranking, texts, ["Travis Parrott"]) == ranking
    assert npath.cover_entities_first(ranking, texts, ["Roger Federer"]) == ranking
    assert npath.cover_entities_first(ranking, texts, []) == ranking
    # Only the top `pool` passages are candidates.
    assert npath.cover_entities_first(ranking, texts, entities, pool=4) == ranking


def test_follow_title_links_puts_the_passages_the_top_one_names_next():
    passages = {"song": ("You'll Never Find Another Love like Mine",
                         "You'll Never Find Another Love like Mine\nA song by Lou Rawls, on All Things in Time "
                         "(1976). Produced in Philadelphia; rawlsville and philadelphia in lower case are no links, "
                         "the Rank Organisation is one."),
                "rawls": ("Lou Rawls", "Lou Rawls\nLou Rawls was an American singer."),
                "album": ("All Things in Time (album)", "All Things in Time (album)\nThe tenth album of Lou Rawls."),
                "philly": ("Philadelphia", "Philadelphia\nPhiladelphia is a city in Pennsylvania."),
                "rawlsville": ("Rawlsville", "Rawlsville\nA town."),  # named in lower case only: no link
                "other": ("Capitol Records", "Capitol Records\nA record label."),
                "rank": ("The Rank Organisation", "The Rank Organisation\nA British company.")}
    from placecell.tools.retrievers import title_key

    index: dict[str, list[str]] = {}
    for pid, (title, _) in passages.items():
        index.setdefault(title_key(title), []).append(pid)
    assert title_key("All Things in Time (album)") == "all things in time"
    ranking = ["song", "other", "philly", "rawlsville"]
    # Named passages in the ranking keep their order and come first, then the caller's outside
    # order; the limit caps them; the rest of the ranking follows unchanged.
    new, linked = npath.follow_title_links(ranking, passages, index, outside=["album", "rawls"], anchors=1, limit=2)
    assert linked == ["philly", "album"]
    assert new == ["song", "philly", "album", "other", "rawlsville"]
    new, linked = npath.follow_title_links(ranking, passages, index, outside=["album", "rawls", "rank"], anchors=1,
                                           limit=4)
    assert linked == ["philly", "album", "rawls", "rank"]
    # A passage's own title is no link, and a top passage that names nothing changes nothing.
    assert npath.follow_title_links(["rawls", "other"], passages, index, outside=["album"], anchors=1) == (
        ["rawls", "other"], [])
    assert npath.follow_title_links([], passages, index) == ([], [])
    # By default links come from the top two and go after both.
    new, linked = npath.follow_title_links(["other", "album", "philly"], passages, index, outside=["rawls"])
    assert (new, linked) == (["other", "album", "rawls", "philly"], ["rawls"])
    # Depth 2: a place the first links leave free goes to a passage they name (a third hop); a
    # place they fill stays theirs.
    chain = {"q": ("Question page", "Question page\nThe song is by Lou Rawls."),
             "x": ("Unrelated", "Unrelated\nNothing here."),
             **passages}
    chain["rawls"] = ("Lou Rawls", "Lou Rawls\nLou Rawls recorded for Capitol Records.")
    one = npath.follow_title_links(["q", "x", "philly"], chain, index, outside=["rawls", "other"])
    two = npath.follow_title_links(["q", "x", "philly"], chain, index, outside=["rawls", "other"], depth=2)
    assert one == (["q", "x", "rawls", "philly"], ["rawls"])
    assert two == (["q", "x", "rawls", "other", "philly"], ["rawls", "other"])
    assert npath.follow_title_links(["q", "x"], chain, index, outside=["rawls"], depth=2, limit=1)[1] == ["rawls"]


def test_title_links_match_names_with_or_without_accents():
    from placecell.tools.retrievers import title_key

    passages = {"ballet": ("Aschenbrodel", "Aschenbrodel\nA ballet by Johann Strauß II, set near the Tekeze River."),
                "strauss": ("Johann Strauss II", "Johann Strauss II\nAn Austrian composer."),
                "river": ("Tekezé River", "Tekezé River\nA river in Ethiopia."),
                "other": ("Vienna", "Vienna\nA city.")}
    index = {title_key(title): [pid] for pid, (title, _) in passages.items()}
    new, linked = npath.follow_title_links(["ballet", "other"], passages, index, outside=["river", "strauss"])
    assert linked == ["river", "strauss"]


def test_keep_nearest_gives_missing_nearest_passages_the_last_top_places():
    ranking = ["a", "b", "c", "d", "e", "f", "g"]
    assert npath.keep_nearest(ranking, ["c"], 5) == ranking  # already in the top 5: nothing moves
    assert npath.keep_nearest(ranking, ["g"], 5) == ["a", "b", "c", "d", "g", "e", "f"]
    assert npath.keep_nearest(ranking, ["g", "b", "f"], 5) == ["a", "b", "c", "g", "f", "d", "e"]
    assert npath.keep_nearest(ranking, ["x"], 2) == ["a", "x", "b", "c", "d", "e", "f", "g"]  # from outside the ranking
    assert npath.keep_nearest(ranking, [], 5) == ranking
