"""CTR tools: loaders and their errors, a tiny SGCTR that must learn, ONNX parity, scoring, CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from placecell.errors import InputError
from placecell.tools.ctr.data import bucket_number, check_trainable, corrupt, load_table
from placecell.tools.ctr.metrics import auc, logloss
from support import synthetic_rows, write_csv

EVAL_DATA = Path(__file__).resolve().parents[1] / "evals" / "data"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small SGCTR trained for a few seconds on synthetic clicks, exported to ONNX."""
    pytest.importorskip("torch")
    from placecell.tools.ctr.export import save_artifacts
    from placecell.tools.ctr.model import SGCTRConfig
    from placecell.tools.ctr.train import TrainConfig, train_sgctr

    root = tmp_path_factory.mktemp("ctr")
    train = load_table(write_csv(root / "train.csv", synthetic_rows(4000, 0)), "csv", label="click")
    test = load_table(write_csv(root / "test.csv", synthetic_rows(1500, 1)), "csv", label="click", schema=train.schema)
    trained = train_sgctr(train, TrainConfig(epochs=6, batch_size=256, seed=0), SGCTRConfig(dim=8, gen_hidden=32, mlp_hidden=(32,)))
    paths = save_artifacts(trained, train.schema, root / "out", "tiny", {})
    return trained, train, test, paths


def test_tiny_sgctr_learns_the_synthetic_clicks(tiny_model):
    from placecell.tools.ctr.train import predict

    trained, _, test, _ = tiny_model
    probs = predict(trained.model, trained.encoder.transform(test.values))
    assert probs.shape == (len(test), 4)  # K = 0..3
    assert auc(test.labels, probs[:, 0]) > 0.6
    assert auc(test.labels, probs[:, trained.default_passes]) > 0.6
    assert logloss(test.labels, probs[:, 0]) < logloss(test.labels, np.full(len(test), 0.5))


def test_onnx_scores_match_torch(tiny_model):
    from placecell.tools.ctr.scorer import CTRScorer
    from placecell.tools.ctr.train import predict

    trained, _, test, paths = tiny_model
    torch_probs = predict(trained.model, trained.encoder.transform(test.values))
    onnx_probs = CTRScorer(paths["meta"]).probabilities(test.values)
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4


def test_unseen_and_missing_values_score_unknown_fields_fail(tiny_model):
    from placecell.tools.ctr.scorer import CTRScorer

    scorer = CTRScorer(tiny_model[3]["meta"])
    rows = [{"site": "never-seen-site", "slot": "b1", "hour": "99", "device": "tablet-x", "noise": "n1"}, {"site": "s3"}]
    result = scorer.score(rows, passes=2)
    assert result.probs.shape == (2,) and np.isfinite(result.probs).all()
    assert 0 < result.unseen_share < 1
    with pytest.raises(InputError, match="unknown field"):
        scorer.score([{"site": "s1", "colour": "red"}])
    with pytest.raises(InputError, match="passes"):
        scorer.score(rows, passes=7)


def test_tampered_onnx_is_refused(tiny_model, tmp_path):
    from placecell.errors import ModelError
    from placecell.tools.ctr.scorer import CTRScorer

    meta = json.loads(Path(tiny_model[3]["meta"]).read_text())
    (tmp_path / meta["onnx"]).write_bytes(b"not a model")
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="checksum"):
        CTRScorer(tmp_path / "m.json")


def test_csv_errors_are_clear(tmp_path):
    good = synthetic_rows(20, 3)
    with pytest.raises(InputError, match="label column 'clicked' not found"):
        load_table(write_csv(tmp_path / "a.csv", good), "csv", label="clicked")
    with pytest.raises(InputError, match="needs --label"):
        load_table(write_csv(tmp_path / "b.csv", good), "csv")
    bad = write_csv(tmp_path / "c.csv", good[:3] + [good[3][:4]] + good[4:])
    with pytest.raises(InputError, match=r"c.csv:5: 4 fields, the header has 6"):
        load_table(bad, "csv", label="click")
    with pytest.raises(InputError, match="not 0/1"):
        load_table(write_csv(tmp_path / "d.csv", [["maybe"] + good[0][1:]]), "csv", label="click")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_table(tmp_path / "e.csv", "csv", label="click")
    with pytest.raises(InputError, match="no data rows"):
        load_table(write_csv(tmp_path / "f.csv", []), "csv", label="click")
    with pytest.raises(InputError, match="unknown format"):
        load_table(tmp_path / "a.csv", "parquet")


