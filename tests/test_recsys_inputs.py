"""Bad and awkward input files of the recsys tools: CTR tables, goodbooks-layout catalogs, the
tool nodes' arguments. Each is a one-line InputError (or a typed validation error), or is read
the way a person meant it (a spreadsheet's byte-order mark, test columns in another order)."""

from __future__ import annotations

import math
import re

import pytest
from pydantic import ValidationError

from placecell.errors import InputError
from placecell.tools.ctr.data import bucket_number, load_table
from placecell.tools.recsys_data import load_goodbooks_files
from support import FIELDS, synthetic_rows, write_csv


@pytest.mark.parametrize("header, message", [
    (["click"], "only the label column"),
    (["click", "site", "click"], "click appear more than once"),
    (["click", "site", "site"], "site appear more than once"),
    (["click", "site", ""], "column 3 of the header has no name"),
])
def test_csv_headers_that_cannot_name_fields(tmp_path, header, message):
    rows = [["1" if i % 2 else "0"] + ["x"] * (len(header) - 1) for i in range(10)]
    with pytest.raises(InputError, match=message):
        load_table(write_csv(tmp_path / "t.csv", rows, header), "csv", label="click")


def test_byte_order_mark_does_not_hide_the_label(tmp_path):
    path = write_csv(tmp_path / "t.csv", synthetic_rows(30, 0))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    table = load_table(path, "csv", label="click")
    assert table.schema.fields == FIELDS and len(table) == 30


def test_test_columns_in_another_order_are_matched_by_name(tmp_path):
    rows = synthetic_rows(40, 1)
    train = load_table(write_csv(tmp_path / "train.csv", synthetic_rows(40, 0)), "csv", label="click")
    order = ["noise", "click", "device", "site", "hour", "slot"]
    header = ["click"] + FIELDS
    shuffled = [[row[header.index(col)] for col in order] for row in rows]
    same = load_table(write_csv(tmp_path / "a.csv", rows), "csv", label="click", schema=train.schema)
    moved = load_table(write_csv(tmp_path / "b.csv", shuffled, order), "csv", label="click", schema=train.schema)
    assert (moved.values == same.values).all() and (moved.labels == same.labels).all()


def test_overflowed_numbers_get_their_own_bucket():
    assert bucket_number("inf") == "Linf" and bucket_number("-inf") == "-inf"
    assert bucket_number("nan") == "" and bucket_number("100") == f"L{int(math.log(100) ** 2)}"


def _goodbooks(tmp_path, ratings: str, book_tags: str = "goodreads_book_id,tag_id,count\n11,1,5\n12,2,3\n",
               tags: str = "tag_id,tag_name\n1,fantasy\n2,history\n"):
    (tmp_path / "books.csv").write_text("book_id,goodreads_book_id,authors,title\n1,11,A,One\n2,12,B,Two\n")
    (tmp_path / "book_tags.csv").write_text(book_tags)
    (tmp_path / "tags.csv").write_text(tags)
    (tmp_path / "ratings.csv").write_text(ratings)
    return load_goodbooks_files(*(tmp_path / n for n in ("ratings.csv", "books.csv", "book_tags.csv", "tags.csv")))


@pytest.mark.parametrize("ratings, message", [
    ("user_id,book_id,rating\n7,1,5\n7,2,five\n", r"ratings.csv:3: rating 'five' is not a number"),
    ("user_id,book_id,rating\n7,1,5,9\n", r"ratings.csv:2: 4 fields, the header has 3"),
    ("user_id,book_id,rating\n7,1\n", r"ratings.csv:2: 2 fields, the header has 3"),
    ("user_id,book_id,rating\n,1,5\n", r"ratings.csv:2: empty user_id"),
    ("user_id,book_id,rating\n7,1,inf\n", r"rating 'inf' is not a finite number"),
])
def test_goodbooks_layout_rows_are_checked(tmp_path, ratings, message):
    with pytest.raises(InputError, match=message):
        _goodbooks(tmp_path, ratings)


