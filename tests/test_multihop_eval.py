"""The multi-hop eval harness: metrics against hand-computed values, bad input, and an end-to-end
run of the non-LLM methods on a tiny corpus (real MiniLM, no LLM)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from placecell.agents.qa.state import QAContext
from placecell.errors import InputError
from placecell.evals import multihop_metrics as m
from placecell.evals.multihop import load_questions, parse_methods

ALPS = [
    {"title": "Mont Blanc", "text": "Mont Blanc is the highest mountain in the Alps, at 4,806 metres."},
    {"title": "Chamonix", "text": "Chamonix is a resort town at the foot of Mont Blanc, host of the 1924 Winter Olympics."},
    {"title": "1924 Winter Olympics", "text": "The 1924 Winter Olympics were the first Winter Olympic Games."},
    {"title": "Dijon", "text": "Dijon is a city in eastern France, famous for its mustard."},
    {"title": "Dijon", "text": "Dijon was the capital of the Duchy of Burgundy."},
    {"title": "Gustave Eiffel", "text": "Gustave Eiffel was a French civil engineer born in Dijon in 1832."},
    {"title": "Eiffel Tower", "text": "The Eiffel Tower in Paris was designed and built by Gustave Eiffel's company."},
    {"title": "Rhone", "text": "The Rhone is a river that rises in the Swiss Alps and flows into the Mediterranean."},
]


def question(qid, text, answer, gold_idx, aliases=()):
    gold = [ALPS[i] for i in gold_idx]
    return {"id": qid, "question": text, "answer": answer, "answer_aliases": list(aliases),
            "supporting_titles": list(dict.fromkeys(p["title"] for p in gold)), "supporting_passages": gold}


QUESTIONS = [
    question("q0", "Which Olympics were hosted by the town at the foot of the highest mountain in the Alps?",
             "1924 Winter Olympics", [0, 1]),
    question("q1", "In which city was the engineer whose company built the Eiffel Tower born?", "Dijon", [6, 5]),
    question("q2", "Which duchy had as capital the birthplace of Gustave Eiffel?", "Duchy of Burgundy", [5, 4, 3],
             aliases=["Burgundy"]),
]


# -- metrics ----------------------------------------------------------------------------
def test_squad_normalisation_em_f1_and_aliases():
    assert m.normalize_answer("  The Duchy of  Burgundy!") == "duchy of burgundy"
    assert m.exact_match("the Capitol Records.", "Capitol Records") == 1.0
    assert m.f1_score("Capitol Records Inc", "Capitol Records") == pytest.approx(0.8)  # P 2/3, R 1
    assert m.f1_score("an apple", "the pear") == 0.0
    assert m.f1_score("yes it is", "yes") == 0.0  # HotpotQA's yes/no rule
    assert m.best_em_f1("Burgundy", ["Duchy of Burgundy", "Burgundy"]) == (1.0, 1.0)
    em, f1 = m.best_em_f1("Burgundy region", ["Duchy of Burgundy", "Burgundy"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)  # best alias: P 1/2, R 1


def test_prediction_text_takes_the_answer_line():
    assert m.prediction_text("Thought: it is in France.\nAnswer: Dijon\nextra") == "Dijon"
    assert m.prediction_text("Dijon") == "Dijon"
    assert m.prediction_text("The answer is: Dijon") == "Dijon"
    assert m.prediction_text(None) == ""


def passages_by_id():
    return {f"p{i}": SimpleNamespace(title=p["title"], text=m.passage_string(p["title"], p["text"]))
            for i, p in enumerate(ALPS)}


def test_recall_passage_and_title_level_with_same_title_gold():
    q = QUESTIONS[2]  # gold: Gustave Eiffel + both "Dijon" passages
    ranking = ["p5", "p7", "p3", "p0", "p4"]  # the second Dijon passage comes last
    by_id = passages_by_id()
    passage_gold, title_gold = m.gold_items(q, "passage"), m.gold_items(q, "title")
    assert len(passage_gold) == 3 and title_gold == {"Gustave Eiffel", "Dijon"}
    got = {level: [m.recall_at_k(m.retrieved_items(ranking, by_id, level), m.gold_items(q, level), k)
                   for k in (1, 2, 3, 5)] for level in ("passage", "title")}
    assert got["passage"] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1.0])
    assert got["title"] == pytest.approx([1 / 2, 1 / 2, 1.0, 1.0])  # one Dijon passage is enough


def test_summarise_by_hand():
    by_q = {q["id"]: q for q in QUESTIONS}
    records = [
        {"id": "q0", "ranking": ["p0", "p2", "p1"], "answer": "Answer: the 1924 Winter Olympics", "seconds": 2.0,
         "usage": {"llm_calls": 3, "prompt_tokens": 100, "completion_tokens": 20, "seconds": 1.5},
         "usage_by_node": {"ner": {"calls": 1, "prompt_tokens": 30, "completion_tokens": 5},
                           "path_reason": {"calls": 1, "prompt_tokens": 30, "completion_tokens": 10},
                           "read": {"calls": 1, "prompt_tokens": 40, "completion_tokens": 5}}},
        {"id": "q1", "ranking": ["p3", "p4"], "answer": "Paris", "seconds": 4.0,
         "usage": {"llm_calls": 1, "prompt_tokens": 50, "completion_tokens": 10, "seconds": 2.5}},
    ]
    out = m.summarise(records, by_q, passages_by_id(), "passage")
    assert out["recall@1"] == pytest.approx(0.25)  # q0: 1/2, q1: 0
    assert out["recall@10"] == pytest.approx(0.5)
    assert out["em"] == 0.5 and out["f1"] == 0.5
    assert out["tokens_per_question"] == 90.0 and out["llm_calls_per_question"] == 2.0
    # without the reader's 45 tokens (q1 has no per-node usage: all its tokens count as retrieval)
    assert out["retrieval_tokens_per_question"] == 67.5
    assert out["p50_seconds"] == 3.0 and out["p95_seconds"] == pytest.approx(3.9)
    assert out["llm_time_share"] == pytest.approx(4.0 / 6.0, abs=1e-4)


def test_path_judge_labelling_rule():
    from placecell.evals.build_path_judge_set import label_question
    from placecell.tools.stores.kg import KnowledgeGraph, normalize_entity

    kg = KnowledgeGraph()
    kg.add_passage("p5", [["Gustave Eiffel", "born in", "Dijon"], ["Gustave Eiffel", "is", "civil engineer"]])
    kg.add_passage("p4", [["Dijon", "capital of", "Duchy of Burgundy"]])
    kg.add_passage("p6", [["Eiffel Tower", "built by", "Gustave Eiffel"]])
    kg.add_passage("p7", [["Rhone", "rises in", "Alps"]])
    by_id = passages_by_id()
    rows = label_question(kg, None, QUESTIONS[2], {p.text: pid for pid, p in by_id.items()},
                          {pid: normalize_entity(p.text) for pid, p in by_id.items()})
    assert {r["path_text"]: r["label"] for r in rows} == {
        "gustave eiffel -> born in -> dijon": 1,  # gold, bridge entity (Dijon is in the other gold passages)
        "gustave eiffel -> is -> civil engineer": 0,  # gold, but neither answer nor bridge
        "eiffel tower -> built by -> gustave eiffel": 0,  # not a gold passage
        "gustave eiffel -> born in -> dijon; dijon -> capital of -> duchy of burgundy": 1,  # two gold hops, answer
    }


def test_path_judge_precision_by_hand(tmp_path, write_jsonl):
    from placecell.evals.path_judge import judge_metrics, load_labels

    rows = [{"id": "a", "label": 1}, {"id": "a", "label": 0}, {"id": "a", "label": 1}, {"id": "b", "label": 0}]
    groups = load_labels(write_jsonl(tmp_path / "labels.jsonl", rows))
    out = judge_metrics(groups, {"a": [0, 1], "b": [0]})  # picks 3, one relevant of two
    assert (out["precision"], out["recall"], out["selected_per_question"]) == (pytest.approx(1 / 3, abs=1e-4), 0.5, 1.5)


def test_path_judge_similarity_run_writes_json_and_report(tmp_path, write_jsonl):
    from placecell.evals.path_judge import main

    def row(text, label):
        h, r, t = text.split(" | ")
        return {"id": "q1", "question": "Where was Gustave Eiffel born?", "path_text": f"{h} -> {r} -> {t}",
                "triples": [[h, r, t]], "passage_ids": ["p"], "frontier": t, "label": label}

    labels = write_jsonl(tmp_path / "labels.jsonl", [
        row("gustave eiffel | born in | dijon", 1), row("rhone | rises in | alps", 0), row("tea | grows in | assam", 0)])
    main(["--labels", str(labels), "--judges", "similarity,scored_none", "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "path_judge.json").read_text())
    assert result["judges"]["scored_none"]["llm_calls"] == 0 and result["judges"]["scored_none"]["recall"] == 1.0
    # similarity keeps its 6 best of 3 paths: everything, so recall 1 and precision = the base rate
    assert result["judges"]["similarity"]["recall"] == 1.0
    assert result["judges"]["similarity"]["precision"] == pytest.approx(1 / 3, abs=1e-4)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| similarity | 1 | 3.0 | 0.333 | 1.000 |" in report and "--judges similarity" in report and "model:" in report


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("lines,expected", [
    ([], "no questions"),
    (['{"id": "a", "question": "Q?", "answer": "A", "supporting_passages": [{"title": "t", "text": "x"}]}',
      "{not json"], ":2: not valid JSON"),
    (['{"id": "a", "answer": "A"}'], ":1: missing or empty 'question'"),
    (['{"id": "a", "question": "Q?", "answer": "A"}'], ":1: missing or empty 'supporting_passages'"),
    (['[1, 2]'], ":1: not a JSON object"),
])
def test_bad_question_files(tmp_path, lines, expected):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(InputError, match=expected.replace("{", r"\{").replace("[", r"\[")):
        load_questions(path)


def test_duplicate_ids_and_title_level_needs_titles(tmp_path, write_jsonl):
    path = write_jsonl(tmp_path / "q.jsonl", [QUESTIONS[0], QUESTIONS[0]])
    with pytest.raises(InputError, match=":2: duplicate question id 'q0'"):
        load_questions(path)
    rec = dict(QUESTIONS[0], supporting_titles=[])
    with pytest.raises(InputError, match="supporting_titles"):
        load_questions(write_jsonl(tmp_path / "t.jsonl", [rec]), level="title")


def test_unknown_methods():
    assert parse_methods("dense, bm25,dense") == ["dense", "bm25"]
    with pytest.raises(InputError, match="unknown method.*colbert"):
        parse_methods("dense,colbert")


# -- end to end -------------------------------------------------------------------------
def run_cli(args):
    from placecell.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return exit_info.value.code


@pytest.fixture
def files(tmp_path, write_jsonl, home):
    return {"questions": write_jsonl(tmp_path / "q.jsonl", QUESTIONS),
            "corpus": write_jsonl(tmp_path / "c.jsonl", ALPS), "cache": tmp_path / "cache", "out": tmp_path / "out"}


def eval_args(files, *extra):
    return ["eval", "multihop", "--questions", str(files["questions"]), "--corpus", str(files["corpus"]),
            "--cache", str(files["cache"]), "--out", str(files["out"]), *extra]


def test_end_to_end_non_llm_methods(files, capsys):
    assert run_cli(eval_args(files, "--methods", "dense,bm25,hybrid", "--retrieval-only")) == 0
    results = json.loads((files["out"] / "results.json").read_text())
    assert results["questions"] == 3 and set(results["methods"]) == {"dense", "bm25", "hybrid"}
    keys = {"recall@1", "recall@2", "recall@5", "recall@10", "em", "f1", "tokens_per_question",
            "llm_calls_per_question", "p50_seconds", "p95_seconds", "llm_time_share"}
    for metrics in results["methods"].values():
        assert keys <= set(metrics)
        recalls = [metrics[f"recall@{k}"] for k in (1, 2, 5, 10)]
        assert all(0.0 <= r <= 1.0 for r in recalls) and recalls == sorted(recalls)
        assert recalls[-1] == 1.0  # 8 passages: the top 10 hold everything
        assert metrics["em"] is None and metrics["tokens_per_question"] == 0
        assert 0 <= metrics["p50_seconds"] <= metrics["p95_seconds"]
    assert results["corpus"]["passages"] == len(ALPS)
    assert results["corpus"]["gold_passages_found"] == results["corpus"]["gold_passages"] == 7
    report = (files["out"] / "report.md").read_text()
    assert "placecell eval multihop --questions" in report and "CPUs (`nproc`)" in report
    assert results["provenance"]["command"].startswith("placecell eval multihop --questions")
    assert "CPUs (`nproc`)" in results["provenance"]["machine"] and results["provenance"]["date"][:2] == "20"
    assert (files["out"] / "recall_at_k.png").read_bytes()[:4] == b"\x89PNG"
    # One home per corpus file under the cache (keyed by its sha256).
    assert len(list((files["cache"] / "corpora").iterdir())) == 1


def test_bad_corpus_lines_are_warned_on_screen(files, capsys):
    with open(files["corpus"], "a", encoding="utf-8") as f:
        f.write("{not json\n")
    assert run_cli(eval_args(files, "--methods", "bm25", "--retrieval-only")) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad JSONL line(s): 9" in err.split("warning: ", 1)[1].splitlines()[0]


def test_rerun_resumes_from_checkpoints(files, capsys):
    assert run_cli(eval_args(files, "--methods", "dense", "--limit", "2", "--retrieval-only")) == 0
    first = capsys.readouterr().err
    assert "[dense] 2/2" in first
    assert run_cli(eval_args(files, "--methods", "dense,bm25", "--retrieval-only")) == 0
    second = capsys.readouterr().err
    assert "[dense] 3/3 q2" in second and "[dense] 1/3" not in second  # only the new question
    assert "[bm25] 1/3" in second
    lines = (files["out"] / "checkpoints" / "dense.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_title_level_recall_flag(files):
    assert run_cli(eval_args(files, "--methods", "bm25", "--retrieval-only", "--recall-level", "title")) == 0
    results = json.loads((files["out"] / "results.json").read_text())
    assert results["recall_level"] == "title"


@pytest.mark.parametrize("extra,message", [
    (["--methods", "dense,magic"], "unknown method(s) magic"),
    (["--recall-level", "sentence"], "--recall-level must be one of passage, title"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_cli_bad_input_is_one_line(files, capsys, extra, message):
    assert run_cli(eval_args(files, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_cli_empty_question_file(files, capsys):
    files["questions"].write_text("", encoding="utf-8")
    assert run_cli(eval_args(files, "--methods", "dense")) == 2
    assert "no questions" in capsys.readouterr().err


@pytest.mark.slow
def test_llm_methods_with_the_smallest_model(files, small_model):
    """NeuroPath, PPR (query NER + a KG extracted by the model) and IRCoT end to end with smollm2."""
    assert run_cli(eval_args(files, "--methods", "neuropath,ppr,ircot", "--model", "smollm2-135m", "--limit", "2")) == 0
    results = json.loads((files["out"] / "results.json").read_text())
    assert results["methods"]["neuropath"]["settings"]["keep_nearest"] == QAContext.keep_nearest
    assert f"keep_nearest={QAContext.keep_nearest}" in (files["out"] / "report.md").read_text()
    for name in ("neuropath", "ppr", "ircot"):
        metrics = results["methods"][name]
        assert metrics["llm_calls_per_question"] >= 1 and metrics["tokens_per_question"] > 0
        assert 0.0 < metrics["llm_time_share"] <= 1.0 and metrics["em"] is not None
        # the reader's call is not a retrieval cost; PPR's query NER is
        assert 0 < metrics["retrieval_tokens_per_question"] < metrics["tokens_per_question"]
    assert list((files["cache"] / "extractions").glob("*.jsonl"))


def test_neuropath_bm25_is_scored_neuropath_with_fusion():
    from placecell.evals.multihop import DEFAULT_METHODS, METHODS, qa_context

    fused, plain = qa_context("neuropath_bm25", True), qa_context("neuropath_probe", True)
    assert (fused.method, fused.mode, fused.fuse_bm25) == ("neuropath", "scored", True)
    assert plain.fuse_bm25 is False and qa_context("neuropath_faithful", True).fuse_bm25 is False
    assert (fused.path_probe, plain.path_probe) == ("each", "each")
    noprobe = qa_context("neuropath_bm25_noprobe", True)
    assert (noprobe.mode, noprobe.fuse_bm25, noprobe.path_probe) == ("scored", True, "none")
    # The results.json keys, `neuropath` first; the frozen variants run on request.
    assert DEFAULT_METHODS == ("neuropath", "neuropath_faithful", "dense", "bm25", "hybrid", "ppr", "ircot")
    assert "neuropath_bm25_noprobe" in METHODS and "neuropath_bm25_noprobe" not in DEFAULT_METHODS
    assert (fused.reason_rounds, noprobe.reason_rounds) == (2, 2)
    lean = qa_context("neuropath_bm25_lean", True)
    assert (lean.mode, lean.fuse_bm25, lean.path_probe, lean.reason_rounds) == ("scored", True, "none", 1)
    assert lean.cover_entities is False and qa_context("neuropath_faithful", True).cover_entities is False
    cover = qa_context("neuropath_bm25_lean_cover", True)
    assert (cover.cover_entities, cover.title_links, lean.title_links) == (True, False, False)
    links = qa_context("neuropath_bm25_lean_cover_links", True)
    near = qa_context("neuropath_bm25_lean_cover_links_near", True)
    default = QAContext()
    assert qa_context("neuropath", False) == dataclasses.replace(default, answer=False, rank_k=10)  # what `ask` runs
    settings = ("path_probe", "reason_rounds", "fuse_bm25", "cover_entities", "title_links", "link_depth", "keep_nearest")
    assert [getattr(default, k) for k in settings] == [getattr(near, k) for k in settings] == ["none", 1, True, True, True, 1, 1]
    assert [getattr(links, k) for k in settings] == ["none", 1, True, True, True, 1, 0]  # the session-12 default
    assert qa_context("neuropath_bm25_lean_cover_links2", True).keep_nearest == 0


def test_the_report_says_which_settings_neuropath_ran_with():
    from placecell.evals.multihop_report import method_legend

    legend = method_legend({"neuropath": {"settings": {"method": "neuropath", "keep_nearest": 1}}, "dense": {}})
    assert legend == ["- `neuropath`: NeuroPath as `placecell ask` runs it, with the defaults of the day of the run (keep_nearest=1)"]


def test_neuropath_rows_carry_their_settings_and_stale_rows_are_run_again(tmp_path):
    """`neuropath` follows the product's defaults: a checkpoint row made under other settings (or
    under the name's meaning before session 15) is run again, not reused; frozen names are reused."""
    from placecell.evals.multihop import method_identity, qa_settings, run_method

    calls = []

    def run(question, method):
        calls.append(method)
        return {"ranking": ["p1"], "answer": None, "paths": []}

    questions = [{"id": "q1", "question": "Who?"}]
    identity = {"model": "m", "corpus_sha256": "c", "answered": False}
    for method in ("neuropath", "neuropath_probe"):  # rows as a pre-session-15 run left them
        run_method(run, method, questions, tmp_path, identity, lambda _: None)
    calls.clear()
    rows = run_method(run, "neuropath", questions, tmp_path, method_identity("neuropath", identity), lambda _: None)
    assert calls == ["neuropath"] and rows[0]["qa_settings"] == qa_settings("neuropath", False)
    assert rows[0]["qa_settings"]["keep_nearest"] == QAContext.keep_nearest
    run_method(run, "neuropath", questions, tmp_path, method_identity("neuropath", identity), lambda _: None)
    run_method(run, "neuropath_probe", questions, tmp_path, method_identity("neuropath_probe", identity), lambda _: None)
    assert calls == ["neuropath"]  # both reused this time
    assert method_identity("dense", identity) == identity and qa_settings("dense", False) is None


