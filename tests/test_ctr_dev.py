"""The CTR dev harness splits the eval's training part only, and its settings reach the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from placecell.errors import InputError
from placecell.evals.ctr import load_named
from placecell.evals.ctr_dev import dev_split, main, parse_setting, subsample, summary_lines


def test_dev_split_is_each_users_last_training_rows():
    full = load_named("movielens", 0)
    dev = dev_split("movielens", 0)
    assert len(dev.train) + len(dev.test) == len(full.train)
    train_keys = {tuple(r) for r in full.train.values[:, :2].tolist()}
    test_keys = {tuple(r) for r in full.test.values[:, :2].tolist()}
    dev_test_keys = {tuple(r) for r in dev.test.values[:, :2].tolist()}
    assert dev_test_keys <= train_keys and not dev_test_keys & test_keys
    # One user: the dev test is the tail of that user's training rows, in order.
    user = dev.test.values[0, 0]
    rows = full.train.values[full.train.values[:, 0] == user]
    tail = dev.test.values[dev.test.values[:, 0] == user]
    assert 0 < len(tail) < len(rows)
    assert np.array_equal(rows[-len(tail):], tail)


def test_settings_parse_and_unknown_ones_are_refused(capsys):
    assert parse_setting("mlp_hidden=(256,128)") == ("mlp_hidden", (256, 128))
    assert parse_setting("stop_on=logloss") == ("stop_on", "logloss")
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_setting("dim")
    assert main(["--data", "movielens", "--seeds", "0", "--set", "no_such_knob=1", "--epochs", "1"]) == 2
    assert "unknown SGCTR setting 'no_such_knob'" in capsys.readouterr().err


def test_one_epoch_run_writes_lines_and_compares(tmp_path, capsys):
    out = tmp_path / "dev.jsonl"
    args = ["--data", "movielens", "--seeds", "0,1", "--set", "dim=4", "--set", "mlp_hidden=(8,)", "--epochs", "1",
            "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0]["settings"] == {"dim": 4, "mlp_hidden": [8]}
    assert set(rows[0]["clean"]) == {"sgctr_k0", "sgctr_k1", "sgctr_k2", "sgctr_k3"}
    assert 0.5 < rows[0]["clean"]["sgctr_k0"]["auc"] < 1.0
    # Against itself every paired difference is zero.
    lines = summary_lines(rows, rows)
    assert any("paired vs earlier run: +0.0000 ± 0.0000" in line for line in lines)


def test_subsample_keeps_a_stratified_share_of_dev_train_and_the_whole_dev_test():
    dev = dev_split("movielens", 0)
    small = subsample(dev, 0.05, seed=0)
    assert small.test is dev.test
    assert abs(len(small.train) - 0.05 * len(dev.train)) <= 2
    assert abs(small.train.labels.mean() - dev.train.labels.mean()) < 0.01
    assert {tuple(r) for r in small.train.values[:, :2].tolist()} <= {tuple(r) for r in dev.train.values[:, :2].tolist()}
    assert subsample(dev, 1.0, seed=0) is dev
    with pytest.raises(InputError, match="--subsample must be in"):
        subsample(dev, 0.0, seed=0)
