"""Training loop shared by SGCTR and the FM baseline (PyTorch, CPU, one thread by default).

`train_sgctr(table)` is the whole recipe: a stratified validation share is carved out of the training
rows, the field vocabularies are fitted on the rest, the model trains with early stopping on the
validation AUC, and the number of refinement passes used by default is picked on validation.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from placecell.tools.ctr.data import RawTable, check_trainable, stratified_split
from placecell.tools.ctr.encoding import FieldEncoder
from placecell.tools.ctr.metrics import auc, logloss
from placecell.tools.ctr.model import SGCTR, SGCTRConfig


LINEAR_INITS = ("auto", "zero", "lr")  # TrainConfig.linear_init
# "auto" starts from the logistic regression when the smaller class of the training rows (after the
# validation share) has fewer rows than this. Measured (evals/RESULTS_recsys.md, session 16): on
# MovieLens dev subsamples the LR start gains +0.024 AUC at ~110 rows of the smaller class, +0.0025 at
# ~4,300, ties at ~10,800 and loses 0.0024 at ~21,600 (the full data); on iPinYou (~180 clicks) +0.05.
AUTO_LR_BELOW = 10_000


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 4
    val_share: float = 0.1
    min_count: int = 2
    seed: int = 0
    threads: int = 1
    # The per-value first-order weights (an LR inside the model) need ~30 epochs at lr 2e-3 to converge,
    # the interaction part far fewer: they get a higher learning rate.
    linear_lr_mult: float = 5.0
    stop_on: str = "auc"  # early-stopping metric on validation: "auc" or "logloss"
    # "lr": start the first-order weights from an L2 logistic regression on the same rows (C picked on
    # validation log-loss) and the deep terms' outputs from zero, and let early stopping keep that
    # start when training the rest does not beat it on validation. With ~200 clicks (iPinYou) the
    # jointly trained deep parts overfit first. "auto" (train_sgctr resolves it, see AUTO_LR_BELOW): "lr"
    # when either class has few training rows, "zero" otherwise.
    linear_init: str = "auto"  # "auto" | "zero" | "lr"
    # With the LR start: the final weights are start_weight * start + (1 - start_weight) * trained, a
    # weight-space ensemble of the start and the early-stopped model (WiSE-FT, Wortsman et al. 2022).
    # Early stopping on ~20 validation clicks (iPinYou) keeps epochs that lose to the start on the test.
    start_weight: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class TrainLog:
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    val_logloss: list[float] = field(default_factory=list)
    val_auc: list[float] = field(default_factory=list)


@dataclass
class TrainedCTR:
    model: SGCTR
    encoder: FieldEncoder
    config: TrainConfig
    log: TrainLog
    default_passes: int
    val_auc_by_passes: list[float]


def predict(model: torch.nn.Module, ids: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Probabilities (n, outputs): for SGCTR one column per refinement pass count K = 0..max."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(ids), batch):
            outs.append(model(torch.as_tensor(ids[start : start + batch])).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 1), dtype=np.float32)


def fit(
    model: torch.nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    cfg: TrainConfig,
    progress: Callable[[str], None] | None = None,
) -> TrainLog:
    """Adam with early stopping on the validation AUC (or log-loss) of the first output (K = 0)."""
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    linear = [p for n, p in model.named_parameters() if n.startswith("first_order.") or n.startswith("weights.")]
    linear_ids = {id(p) for p in linear}
    rest = [p for p in model.parameters() if id(p) not in linear_ids]
    groups = [{"params": rest}] + ([{"params": linear, "lr": cfg.lr * cfg.linear_lr_mult}] if linear else [])
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ids, labels = torch.as_tensor(train[0]), torch.as_tensor(train[1])
    log, best_state, best, started = TrainLog(), None, float("inf"), time.time()
    start_state = None
    if cfg.linear_init == "lr":  # the warm start is "epoch 0": kept unless an epoch beats it
        best = _val_score(model, val, cfg)
        best_state = start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    total_steps = cfg.epochs * max(1, -(-len(ids) // cfg.batch_size))
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        for batch in torch.randperm(len(ids), generator=gen).split(cfg.batch_size):
            loss = model.loss(ids[batch], labels[batch], step / total_steps, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        probs = predict(model, val[0])[:, 0]
        log.val_logloss.append(logloss(val[1], probs))
        log.val_auc.append(auc(val[1], probs))
        log.epochs_run = epoch + 1
        if progress:
            progress(f"epoch {epoch + 1}: val logloss {log.val_logloss[-1]:.4f} auc {log.val_auc[-1]:.4f}")
        score = log.val_logloss[-1] if cfg.stop_on == "logloss" else -log.val_auc[-1]
        if score < best - 1e-5:
            best, log.best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch + 1 - log.best_epoch >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if start_state is not None and cfg.start_weight > 0 and log.best_epoch > 0:
        model.load_state_dict(_interpolate(start_state, model.state_dict(), cfg.start_weight))
    log.seconds = round(time.time() - started, 1)
    return log


def _interpolate(start: dict, trained: dict, start_weight: float) -> dict:
    """start_weight * start + (1 - start_weight) * trained, for float tensors (index buffers kept)."""
    return {k: start_weight * start[k] + (1 - start_weight) * v if v.is_floating_point() else v
            for k, v in trained.items()}


def _val_score(model: torch.nn.Module, val: tuple[np.ndarray, np.ndarray], cfg: TrainConfig) -> float:
    probs = predict(model, val[0])[:, 0]
    return logloss(val[1], probs) if cfg.stop_on == "logloss" else -auc(val[1], probs)


LR_INIT_C_GRID = (0.03, 0.1, 0.3, 1.0)


def init_first_order_from_lr(model: SGCTR, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                             n_values: int, seed: int) -> float:
    """Set the model's first-order weights (and output bias) to an L2 logistic regression on the
    one-hot encoded rows; returns the C picked on validation log-loss."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    def onehot(ids):
        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        return csr_matrix((np.ones(ids.size, dtype=np.float32), (rows, ids.ravel())), shape=(len(ids), n_values))

    x_train, x_val = onehot(train[0]), onehot(val[0])
    best, chosen = float("inf"), None
    for c in LR_INIT_C_GRID:
        lr = LogisticRegression(C=c, solver="liblinear", max_iter=300, random_state=seed).fit(x_train, train[1])
        loss = logloss(val[1], lr.predict_proba(x_val)[:, 1])
        if loss < best:
            best, chosen = loss, (c, lr)
    c, lr = chosen
    with torch.no_grad():
        model.first_order.weight.copy_(torch.as_tensor(lr.coef_.reshape(-1, 1), dtype=torch.float32))
        model.mlp[-1].bias.fill_(float(lr.intercept_[0]))
        # The deep terms' outputs start at zero, so "epoch 0" is this LR, not the LR plus the random
        # logit of an untrained MLP. On 10 iPinYou splits the start alone now scores as the LR
        # baseline (paired +0.0006 +- 0.0012 AUC) and the trained model rose from 0.6086 to 0.6103.
        model.mlp[-1].weight.zero_()
        if model.wide is not None:
            model.wide.weight.zero_()
            model.wide.bias.zero_()
    return c