def test_goodbooks_layout_notes_what_it_skipped(tmp_path):
    catalog = _goodbooks(tmp_path, "user_id,book_id,rating\n7,1,5\n7,2,4\n",
                         book_tags="goodreads_book_id,tag_id,count\n11,1,5\n12,99,3\n")
    assert catalog.tag_weights["2"] == {}
    assert any("1 tag id(s) have no name" in n and "99" in n for n in catalog.notes)
    assert any("1 of 2 books have no tags" in n for n in catalog.notes)
    with pytest.raises(InputError, match=r"book_tags.csv:2: count 'many' is not a number"):
        _goodbooks(tmp_path, "user_id,book_id\n7,1\n", book_tags="goodreads_book_id,tag_id,count\n11,1,many\n")


def test_a_folder_given_as_a_file_is_named_as_such(tmp_path):
    from placecell.agents.recommend.catalog import read_history_file

    with pytest.raises(InputError, match="is a directory"):
        read_history_file(tmp_path)


# -- the tool nodes' arguments --------------------------------------------------------------------

def test_score_candidates_refuses_what_it_cannot_score_honestly():
    from placecell.tools.recsys_nodes import build_carousels, score_candidates

    with pytest.raises(InputError, match="list of item ids, not one string"):
        score_candidates("1", "1234")
    with pytest.raises(InputError, match=r"ScoreRequest.features.1.web: Input should be a finite number"):
        score_candidates("1", ["1", "2"], {"1": {"web": float("nan")}})
    with pytest.raises(InputError, match=r"ScoreRequest.refine_pass: Extra inputs are not permitted"):
        score_candidates("1", ["1"], refine_pass=2)  # a typo of refine_passes is not ignored
    with pytest.raises(InputError, match=r"CarouselRequest.k: Input should be greater than or equal to 1 \(got 0\)"):
        build_carousels("1", k=0)


@pytest.mark.parametrize("candidates, message", [
    (["15", None], "candidates.1: Value error, must be an id (text or a whole number), not None"),
    ([["15"]], "candidates.0: Value error, must be an id"),
    (["15", " "], "candidates.1: Value error, must be an id"),
    (15, "takes a list of item ids, not int"),
])
def test_candidate_ids_that_are_no_ids_are_refused(candidates, message):
    """None became the item 'None' (and outscored real items as an unknown one); an int was a TypeError."""
    from placecell.tools.recsys_nodes import score_candidates

    with pytest.raises(InputError, match=re.escape(message)):
        score_candidates("8", candidates)


def test_scores_stay_finite_and_ids_are_scored_once():
    from placecell.tools.recsys_nodes import ScoredCandidate, build_carousels, score_candidates

    with pytest.raises(InputError, match="add up to a score that is not a finite number"):  # 0 * (1e308 + 1e308)
        score_candidates("8", ["15", "40"], {"15": {"a": 1e308, "b": 1e308}}, feature_weight=0)
    import numpy as np

    scored = score_candidates("8", ["15", np.int64(40), "15"])  # a number is an id too (models write them so)
    assert sorted(c.item_id for c in scored.scores) == ["15", "40"] and "1 repeated candidate id(s) scored once" in scored.notes
    page = build_carousels("46732", [ScoredCandidate(item_id="15", score=1.7e308), ScoredCandidate(item_id="87", score=0.0),
                                     ScoredCandidate(item_id="144", score=-1.7e308)], k=1, n_carousels=3)
    relevance = {i.item_id: i.relevance for c in page.carousels for i in c.items}
    assert relevance == {"15": 1.0, "87": 0.5, "144": 0.0}  # was NaN, 0.0, 0.0: the order was lost