def test_binary_and_non_utf8_files_are_refused_by_name(tmp_path):
    (tmp_path / "nul.csv").write_bytes(b"click,a\n1,\x00\x01\x02\n")
    with pytest.raises(InputError, match=r"nul.csv: not a text file"):
        load_table(tmp_path / "nul.csv", "csv", label="click")
    (tmp_path / "latin1.csv").write_bytes("click,a\n1,café\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.csv: not UTF-8 text \(byte 13\)"):
        load_table(tmp_path / "latin1.csv", "csv", label="click")
    (tmp_path / "fake.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"fake.txt.gz: cannot read"):
        load_table(tmp_path / "fake.txt.gz", "criteo-tsv")
    # A multi-byte character cut by the 64 KB sniff is not an error.
    text = "click,a\n" + "1,é\n" * 30000
    (tmp_path / "long.csv").write_text(text, encoding="utf-8")
    assert len(load_table(tmp_path / "long.csv", "csv", label="click")) == 30000


def test_cli_names_a_bad_byte_past_the_checked_start(tmp_path, capsys):
    """open_text checks the first 64 KB; a bad byte further on still ends in one line, exit 2."""
    pytest.importorskip("torch")  # `train ctr` checks for the train extra before reading
    from placecell.cli import main

    body = "click,a\n" + "1,x\n" * 40000
    (tmp_path / "late.csv").write_bytes(body.encode() + b"1,caf\xe9\n")
    with pytest.raises(SystemExit) as exc:
        main(["train", "ctr", "--data", str(tmp_path / "late.csv"), "--format", "csv", "--label", "click",
              "--out", str(tmp_path / "m")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: input is not UTF-8 text") and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_test_file_with_other_columns_is_refused(tmp_path):
    train = load_table(write_csv(tmp_path / "tr.csv", synthetic_rows(30, 4)), "csv", label="click")
    other = write_csv(tmp_path / "te.csv", [r[:5] + ["x"] for r in synthetic_rows(5, 5)], ["click", "site", "slot", "hour", "device", "browser"])
    with pytest.raises(InputError, match=r"unknown: browser; missing: noise"):
        load_table(other, "csv", label="click", schema=train.schema)


def test_constant_label_is_refused(tmp_path):
    rows = [["0"] + r[1:] for r in synthetic_rows(50, 6)]
    table = load_table(write_csv(tmp_path / "zero.csv", rows), "csv", label="click")
    with pytest.raises(InputError, match="constant"):
        check_trainable(table, "training data")


def test_libfm_and_featindex(tmp_path):
    index = tmp_path / "featindex.txt"
    index.write_text("weekday:1\t0\nweekday:2\t1\nhour:0\t2\nhour:1\t3\n")
    data = tmp_path / "rows.txt"
    data.write_text("1 0:1 3:1\n0 1:1 2:1\n")
    table = load_table(data, "libfm", featindex=str(index))
    assert table.schema.fields == ["weekday", "hour"]
    assert table.values.tolist() == [["1", "1"], ["2", "0"]]
    data.write_text("1 0:1 3:1\n0 1:1\n")
    with pytest.raises(InputError, match=r"rows.txt:2: 1 features, expected 2"):
        load_table(data, "libfm", featindex=str(index))
    data.write_text("1 0:1 9:1\n")
    with pytest.raises(InputError, match="not in"):
        load_table(data, "libfm", featindex=str(index))
    with pytest.raises(InputError, match="needs --featindex"):
        load_table(data, "libfm")


def test_real_samples_load_in_every_format(tmp_path):
    ipinyou = load_table(EVAL_DATA / "ipinyou" / "train.fm.txt.gz", "libfm", featindex=str(EVAL_DATA / "ipinyou" / "featindex.fm.txt.gz"))
    assert ipinyou.values.shape == (26773, 16) and int(ipinyou.labels.sum()) == 255
    criteo_csv = load_table(EVAL_DATA / "criteo_sample" / "criteo_sample_deepctr.csv", "csv", label="label")
    assert criteo_csv.values.shape == (160, 39)
    assert "I5" in criteo_csv.schema.numeric and "C1" not in criteo_csv.schema.numeric
    criteo_tsv = load_table(EVAL_DATA / "criteo_sample" / "criteo_kaggle_pytorchfm_train.txt.gz", "criteo-tsv")
    assert criteo_tsv.values.shape == (800, 39)
    avazu = load_table(EVAL_DATA / "avazu_sample" / "avazu_sample_deepctr.csv", "csv", label="click")
    assert avazu.values.shape == (80, 23) and avazu.schema.numeric == []
    lines = gzip.decompress((EVAL_DATA / "criteo_sample" / "criteo_kaggle_pytorchfm_train.txt.gz").read_bytes()).split(b"\n")
    broken = tmp_path / "broken.tsv"
    broken.write_bytes(b"\n".join(lines[:3] + [b"\t".join(lines[3].split(b"\t")[:10])]) + b"\n")
    with pytest.raises(InputError, match=r"broken.tsv:4: 10 tab-separated columns"):
        load_table(broken, "criteo-tsv")
    broken.write_bytes(lines[0] + b"\textra\n")
    with pytest.raises(InputError, match="41 tab-separated columns"):
        load_table(broken, "criteo-tsv")


def test_bucketing_and_corruption_rate():
    assert bucket_number("") == "" and bucket_number("1") == "1" and bucket_number("100") == "L21"
    rng = np.random.default_rng(0)
    values = np.array([[f"a{i}", f"b{i}"] for i in range(5000)], dtype=object)
    reference = np.array([["x", "y"]] * 10, dtype=object)
    noisy = corrupt(values, reference, 0.2, rng)
    changed = (noisy != values).mean()
    assert 0.18 < changed < 0.22
    assert set(noisy[noisy != values].tolist()) <= {"x", "y"}


def test_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.3).astype(float)
    s = np.round(rng.random(300) + y * 0.3, 1)  # rounded: ties present
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert auc(y, s) == pytest.approx(pairwise)


def test_cli_train_writes_artifacts_and_errors_exit_2(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from placecell.cli import main

    data = write_csv(tmp_path / "clicks.csv", synthetic_rows(1500, 7))
    main(["train", "ctr", "--data", str(data), "--format", "csv", "--label", "click", "--out", str(tmp_path / "m"), "--epochs", "2"])
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"clicks.onnx", "clicks.json", "clicks_training.md"}
    report = (tmp_path / "m" / "clicks_training.md").read_text()
    assert "ONNX check" in report and "- Machine: " in report
    command = (f"placecell train ctr --data {data} --format csv --label click --out {tmp_path / 'm'} --name clicks "
               "--epochs 2 --overwrite")
    assert f"- Command: `{command}`." in report
    assert json.loads((tmp_path / "m" / "clicks.json").read_text())["provenance"]["command"] == command
    # A retrain whose export fails its check replaces nothing: the old pair still loads
    from placecell.tools.ctr import training_report
    from placecell.tools.ctr.scorer import CTRScorer

    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    capsys.readouterr()
    retrain = ["train", "ctr", "--data", str(data), "--format", "csv", "--label", "click", "--out", str(tmp_path / "m"),
               "--epochs", "1", "--seed", "3"]
    with pytest.raises(SystemExit) as exc:  # a model of that name is there: not replaced without --overwrite
        main(retrain)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'm' / 'clicks.onnx'} exists; pass --overwrite to "
                                               "replace it, or choose another --out or --name")
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    monkeypatch.setattr(training_report, "ONNX_TOLERANCE", -1.0)
    with pytest.raises(SystemExit) as exc:
        main([*retrain, "--overwrite"])
    assert exc.value.code == 3 and "ONNX export differs" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    CTRScorer(tmp_path / "m" / "clicks.json")
    monkeypatch.undo()
    with pytest.raises(SystemExit) as exc:
        main(["train", "ctr", "--data", str(data), "--format", "csv", "--label", "nope", "--out", str(tmp_path / "m2")])
    assert exc.value.code == 2
    assert "label column 'nope' not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "ctr", "--data", "criteo"])
    assert exc.value.code == 2
    capsys.readouterr()
    for command in (["train", "ctr", "--data", str(data), "--format", "csv", "--label", "click"],
                    ["eval", "ctr", "--data", "ipinyou"]):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--linear-init", "ones", "--out", str(tmp_path / "m3")])
        assert exc.value.code == 2
        assert "--linear-init must be one of auto, zero, lr, not 'ones'" in capsys.readouterr().err