def smaller_class(labels: np.ndarray) -> int:
    """Rows of the rarer label (clicks or non-clicks)."""
    clicks = int(np.asarray(labels).sum())
    return min(clicks, len(labels) - clicks)


def resolve_linear_init(requested: str, labels: np.ndarray) -> str:
    """"auto" -> "lr" when the smaller class has fewer than AUTO_LR_BELOW rows, else "zero"."""
    if requested not in LINEAR_INITS:
        raise ValueError(f"linear_init must be one of {', '.join(LINEAR_INITS)}, not {requested!r}")
    if requested != "auto":
        return requested
    return "lr" if smaller_class(labels) < AUTO_LR_BELOW else "zero"


def split_for_validation(table: RawTable, cfg: TrainConfig) -> tuple[RawTable, RawTable]:
    check_trainable(table, "training data")
    fit_idx, val_idx = stratified_split(table.labels, cfg.val_share, np.random.default_rng(cfg.seed + 1000))
    fit_part, val_part = table.take(fit_idx), table.take(val_idx)
    # With a handful of clicks one side can end up with a single class; say so rather than fail later.
    check_trainable(val_part, f"validation split ({cfg.val_share:.0%} of {len(table)} rows; too few clicks?)")
    return fit_part, val_part


def train_sgctr(
    table: RawTable,
    cfg: TrainConfig | None = None,
    model_cfg: SGCTRConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainedCTR:
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    fit_part, val_part = split_for_validation(table, cfg)
    requested, cfg = cfg.linear_init, replace(cfg, linear_init=resolve_linear_init(cfg.linear_init, fit_part.labels))
    if progress and requested == "auto":  # reports show the start used; say why here
        progress(f"first-order start: {cfg.linear_init} (--linear-init auto: the smaller class has "
                 f"{smaller_class(fit_part.labels)} training rows, "
                 f"{'<' if cfg.linear_init == 'lr' else '>='} {AUTO_LR_BELOW})")
    encoder = FieldEncoder.fit(table.schema.fields, fit_part.values, cfg.min_count)
    fit_ids = encoder.transform(fit_part.values)
    counts = np.bincount(fit_ids.ravel(), minlength=sum(encoder.field_sizes))
    model = SGCTR(encoder.field_sizes, model_cfg, value_counts=counts)
    val_ids = encoder.transform(val_part.values)
    if cfg.linear_init == "lr" and model.first_order is not None:
        init_first_order_from_lr(model, (fit_ids, fit_part.labels), (val_ids, val_part.labels), sum(encoder.field_sizes), cfg.seed)
    log = fit(model, (fit_ids, fit_part.labels), (val_ids, val_part.labels), cfg, progress)
    val_probs = predict(model, val_ids)
    val_aucs = [auc(val_part.labels, val_probs[:, k]) for k in range(val_probs.shape[1])]
    return TrainedCTR(model, encoder, cfg, log, int(np.argmax(val_aucs)), val_aucs)