def test_a_question_edited_under_its_id_is_run_again(tmp_path):
    """A questions file changed under the same ids reused the old rankings: wrong recall."""
    from placecell.evals.multihop import run_method

    asked = []

    def run(question, method):
        asked.append(question)
        return {"ranking": ["p1"], "answer": None, "paths": []}

    identity = {"model": "m", "corpus_sha256": "c", "answered": False}
    run_method(run, "bm25", [{"id": "q1", "question": "Who?"}], tmp_path, identity, lambda _: None)
    run_method(run, "bm25", [{"id": "q1", "question": "Who?"}], tmp_path, identity, lambda _: None)
    rows = run_method(run, "bm25", [{"id": "q1", "question": "Where?"}], tmp_path, identity, lambda _: None)
    assert asked == ["Who?", "Where?"] and rows[0]["question_sha256"]


def test_kg_model_is_in_the_command_and_only_in_identity_when_set(files):
    from placecell.evals.multihop import EvalConfig

    cfg = EvalConfig(files["questions"], files["corpus"], files["out"], kg_model="qwen2.5-coder-1.5b")
    assert "--kg-model qwen2.5-coder-1.5b" in cfg.command()
    assert "--kg-model" not in EvalConfig(files["questions"], files["corpus"], files["out"]).command()
    # A run without --kg-model keeps the old identity, so earlier checkpoints stay reusable.
    assert run_cli(eval_args(files, "--methods", "bm25", "--retrieval-only", "--kg-model", "no-such-model")) == 0
    results = json.loads((files["out"] / "results.json").read_text())
    assert "kg_model" not in results  # bm25 needs no KG, so the extractor is never loaded