def test_shipped_models_score_catalog_pairs():
    from placecell.tools.recsys_nodes import score_candidates

    from collections import Counter

    from placecell.tools.recsys_data import load_catalog

    active = Counter(load_catalog("goodbooks_399").interactions.users.tolist()).most_common(1)[0][0]
    result = score_candidates(active, ["15", "40", "not-a-book"], {"40": {"web_evidence": 3.0}}, catalog="goodbooks_399")
    by_id = {s.item_id: s for s in result.scores}
    assert [s.score for s in result.scores] == sorted((s.score for s in result.scores), reverse=True)
    assert by_id["40"].score > by_id["40"].ctr  # the extra signal raised it
    assert by_id["15"].score == pytest.approx(by_id["15"].ctr)
    assert any("not in the catalog" in n for n in result.notes) and not result.cold_start
    cold = score_candidates("no-such-user", ["15"], catalog="goodbooks_399")
    assert cold.cold_start and "unseen user" in cold.notes[0]
    with pytest.raises(InputError):
        score_candidates(active, [])


@pytest.mark.slow
@pytest.mark.parametrize("data", ["ipinyou", "movielens"])
def test_full_ctr_eval(data, tmp_path):
    from placecell.evals.ctr import MODELS, run_ctr_eval

    results = run_ctr_eval(data, out_dir=tmp_path, seeds=1, say=lambda m: None)
    assert set(results["clean"]) == set(MODELS) == set(results["corrupted"])
    assert all(0.5 < m["auc"] < 1 for m in results["clean"].values())
    assert (tmp_path / "report.md").is_file()


