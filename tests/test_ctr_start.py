"""SGCTR's first-order start: from zero, from a logistic regression (`linear_init`), chosen by the
amount of data (`auto`), and blended back into the trained weights (`start_weight`)."""

from __future__ import annotations

import numpy as np
import pytest

from placecell.tools.ctr.data import load_table
from placecell.tools.ctr.metrics import auc
from support import synthetic_rows, write_csv


def test_linear_init_lr_starts_from_a_logistic_regression(tmp_path):
    """`linear_init="lr"`: before any epoch the model already ranks like a logistic regression,
    and early stopping keeps that start when no epoch beats it (epochs=0: nothing to beat)."""
    pytest.importorskip("torch")
    from placecell.tools.ctr.model import SGCTRConfig
    from placecell.tools.ctr.train import TrainConfig, predict, train_sgctr

    train = load_table(write_csv(tmp_path / "train.csv", synthetic_rows(3000, 0)), "csv", label="click")
    test = load_table(write_csv(tmp_path / "test.csv", synthetic_rows(1500, 1)), "csv", label="click", schema=train.schema)
    small = SGCTRConfig(dim=8, gen_hidden=32, mlp_hidden=(32,))

    def test_auc(init):
        trained = train_sgctr(train, TrainConfig(epochs=0, seed=0, linear_init=init), small)
        weights = trained.model.first_order.weight.detach().numpy()
        return auc(test.labels, predict(trained.model, trained.encoder.transform(test.values))[:, 0]), weights

    zero_auc, zero_w = test_auc("zero")
    lr_auc, lr_w = test_auc("lr")
    assert not zero_w.any() and abs(zero_auc - 0.5) < 0.1  # untrained: no signal
    assert lr_w.any() and lr_auc > 0.65  # site and slot weights carry the clicks

    # The start is the LR itself: the deep terms add nothing to its logit until they are trained.
    import torch

    trained = train_sgctr(train, TrainConfig(epochs=0, seed=0, linear_init="lr"), small)
    ids = torch.as_tensor(trained.encoder.transform(test.values))
    with torch.no_grad():
        lr_logit = trained.model.first_order(ids).squeeze(-1).sum(1) + trained.model.mlp[-1].bias
        np.testing.assert_allclose(trained.model.logits(ids).numpy(), lr_logit.numpy(), atol=0.02)  # the FM term: ~1e-3


def test_start_weight_blends_the_lr_start_into_the_trained_weights(tmp_path):
    """`start_weight` (WiSE-FT): the final weights are the stated mix of the LR start and the
    early-stopped model; 0 keeps the trained model."""
    pytest.importorskip("torch")
    from placecell.tools.ctr.model import SGCTRConfig
    from placecell.tools.ctr.train import TrainConfig, train_sgctr

    train = load_table(write_csv(tmp_path / "train.csv", synthetic_rows(3000, 0)), "csv", label="click")
    small = SGCTRConfig(dim=8, gen_hidden=32, mlp_hidden=(32,))

    def weights(epochs, start_weight):
        trained = train_sgctr(train, TrainConfig(epochs=epochs, seed=0, linear_init="lr", start_weight=start_weight), small)
        assert epochs == 0 or trained.log.best_epoch > 0  # training beat the start, so there is something to blend
        return {k: v.detach().numpy().copy() for k, v in trained.model.state_dict().items()}

    start, trained, half = weights(0, 0.0), weights(3, 0.0), weights(3, 0.5)
    for name in ("first_order.weight", "mlp.2.weight", "embedding.weight"):
        assert not np.allclose(start[name], trained[name])
        np.testing.assert_allclose(half[name], 0.5 * start[name] + 0.5 * trained[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(half["embed_index"], trained["embed_index"])  # index buffers are not blended


def test_linear_init_auto_starts_from_the_lr_when_a_class_is_small(tmp_path):
    from placecell.tools.ctr.train import AUTO_LR_BELOW, resolve_linear_init

    few = np.r_[np.ones(AUTO_LR_BELOW - 1), np.zeros(3 * AUTO_LR_BELOW)]
    many = np.r_[np.ones(AUTO_LR_BELOW), np.zeros(AUTO_LR_BELOW)]
    assert resolve_linear_init("auto", few) == "lr"
    assert resolve_linear_init("auto", 1 - few) == "lr"  # few non-clicks count as well
    assert resolve_linear_init("auto", many) == "zero"
    assert resolve_linear_init("zero", few) == "zero" and resolve_linear_init("lr", many) == "lr"
    with pytest.raises(ValueError, match="linear_init must be one of"):
        resolve_linear_init("ones", few)
    # The trained model records the start "auto" chose (the training report prints it).
    pytest.importorskip("torch")
    from placecell.tools.ctr.model import SGCTRConfig
    from placecell.tools.ctr.train import TrainConfig, train_sgctr

    train = load_table(write_csv(tmp_path / "train.csv", synthetic_rows(600, 0)), "csv", label="click")
    trained = train_sgctr(train, TrainConfig(epochs=0, seed=0), SGCTRConfig(dim=4, gen_hidden=8, mlp_hidden=(8,)))
    assert trained.config.linear_init == "lr" and trained.model.first_order.weight.detach().numpy().any()
