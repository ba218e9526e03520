"""The recommendation eval harness end to end on 2 users (scripted LLM, hashing embedder)."""

from __future__ import annotations

import json

from placecell.agents.recommend.fakes import HashingEmbedder, ScriptedLLM
from placecell.evals.recommend import VARIANTS, rank_metrics, run_recommend_eval

KEYS = {"hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10", "tokens_per_user", "seconds_per_user"}


def test_rank_metrics():
    assert rank_metrics(1) == {"hr@1": 1.0, "hr@5": 1.0, "hr@10": 1.0, "ndcg@5": 1.0, "ndcg@10": 1.0}
    m = rank_metrics(7)
    assert m["hr@5"] == 0.0 and m["hr@10"] == 1.0 and m["ndcg@5"] == 0.0 and abs(m["ndcg@10"] - 1 / 3) < 1e-9


def test_eval_writes_results_in_the_issue_format(tmp_path):
    results = run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=ScriptedLLM(), embedder=HashingEmbedder())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["users"] == 2 and set(saved["variants"]) == set(VARIANTS)
    assert all(set(v) == KEYS for v in saved["variants"].values())
    assert saved["injection_pages"] == 19 and saved["injection_changed_outputs"] == results["injection_changed_outputs"] == 0
    assert saved["variants"]["cf"]["tokens_per_user"] == 0 and saved["variants"]["web_reasoned"]["tokens_per_user"] > 0
    assert "| web_reasoned_mp_noisy |" in (tmp_path / "report.md").read_text()
    assert saved["meta"]["negatives"] == 99 and "99 sampled negatives each (seed" in (tmp_path / "report.md").read_text()


def test_eval_runs_on_explicit_files(tmp_path):
    """Data it has never seen, in the goodbooks layout: a ratings split written by the test."""
    import gzip
    import shutil

    from placecell.evals.recommend import EvalFiles
    from placecell.tools.recsys_data import data_dir

    src = data_dir() / "goodbooks_399"
    with gzip.open(src / "ratings.csv.gz", "rt") as fh:
        header, *rows = fh.read().splitlines()
    users = sorted({r.split(",")[0] for r in rows})[:40]
    chosen = [r for r in rows if r.split(",")[0] in users]
    last = {r.split(",")[0]: r for r in chosen if int(r.split(",")[2]) >= 4}  # each user's last liked row
    held = set(last.values())
    (tmp_path / "train.csv").write_text("\n".join([header] + [r for r in chosen if r not in held]) + "\n")
    (tmp_path / "holdout.csv").write_text("\n".join([header, *held]) + "\n")
    for name in ("books.csv.gz", "book_tags.csv.gz", "tags.csv.gz"):
        shutil.copy(src / name, tmp_path / name)
    files = EvalFiles(str(tmp_path / "train.csv"), str(tmp_path / "holdout.csv"), str(tmp_path / "books.csv.gz"),
                      str(tmp_path / "book_tags.csv.gz"), str(tmp_path / "tags.csv.gz"))
    out = tmp_path / "report"
    results = run_recommend_eval("goodbooks_399", users=3, out_dir=out, files=files, llm=ScriptedLLM(),
                                 embedder=HashingEmbedder())
    saved = json.loads((out / "results.json").read_text())
    assert saved["data"] == "files" and saved["users"] == results["users"] == 3
    assert 0.0 <= saved["variants"]["cf"]["hr@10"] <= 1.0 and saved["variants"]["web_reasoned"]["tokens_per_user"] > 0


def test_a_small_catalogue_reports_the_negatives_it_had(tmp_path):
    """A 30-book catalogue has at most 29 negatives; the report said 99 (HR@10 looked harder than it was)."""
    from placecell.evals.recommend import write_reports

    meta = {"negatives": 29, "seed": 0, "model": "m", "embedder": "e", "machine": "x", "wall_seconds": 1.0,
            "command": "c", "score_weights": {}, "score_weights_note": "", "ctr_model": "", "injection_target": "t",
            "target_in_top10_noisy": 0, "target_in_top10_clean": 0}
    results = {"data": "files", "users": 1, "injection_pages": 0, "injection_changed_outputs": 0,
               "variants": {v: {k: 0.0 for k in KEYS} for v in VARIANTS}}
    write_reports(tmp_path, results, meta)
    report = (tmp_path / "report.md").read_text()
    assert "1 held-out positive + 29 sampled negatives each (fewer than 99" in report