def test_report_states_command_and_machine():
    from placecell.evals.ctr import ctr_command, report_markdown
    from placecell.evals.recsys_report import provenance

    assert ctr_command("ipinyou", None, 3, 20, 1, "auto", "out dir") == ["placecell", "eval", "ctr", "--data", "ipinyou",
                                                                       "--out", "out dir"]
    files = ("tr.csv", "te.csv", "csv", "click", None)
    assert ctr_command(None, files, 10, 20, 2, "lr", None) == [
        "placecell", "eval", "ctr", "--train", "tr.csv", "--test", "te.csv", "--format", "csv", "--label", "click",
        "--seeds", "10", "--threads", "2", "--linear-init", "lr"]
    p = provenance(ctr_command("ipinyou", None, 3, 20, 1, "auto", "out dir"))
    assert p["command"] == "placecell eval ctr --data ipinyou --out 'out dir'" and "CPUs" in p["machine"]
    from placecell.evals.ctr import MODELS

    scores = {"auc": 0.6, "logloss": 0.05, "auc_std": 0.0, "logloss_std": 0.0}
    seed = {"clean": {m: {"auc": 0.6} for m in MODELS}, "corrupted": {m: {"auc": 0.6} for m in MODELS},
            "sgctr_default_k": 0, "seconds": 1, "lr_C": 1, "lightgbm_setting": "x"}
    r = {"data": "ipinyou", "split": "s", "rows": {"train": 1, "test": 1, "test_clicks": 1, "train_ctr": 0.1, "test_ctr": 0.1},
         "fields": ["a"], "seeds": [0], "epochs_max": 20, "corrupt_rate": 0.2, "sgctr_linear_init": "auto",
         "sgctr_linear_init_used": ["lr"], "provenance": p, "per_seed": [seed],
         "clean": {m: scores for m in MODELS}, "corrupted": {m: scores for m in MODELS},
         "targets": {"sgctr_best_k_on_test": 0, "sgctr_best_auc": 0.6, "sgctr_val_chosen_k_auc": 0.6,
                     "sgctr_best_ge_lightgbm": True, "sgctr_best_ge_lr": True, "corrupted_best_k_ge1": 1,
                     "corrupted_k_ge1_beats_k0": False, "corrupted_k1_beats_k0": False,
                     "corrupted_seeds_where_some_k_ge1_beats_k0": "0/1"}}
    text = report_markdown(r)
    assert "- Command: `placecell eval ctr --data ipinyou --out 'out dir'`." in text and "- Machine: " in text
    assert "`--linear-init auto`: few clicks" in text


def test_paired_comparison_by_seed():
    from placecell.evals.ctr import _paired_lines, paired

    per_seed = [{"clean": {"sgctr_k1": {"auc": a}, "lr": {"auc": b}}} for a, b in [(0.60, 0.58), (0.55, 0.56), (0.70, 0.66)]]
    p = paired(per_seed, "sgctr_k1", "lr")
    assert p["wins"] == "2/3" and p["mean_diff"] == pytest.approx(0.01667, abs=1e-5)
    assert p["se"] == pytest.approx(np.std([0.02, -0.01, 0.04], ddof=1) / np.sqrt(3), abs=1e-5)
    line = _paired_lines({"sgctr_best_k_on_test": 1, "paired_vs": {"lr": p}})[0]
    assert "lr: +0.0167 ± 0.0145 (s.e.), SGCTR ahead in 2/3 seeds" in line
    one = paired(per_seed[:1], "sgctr_k1", "lr")
    assert one["se"] is None and json.loads(json.dumps(one)) == one  # one seed: no s.e., still valid JSON
    assert "(s.e.)" not in _paired_lines({"sgctr_best_k_on_test": 1, "paired_vs": {"lr": one}})[0]