def test_a_page_says_what_it_could_not_use_or_fill():
    from placecell.tools.recsys_nodes import build_carousels, score_candidates

    page = build_carousels("46732", history=["zzz", "yyy"])
    assert "2 history item(s) not in the goodbooks_399 catalog were ignored (none matched: laid out as for a new user)" in page.notes
    scored = score_candidates("46732", ["15", "87", "144", "208"], catalog="goodbooks_399")
    elsewhere = build_carousels("46732", scored.scores, k=2, catalog="movielens")
    assert any("candidate titles differ from the movielens catalog's" in n for n in elsewhere.notes)
    few = build_carousels("46732", score_candidates("46732", ["15", "87", "144"]).scores, k=5)
    assert [c.title for c in few.carousels] == ["Top picks for you"]  # was "More picks for you", with no top carousel
    assert "1 of 4 carousels, 1 with fewer than 5 items: too few candidates to fill the page" in few.notes
    liked = build_carousels("46732", score_candidates("46732", ["40", "15", "87"]).scores, k=1, history=["40"])
    assert "1 candidate(s) already in the history were not shown" in liked.notes


def test_threads_making_their_first_call_at_once_share_one_build(monkeypatch):
    """Each thread fitted EASE and loaded the CTR model again: 8 threads, 8 fits, 25 s instead of 4."""
    from concurrent.futures import ThreadPoolExecutor

    from placecell.tools import recsys_nodes
    from placecell.tools.carousels import cf

    monkeypatch.setattr(recsys_nodes, "_engines", recsys_nodes.PerProcess(recsys_nodes._build_engine))
    fits = []
    real_fit = cf.EASE.fit
    monkeypatch.setattr(cf.EASE, "fit", lambda self, *a, **kw: (fits.append(1), real_fit(self, *a, **kw))[1])
    with ThreadPoolExecutor(4) as pool:
        engines = list(pool.map(recsys_nodes.engine_for, ["goodbooks_399"] * 4))
    assert len(fits) == 1 and all(e is engines[0] for e in engines)


def test_a_page_of_unusable_candidates_falls_back_to_cf_and_says_why():
    from placecell.tools.recsys_nodes import ScoredCandidate, build_carousels

    page = build_carousels("1", [ScoredCandidate(item_id="no-such-book", score=0.9)], k=3)
    assert page.carousels and all(len(c.items) == 3 for c in page.carousels)
    assert any("carousels from collaborative filtering instead" in n for n in page.notes)
    shown = [i.item_id for c in page.carousels for i in c.items]
    assert len(shown) == len(set(shown))
    with pytest.raises(ValidationError):
        ScoredCandidate(item_id="1", score=float("nan"))


def test_run_settings_are_checked_when_the_run_starts():
    from placecell.agents.chat.state import ChatContext
    from placecell.agents.ingest.state import IngestContext
    from placecell.agents.qa.state import QAContext
    from placecell.agents.recommend.state import RecommendContext

    bad = [
        (lambda: RecommendContext(k=0), "k must be between 1 and 50, not 0"),
        (lambda: RecommendContext(strategy="cf"), "strategy must be one of"),
        (lambda: RecommendContext(cf_weight=float("nan")), "cf_weight must be a finite number"),
        (lambda: RecommendContext(n_candidates=0), "n_candidates must be at least 1"),
        (lambda: ChatContext(method="foo"), "method must be one of neuropath, dense"),
        (lambda: ChatContext(min_confidence=5), "min_confidence must be between 0.0 and 1.0"),
        (lambda: QAContext(method="magic"), "method must be one of"),
        (lambda: QAContext(top_k=-1), "top_k must be between 1 and 20, not -1"),
        (lambda: QAContext(top_k="3"), "top_k must be a whole number"),
        (lambda: QAContext(path_probe="bogus"), "path_probe must be one of each, list, none"),
        (lambda: IngestContext(chunk_chars=0), "chunk_chars must be at least 100, not 0"),
        (lambda: IngestContext(allow_hosts="127.0.0.1"), "allow_hosts must be a list of strings"),
    ]
    for make, message in bad:
        with pytest.raises(InputError, match=message):
            make()
    assert RecommendContext(k=50).k == 50 and ChatContext(method="bm25").method == "bm25" and QAContext().top_k >= 1


def test_placecell_errors_keep_their_message_on_the_langgraph_server():
    # langgraph_api forwards the message of built-in exception types only (RuntimeError among them)
    from placecell.errors import PlacecellError

    assert issubclass(PlacecellError, RuntimeError) and issubclass(InputError, PlacecellError)