def test_interrupted_eval_resumes_from_per_user_checkpoints(tmp_path):
    """Each finished user is one checkpoint line; a rerun of the same identity makes no LLM call and
    gives the same numbers, a torn last line is recomputed, and a different seed starts afresh."""

    class CountingLLM(ScriptedLLM):
        calls = 0

        def chat(self, messages, **kw):
            CountingLLM.calls += 1
            return super().chat(messages, **kw)

        def chat_json(self, messages, schema, **kw):
            CountingLLM.calls += 1
            return super().chat_json(messages, schema, **kw)

        def generate_with_entropy(self, messages, **kw):
            CountingLLM.calls += 1
            return super().generate_with_entropy(messages, **kw)

    first = run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=CountingLLM(), embedder=HashingEmbedder())
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert len(checkpoints.read_text().splitlines()) == 2 and CountingLLM.calls > 0

    CountingLLM.calls = 0
    again = run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=CountingLLM(), embedder=HashingEmbedder())
    assert CountingLLM.calls == 0 and again["variants"] == first["variants"]

    lines = checkpoints.read_text().splitlines(keepends=True)
    checkpoints.write_text(lines[0] + lines[1][:40])  # killed while writing the second user
    resumed = run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=CountingLLM(), embedder=HashingEmbedder())
    assert CountingLLM.calls > 0 and len(checkpoints.read_text().splitlines()) == 2
    assert {k: v["hr@10"] for k, v in resumed["variants"].items()} == {k: v["hr@10"] for k, v in first["variants"].items()}

    CountingLLM.calls = 0
    run_recommend_eval("goodbooks_399", users=2, out_dir=tmp_path, llm=CountingLLM(), embedder=HashingEmbedder(), seed=1)
    assert CountingLLM.calls > 0


def test_weight_fit_never_uses_the_eval_users_and_resumes(tmp_path, monkeypatch):
    from placecell.agents.recommend import fusion
    from placecell.evals.recommend_weights import FITS, FIXED, main

    written = tmp_path / "fusion.json"  # never the shipped weights file
    monkeypatch.setattr(fusion, "weights_path", lambda catalog: written)
    main(["--users", "6", "--out", str(tmp_path), "--write"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["users"] == 6 and len(saved["eval_users"]) == 50
    assert not set(saved["probe_users"]) & set(saved["eval_users"])
    assert set(saved["scores"]) == set(FIXED) | {f"fitted: {name}" for name in FITS}
    assert all(0.0 <= r["hr@10"] <= 1.0 for r in saved["scores"].values())
    assert saved["scores"]["fitted: cf + ctr"]["weights"]["evidence"] == 0.0  # an ablation pins its feature
    stored = json.loads(written.read_text())
    assert stored["ctr_model"] == fusion.ctr_model_hash("goodbooks_399")
    assert stored["weights"] == saved["scores"]["fitted: cf + ctr + evidence"]["weights"]
    features = (tmp_path / "features.jsonl").read_text()
    main(["--users", "6", "--out", str(tmp_path)])  # resumed: every user's features are reused
    assert (tmp_path / "features.jsonl").read_text() == features
    assert json.loads((tmp_path / "results.json").read_text())["scores"] == saved["scores"]


def test_the_report_names_the_model_by_its_file_not_only_its_hash():
    """The report said 'Model 1d9614638d18...': the sha256 alone, which no reader can map to a model."""
    from pathlib import Path
    from types import SimpleNamespace

    from placecell.evals.recommend import _model_line, _model_name

    gguf = SimpleNamespace(path=Path("/m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"), model_id="1d96")
    meta = {"model": "1d96", "model_name": _model_name(gguf)}
    assert _model_line(meta) == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf (sha256 1d96)"
    served = SimpleNamespace(model_id="openai:http://127.0.0.1:8000/v1:qwen")
    assert _model_line({"model": served.model_id, "model_name": _model_name(served)}) == served.model_id
    assert _model_line({"model": "1d96"}) == "1d96"  # results written before model_name existed
