"""Carousels: catalogs, EASE, page layout rules, strategies, metrics, tool nodes, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest

from placecell.errors import InputError
from placecell.tools.carousels.cf import EASE
from placecell.tools.carousels.data import implicit_split, item_space, positives_of, split_positives
from placecell.tools.carousels.layout import CarouselEngine
from placecell.tools.carousels.metrics import aggregate, gini, intra_list_diversity, ndcg, user_metrics
from placecell.tools.carousels.strategies import STRATEGIES
from placecell.tools.recsys_data import Catalog, Item, _interactions, canonical_tag, load_catalog, split_by_user

GENRES = ["fantasy", "poetry", "history", "romance", "science"]


def synthetic_catalog(n_items: int = 60, n_users: int = 300, seed: int = 0) -> Catalog:
    """Users like mostly one genre; items carry one or two genre tags and an author."""
    rng = np.random.default_rng(seed)
    items, tags = {}, {}
    for i in range(n_items):
        g = GENRES[i % len(GENRES)]
        extra = GENRES[(i * 7) % len(GENRES)]
        weights = {g: 1.0} | ({extra: 0.5} if extra != g else {})
        items[str(i)] = Item(str(i), f"Book {i}", (f"Author {i % 12}",), 1900 + i, tuple(weights))
        tags[str(i)] = weights
    users, item_ids, values, order = [], [], [], []
    for u in range(n_users):
        taste = u % len(GENRES)
        liked = [i for i in range(n_items) if i % len(GENRES) == taste]
        picks = rng.choice(liked, size=8, replace=False).tolist() + rng.choice(n_items, size=2, replace=False).tolist()
        for t, i in enumerate(picks):
            users.append(str(u))
            item_ids.append(str(i))
            values.append(float(rng.integers(3, 6)))
            order.append(u * 100 + t)
    return Catalog("synthetic", "books", items, _interactions(users, item_ids, values, order), tags, 4.0)


@pytest.fixture(scope="module")
def engine():
    catalog = synthetic_catalog()
    space = item_space(catalog)
    split = split_positives(positives_of(catalog), space)
    return CarouselEngine(catalog, space, EASE(lam=20.0).fit(split.train)), split


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pages_have_no_repeats_and_skip_history(engine, strategy):
    eng, split = engine
    for u in list(split.test)[:25]:
        history = split.train[u].indices.tolist()
        page = eng.page(history, strategy, k=4, n_carousels=3)
        items = page.items()
        assert len(items) == len(set(items)), "an item repeats across carousels"
        assert not set(items) & set(history)
        assert [len(c.items) for c in page.carousels] == [4, 4, 4]
        assert page.carousels[0].kind == "top" and page.fallback is None


def test_user_without_history_gets_popularity_and_is_told(engine):
    eng, _ = engine
    page = eng.page([], "combined", k=3, n_carousels=2)
    assert page.fallback == "popularity" and "popularity" in page.notes[0]
    top = page.carousels[0].items
    assert eng.cf.popularity[top[0]] == eng.cf.popularity.max()


def test_diversity_raises_intra_list_diversity(engine):
    eng, split = engine
    users = list(split.test)[:40]
    ild = {s: np.mean([intra_list_diversity(eng.page(split.train[u].indices.tolist(), s, 4, 3).items(), eng.space.tag_matrix) for u in users]) for s in ("accuracy", "diversity")}
    assert ild["diversity"] > ild["accuracy"]


def test_ease_recovers_genre_neighbours(engine):
    eng, split = engine
    # Users of genre 0 liked items 0, 5, 10, ...: their CF top items should be genre-0 items.
    history = [i for i in range(0, 30, 5)]
    scores = eng.cf.score(history).scores
    top = np.argsort(-scores)[:5]
    assert all(int(eng.space.ids[i]) % 5 == 0 for i in top)
    assert np.isneginf(scores[history]).all()


def test_split_by_user_holds_out_the_last_fifth():
    users = np.array(["a"] * 10 + ["b"] * 4 + ["c"] * 5)
    mask = split_by_user(users)
    assert mask[:10].tolist() == [False] * 8 + [True] * 2
    assert not mask[10:14].any()  # fewer than 5 events: nothing held out
    assert mask[14:].tolist() == [False] * 4 + [True]


def test_metrics_on_known_lists():
    tags = np.eye(3, dtype=np.float32)
    assert ndcg([1, 2, 3], {1}) == pytest.approx(1.0)
    assert ndcg([2, 1], {1}) == pytest.approx(1 / np.log2(3))
    assert intra_list_diversity([0, 1, 2], tags) == pytest.approx(1.0)
    assert intra_list_diversity([0, 0], tags) == pytest.approx(0.0)
    assert gini(np.ones(10)) == pytest.approx(0.0, abs=1e-9)
    assert gini(np.array([0, 0, 0, 10.0])) > 0.7
    m = user_metrics([0, 1], [1], [2], tags, np.array([1.0, 2.0, 3.0]))
    assert m["precision@10"] == pytest.approx(0.1) and m["recall@10"] == 1.0 and m["serendipity"] == pytest.approx(0.5)
    agg = aggregate([m, m], [[0, 1], [0]], np.array([True, True, False]))
    assert agg["coverage"] == 1.0 and list(agg)[:3] == ["precision@10", "recall@10", "ndcg@10"]


def test_canonical_tags_drop_bookkeeping_shelves():
    assert canonical_tag("to-read") is None and canonical_tag("read-in-2016") is None
    assert canonical_tag("owned-books") is None and canonical_tag("kindle") is None
    assert canonical_tag("Non-Fiction") == canonical_tag("nonfiction")
    assert canonical_tag("memoirs") == canonical_tag("memoir")


def test_shipped_catalogs_load_with_metadata():
    books = load_catalog("goodbooks_399")
    assert len(books.items) == 399 and books.kind == "books"
    assert books.items["15"].title == "The Diary of a Young Girl" and "Anne Frank" in books.items["15"].creators
    assert "to-read" not in {t for item in books.items.values() for t in item.tags}
    assert books.history("8") and books.history("no-such-user") == []
    movies = load_catalog("movielens")
    assert len(movies.items) == 9125 and movies.items["1"].year == 1995 and "Animation" in movies.items["1"].tags
    with pytest.raises(InputError, match="unknown catalog"):
        load_catalog("netflix")


def test_build_carousels_node_uses_given_candidates():
    from placecell.tools.recsys_nodes import ScoredCandidate, build_carousels

    books = load_catalog("goodbooks_399")
    seen = set(books.history("8"))
    pool = [i for i in list(books.items)[:120] if i not in seen]
    scored = [ScoredCandidate(item_id=i, score=1.0 / (n + 1)) for n, i in enumerate(pool)] + [ScoredCandidate(item_id="zzz", score=1.0)]
    page = build_carousels("8", scored, k=4, strategy="diversity", catalog="goodbooks_399", n_carousels=3)
    items = [it.item_id for c in page.carousels for it in c.items]
    assert set(items) <= set(pool) and len(items) == len(set(items))
    assert any("not in the catalog" in n for n in page.notes)
    cold = build_carousels("stranger", k=3, strategy="novelty", catalog="goodbooks_399")
    assert cold.fallback == "popularity" and cold.notes


def test_tools_are_structured_tools():
    from placecell.tools.recsys_nodes import recsys_tools

    score_tool, carousel_tool = recsys_tools()
    assert score_tool.name == "score_candidates" and carousel_tool.name == "build_carousels"
    out = carousel_tool.invoke({"user": "8", "k": 2, "n_carousels": 2, "strategy": "accuracy"})
    assert len(out["carousels"]) == 2


def test_cli_carousels_needs_all_files(capsys):
    from placecell.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", "carousels", "--interactions", "x.csv"])
    assert exc.value.code == 2 and "go together" in capsys.readouterr().err


def test_eval_on_explicit_files(tmp_path):
    from placecell.evals.carousels import run_carousel_eval

    catalog = synthetic_catalog(n_users=150)
    pos = positives_of(catalog)
    test = split_by_user(pos.users)
    books = tmp_path / "books.csv"
    books.write_text("book_id,goodreads_book_id,authors,title,original_publication_year\n" + "".join(
        f"{i},{i},{it.creators[0]},{it.title},{it.year}\n" for i, it in catalog.items.items()))
    tag_ids = {g: n for n, g in enumerate(GENRES)}
    (tmp_path / "tags.csv").write_text("tag_id,tag_name\n" + "".join(f"{n},{g}\n" for g, n in tag_ids.items()))
    (tmp_path / "book_tags.csv").write_text("goodreads_book_id,tag_id,count\n" + "".join(
        f"{i},{tag_ids[t]},{int(w * 100)}\n" for i, ws in catalog.tag_weights.items() for t, w in ws.items()))
    for name, mask in (("train.csv", ~test), ("holdout.csv", test)):
        part = pos.select(mask)
        (tmp_path / name).write_text("user_id,book_id,rating\n" + "".join(f"{u},{i},5\n" for u, i in zip(part.users, part.items)))
    files = tuple(str(tmp_path / n) for n in ("train.csv", "holdout.csv", "books.csv", "book_tags.csv", "tags.csv"))
    small = {"ease": (20.0,), "accuracy": [{}], "diversity": [{"mmr_lambda": 0.7}], "xquad": [{"xquad_lambda": 0.5}],
             "novelty": [{"novelty_weight": 0.2}], "serendipity": [{"serendipity_weight": 0.2}],
             "combined": [{"combined": (1.0, 0.2, 0.0, 0.0)}, {"combined": (1.0, 0.7, 0.1, 0.1)}]}
    results = run_carousel_eval(files=files, out_dir=tmp_path / "out", seeds=2, max_users=60, say=lambda m: None, grids=small, tune_users=60)
    assert set(results["strategies"]) == {"cf", *STRATEGIES}
    assert results["strategies"]["cf"]["ndcg@10"] > 0.1
    assert (tmp_path / "out" / "report.md").is_file() and len(results["target"]["per_seed"]) == 2
    # The report says what made it: the command (with the files, the non-default flags) and the machine.
    report = (tmp_path / "out" / "report.md").read_text()
    assert results["provenance"]["command"].startswith("placecell eval carousels --interactions ")
    assert "--seeds 2 --max-users 60 --out " in results["provenance"]["command"]
    assert f"- Command: `{results['provenance']['command']}`." in report and "- Machine: " in report
    assert "- Note: train.csv: ratings of 4 or more are the positives; lower ratings are not used." in report
    # Too little data was a NaN tuning score, then a traceback; a row naming no known book was dropped unsaid.
    (tmp_path / "tiny.csv").write_text("user_id,book_id,rating\n1,abc,5\n" + "".join(
        f"{u},{i},5\n" for u, i in list(zip(pos.users, pos.items))[:2]))
    notes = []
    with pytest.raises(InputError, match="too few training positives to tune on: 2 train positives"):
        run_carousel_eval(files=(str(tmp_path / "tiny.csv"), *files[1:]), out_dir=tmp_path / "tiny", seeds=1,
                          say=notes.append, grids=small)
    assert any("1 row(s) name a book_id not in books.csv (e.g. 'abc'): skipped" in n for n in notes)


@pytest.mark.slow
def test_full_carousel_eval_goodbooks(tmp_path):
    from placecell.evals.carousels import run_carousel_eval

    results = run_carousel_eval("goodbooks_399", out_dir=tmp_path, seeds=3, say=lambda m: None)
    assert results["strategies"]["combined"]["ild"] > results["strategies"]["cf"]["ild"]


def test_combined_discounts_relevance_by_slot_and_uses_mean_page_similarity():
    from placecell.tools.carousels.strategies import PageState, StrategyParams, UserContext, marginal_scores

    catalog = synthetic_catalog()
    space = item_space(catalog)
    n = len(space.ids)
    ctx = UserContext(np.linspace(1, 0, n), np.ones(n, dtype=bool), np.zeros(n), np.zeros(n), np.zeros(len(space.tags)))
    state = PageState(space, space.raw_tags, np.arange(len(space.tags)))
    params = StrategyParams(combined=(1.0, 0.5, 0.0, 0.0))
    idx = np.arange(n)
    assert np.allclose(marginal_scores("combined", ctx, state, params, idx), ctx.rel)  # slot 0: log2(2) = 1, empty page
    state.add(0)
    state.add(1)
    expected = ctx.rel / np.log2(4) - 0.5 * space.similarity_to([0, 1]).mean(1)
    assert np.allclose(marginal_scores("combined", ctx, state, params, idx), expected)


def test_pick_rule_needs_a_sure_ndcg_budget_then_centres_the_target():
    from placecell.evals.carousels import Validation, _pick

    rng = np.random.default_rng(0)
    cf_users = [{"ndcg@10": float(v), "ild": 0.5} for v in rng.random(400)]
    val = Validation(cf_users)

    def cand(ndcg_scale, ild):
        users = [{"ndcg@10": m["ndcg@10"] * ndcg_scale, "ild": ild} for m in cf_users]
        return ({"b": ndcg_scale}, {"ndcg@10": 0.5 * ndcg_scale, "ild": ild}, val.target(users))

    cands = [cand(0.99, 0.62), cand(0.97, 0.70), cand(0.90, 0.80)]  # ILD +24 %, +40 %, +60 %
    assert _pick("combined", cands)[0] == {"b": 0.97}  # the -10 % nDCG setting is not admissible
    assert _pick("combined", [cands[0], cands[2]])[0] == {"b": 0.99}  # no +30 %: most diverse admissible
    assert _pick("combined", [cands[2]])[0] == {"b": 0.90}  # nothing admissible: most accurate
