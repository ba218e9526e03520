"""Carousel eval: each filling strategy vs plain CF on held-out interactions (arXiv 2511.14461 setting).

Protocol:
1. Positives (rating >= 4, or every to-read event) split per user in time order: the last 20 % of
   each user's positives (users with >= 5) are the test; explicit `--holdout` files replace this.
2. Inside the training part the same rule carves a validation split (the test holdout is never
   used for a choice). On up to `tune_users` validation users: EASE's lambda is chosen by CF
   nDCG@10, then each strategy's weight(s) from a grid. Every candidate's nDCG@10 loss and ILD gain
   against CF get a paired bootstrap standard error over the validation users. A candidate is
   admissible when its nDCG loss is <= 5 % with one-sided 95 % confidence (loss + 1.645 SE <= 5 %).
   Single-aim strategies take the admissible setting with the largest aim (ILD, novelty,
   serendipity); `combined` takes the admissible setting that maximises the smaller of the two
   target z-scores, min((ILD gain - 30 %) / SE, (5 % - nDCG loss) / SE): the setting most surely
   inside the target region, or, when no setting reaches +30 % ILD, the most diverse admissible one.
3. EASE is refitted on the whole training part and pages (4 carousels x 5 items) are built for the
   test users; "cf" is the plain top-20 EASE list. Seeds draw bootstrap samples of test users (up
   to `max_users`), which gives the run-to-run spread; the target is checked per seed too.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from placecell.errors import InputError
from placecell.evals.recsys_report import mean_std, met, provenance, provenance_lines, table, write_results
from placecell.tools.carousels.cf import EASE
from placecell.tools.carousels.data import ImplicitSplit, ItemSpace, implicit_split, item_space, positives_of
from placecell.tools.carousels.layout import CarouselEngine, Prepared
from placecell.tools.carousels.metrics import METRIC_KEYS, aggregate, user_metrics
from placecell.tools.carousels.strategies import STRATEGIES, StrategyParams
from placecell.tools.recsys_data import Catalog, Interactions, load_catalog, load_goodbooks_files, split_by_user

DATASETS = ("goodbooks_399", "goodbooks_classics", "movielens")
ALL = ("cf",) + STRATEGIES
K, N_CAROUSELS = 5, 4
PAGE = K * N_CAROUSELS
NDCG_LOSS = 0.05  # the target's nDCG@10 budget (relative to CF)
ILD_GAIN = 1.30
Z_ADMIT = 1.645  # one-sided 95 %: a setting is admissible when loss + Z_ADMIT * SE <= NDCG_LOSS
BOOTSTRAP = 200
EASE_GRID = (50.0, 200.0, 500.0, 1000.0)
GRIDS: dict[str, list[dict]] = {
    "accuracy": [{}],
    "diversity": [{"mmr_lambda": v} for v in (0.9, 0.8, 0.7, 0.6, 0.5)],
    "xquad": [{"xquad_lambda": v} for v in (0.2, 0.4, 0.6, 0.8)],
    "novelty": [{"novelty_weight": v} for v in (0.05, 0.1, 0.2, 0.3, 0.5)],
    "serendipity": [{"serendipity_weight": v} for v in (0.05, 0.1, 0.2, 0.3, 0.5)],
    # combined: b weighs the mean page similarity against slot-discounted relevance (strategies.py);
    # small novelty / unexpectedness weights c, d are tried on top.
    "combined": [
        {"combined": (1.0, b, c, d)}
        for b, (c, d) in itertools.product((0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4), ((0.0, 0.0), (0.025, 0.0), (0.0, 0.025)))
    ],
}
AIM = {"diversity": "ild", "xquad": "ild", "novelty": "novelty", "serendipity": "serendipity"}
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class EvalData:
    name: str
    catalog: Catalog
    train: Interactions
    test: Interactions
    note: str


def load_named(name: str) -> EvalData:
    if name == "goodbooks_classics":
        d = DATA_DIR / "goodbooks_classics"
        if not (d / "toread.csv.gz").is_file():
            raise InputError(f"goodbooks_classics eval data not found under {d} (source checkout only)")
        catalog = load_goodbooks_files(d / "toread.csv.gz", d / "books.csv.gz", d / "book_tags.csv.gz", d / "tags.csv.gz", name)
    elif name in ("goodbooks_399", "movielens"):
        catalog = load_catalog(name)
    else:
        raise InputError(f"unknown carousel data {name!r}; choose one of {', '.join(DATASETS)} or pass files")
    pos = positives_of(catalog)
    test = split_by_user(pos.users)
    note = "each user's last 20 % of positives in time order (users with >= 5 positives) = test"
    return EvalData(name, catalog, pos.select(~test), pos.select(test), note)


def load_files(interactions: str, holdout: str, items: str, item_tags: str, tag_names: str) -> EvalData:
    catalog = load_goodbooks_files(interactions, items, item_tags, tag_names, Path(interactions).stem)
    held = load_goodbooks_files(holdout, items, item_tags, tag_names, "holdout")
    note = f"--interactions {interactions} / --holdout {holdout}"
    return EvalData(catalog.name, catalog, positives_of(catalog), positives_of(held), note)


def prepare_users(engine: CarouselEngine, split: ImplicitSplit, users: list[int]) -> dict[int, Prepared]:
    """Per-user relevance and carousel candidates: the same for every strategy, computed once."""
    return {u: engine.prepare(split.train[u].indices.tolist(), k=K) for u in users}


def pages_for(
    engine: CarouselEngine, split: ImplicitSplit, users: list[int], strategy: str, params: StrategyParams, prepared: dict[int, Prepared] | None = None
) -> dict[int, list[int]]:
    out = {}
    for u in users:
        if strategy == "cf":
            out[u] = engine.cf_list(split.train[u].indices.tolist(), PAGE)[0]
        else:
            prep = prepared[u] if prepared is not None else engine.prepare(split.train[u].indices.tolist(), k=K)
            out[u] = engine.fill_page(prep, strategy, K, N_CAROUSELS, params).items()
    return out


def per_user_metrics(pages: dict[int, list[int]], users: list[int], split: ImplicitSplit, space: ItemSpace, cf: EASE) -> list[dict[str, float]]:
    info = cf.self_information()
    return [user_metrics(pages[u], split.test[u], split.train[u].indices.tolist(), space.tag_matrix, info) for u in users]


def score_pages(pages: dict[int, list[int]], users: list[int], split: ImplicitSplit, space: ItemSpace, cf: EASE) -> dict[str, float]:
    return aggregate(per_user_metrics(pages, users, split, space, cf), [pages[u] for u in users], cf.popularity > 0)


def _fit_engine(catalog: Catalog, space: ItemSpace, split: ImplicitSplit, lam: float) -> CarouselEngine:
    return CarouselEngine(catalog, space, EASE(lam=lam).fit(split.train))


def _sample(users: list[int], n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(users, size=min(n, len(users)), replace=False).tolist())


def _jsonable(setting: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in setting.items()}


def _vec(per_user: list[dict[str, float]], key: str) -> np.ndarray:
    return np.array([m[key] for m in per_user], dtype=np.float64)


class Validation:
    """Per-user validation metrics of CF and a paired bootstrap over the validation users."""

    def __init__(self, cf_per_user: list[dict[str, float]], seed: int = 0):
        self.cf = {k: _vec(cf_per_user, k) for k in ("ndcg@10", "ild")}
        n = len(cf_per_user)
        self.draws = np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP, n))

    def ratio(self, values: np.ndarray, key: str) -> tuple[float, float]:
        """mean(values) / mean(CF) and its bootstrap standard error (users resampled in pairs)."""
        base = self.cf[key]
        ratio = float(values.mean() / max(base.mean(), 1e-12))
        boot = values[self.draws].mean(1) / np.maximum(base[self.draws].mean(1), 1e-12)
        return ratio, float(boot.std())

    def target(self, per_user: list[dict[str, float]]) -> dict[str, float]:
        ndcg, ndcg_se = self.ratio(_vec(per_user, "ndcg@10"), "ndcg@10")
        ild, ild_se = self.ratio(_vec(per_user, "ild"), "ild")
        loss, gain = 1.0 - ndcg, ild - 1.0
        return {
            "ndcg_loss": loss, "ndcg_loss_se": ndcg_se, "ild_gain": gain, "ild_gain_se": ild_se,
            "z_ndcg": (NDCG_LOSS - loss) / max(ndcg_se, 1e-9), "z_ild": (gain - (ILD_GAIN - 1)) / max(ild_se, 1e-9),
        }


def _pick(strategy: str, cands: list[tuple[dict, dict, dict]]) -> tuple[dict, dict, dict]:
    """cands: (setting, aggregate metrics, target stats). See the module docstring for the rule."""
    keep = [c for c in cands if c[2]["z_ndcg"] >= Z_ADMIT]
    if not keep:  # nothing is surely within the nDCG budget: take the most accurate setting
        return max(cands, key=lambda c: c[1]["ndcg@10"])
    if strategy == "combined":
        return max(keep, key=lambda c: min(c[2]["z_ild"], c[2]["z_ndcg"]))
    return max(keep, key=lambda c: c[1][AIM.get(strategy, "ndcg@10")])


def tune(data: EvalData, space: ItemSpace, max_users: int, grids: dict, say: Callable[[str], None]) -> tuple[float, dict[str, StrategyParams], dict]:
    """EASE lambda and strategy weights on a validation split carved out of the training part."""
    val_mask = split_by_user(data.train.users)
    split = implicit_split(data.train.select(~val_mask), data.train.select(val_mask), space)
    users = _sample([u for u in split.test if split.train[u].nnz > 0], max_users, 12345)
    if not users:  # EASE's scores would be empty means (NaN) and no lambda would win
        raise InputError(f"[{data.name}] too few training positives to tune on: {len(data.train)} train positives, and "
                         "no user has items on both sides of the validation split; give more interactions")
    best_lam, best_ndcg, engine = None, -1.0, None
    for lam in grids.get("ease", EASE_GRID):
        candidate = _fit_engine(data.catalog, space, split, lam)
        ndcg = score_pages(pages_for(candidate, split, users, "cf", StrategyParams()), users, split, space, candidate.cf)["ndcg@10"]
        say(f"  validation: EASE lambda {lam:g} -> CF nDCG@10 {ndcg:.4f}")
        if ndcg > best_ndcg or engine is None:  # the first lambda stands when every score is NaN
            best_lam, best_ndcg, engine = lam, ndcg, candidate
    cf_pages = pages_for(engine, split, users, "cf", StrategyParams())
    cf_users = per_user_metrics(cf_pages, users, split, space, engine.cf)
    cf = aggregate(cf_users, [cf_pages[u] for u in users], engine.cf.popularity > 0)
    val = Validation(cf_users)
    prepared = prepare_users(engine, split, users)
    chosen, log = {}, {"ease_lambda": best_lam, "validation_users": len(users), "cf": cf}
    for strategy in STRATEGIES:
        cands = []
        for setting in grids[strategy]:
            params = replace(StrategyParams(), **setting)
            pages = pages_for(engine, split, users, strategy, params, prepared)
            per_user = per_user_metrics(pages, users, split, space, engine.cf)
            cands.append((setting, aggregate(per_user, [pages[u] for u in users], engine.cf.popularity > 0), val.target(per_user)))
        setting, metrics, stats = _pick(strategy, cands)
        chosen[strategy] = replace(StrategyParams(), **setting)
        log[strategy] = {
            "chosen": _jsonable(setting), "validation": metrics, "target_stats": stats,
            "candidates": [
                {"setting": _jsonable(c), "ndcg@10": m["ndcg@10"], "ild": m["ild"], "novelty": m["novelty"], "serendipity": m["serendipity"], **t}
                for c, m, t in cands
            ],
        }
        say(
            f"  validation: {strategy} {setting} -> nDCG@10 {metrics['ndcg@10']:.4f} ({-stats['ndcg_loss']:+.1%} ± {stats['ndcg_loss_se']:.1%}) "
            f"ILD {metrics['ild']:.3f} ({stats['ild_gain']:+.1%}) (CF {cf['ndcg@10']:.4f} / {cf['ild']:.3f})"
        )
    return best_lam, chosen, log


def _seed_metrics(pages: dict[str, dict[int, list[int]]], users: list[int], split, space, cf) -> dict[str, dict[str, float]]:
    return {s: score_pages(pages[s], users, split, space, cf) for s in ALL}


def run_carousel_eval(
    data: str | None = None,
    files: tuple[str, str, str, str, str] | None = None,
    out_dir: Path | None = None,
    seeds: int = 3,
    max_users: int = 2000,
    say: Callable[[str], None] = print,
    grids: dict | None = None,
    tune_users: int = 3000,
) -> dict:
    if seeds < 1:
        raise InputError("--seeds must be >= 1")
    started = time.time()
    ev = load_files(*files) if files else load_named(data)
    space = item_space(ev.catalog)
    if not space.tags:
        raise InputError(f"[{ev.name}] no item has a tag: intra-list diversity and xQuAD need item tags (check --item-tags and --tag-names)")
    say(f"[{ev.name}] {len(ev.train)} train / {len(ev.test)} held-out positives, {len(space.ids)} items")
    for note in ev.catalog.notes:
        say(f"[{ev.name}] note: {note}")
    lam, params, tuning = tune(ev, space, tune_users, grids or GRIDS, say)
    split = implicit_split(ev.train, ev.test, space)
    engine = _fit_engine(ev.catalog, space, split, lam)
    test_users = sorted(split.test)
    if not test_users:
        raise InputError("no held-out positives to evaluate")
    samples = [np.random.default_rng(seed).choice(test_users, size=min(max_users, len(test_users)), replace=True).tolist() for seed in range(seeds)]
    needed = sorted(set(itertools.chain.from_iterable(samples)))
    prepared = prepare_users(engine, split, needed)
    pages = {s: pages_for(engine, split, needed, s, params.get(s, StrategyParams()), prepared) for s in ALL}
    per_seed = [_seed_metrics(pages, users, split, space, engine.cf) for users in samples]
    cold = sum(split.train[u].nnz == 0 for u in needed)
    if cold:
        say(f"[{ev.name}] note: {cold} of {len(needed)} evaluated users have no training history: their pages fall back to popularity")
    results = _results(ev, per_seed, tuning, params, len(test_users), len(needed), cold)
    results["notes"] = ev.catalog.notes + ([f"{cold} evaluated users without training history get the popularity page"] if cold else [])
    results["seconds"] = round(time.time() - started, 1)
    command = ["placecell", "eval", "carousels"]
    command += ["--data", data] if not files else [arg for flag, path in zip(
        ("--interactions", "--holdout", "--items", "--item-tags", "--tag-names"), files) for arg in (flag, path)]
    command += (["--seeds", str(seeds)] if seeds != 3 else []) + (["--max-users", str(max_users)] if max_users != 2000 else [])
    results["provenance"] = provenance(command + (["--out", str(out_dir)] if out_dir is not None else []))
    if out_dir is not None:
        write_results(results, out_dir, report_markdown(results))
    return results


def _results(ev: EvalData, per_seed: list[dict], tuning: dict, params: dict, n_test: int, n_eval: int, n_cold: int) -> dict:
    strategies = {}
    for s in ALL:
        strategies[s] = {k: float(np.mean([r[s][k] for r in per_seed])) for k in METRIC_KEYS}
        strategies[s]["std"] = {k: float(np.std([r[s][k] for r in per_seed])) for k in METRIC_KEYS}
    def check(r: dict) -> tuple[float, float]:
        return r["combined"]["ild"] / r["cf"]["ild"] - 1, 1 - r["combined"]["ndcg@10"] / max(r["cf"]["ndcg@10"], 1e-12)
    seed_checks = [check(r) for r in per_seed]
    gain, loss = check(strategies)
    return {
        "data": ev.name,
        "strategies": strategies,
        "target": {
            "ild_gain": gain, "ndcg_loss": loss, "met": bool(gain >= ILD_GAIN - 1 and loss <= NDCG_LOSS),
            "per_seed": [{"ild_gain": g, "ndcg_loss": l, "met": bool(g >= ILD_GAIN - 1 and l <= NDCG_LOSS)} for g, l in seed_checks],
        },
        "per_seed": per_seed,
        "tuning": tuning,
        "params": {s: p.to_json() for s, p in params.items()},
        "layout": {"carousels": N_CAROUSELS, "items_per_carousel": K, "page": PAGE},
        "split": ev.note,
        "users": {"with_holdout": n_test, "evaluated_distinct": n_eval, "without_train_history": int(n_cold)},
    }


def report_markdown(r: dict) -> str:
    header = ["strategy"] + list(METRIC_KEYS)
    rows = [[s] + [mean_std(r["strategies"][s][k], r["strategies"][s]["std"][k], 3) for k in METRIC_KEYS] for s in ALL]
    t = r["target"]
    per_seed = "; ".join(f"seed {i}: ILD {p['ild_gain']:+.1%}, nDCG {-p['ndcg_loss']:+.1%}" for i, p in enumerate(t["per_seed"]))
    lines = [
        f"# Carousel eval: {r['data']}",
        "",
        f"- Split: {r['split']}. Users with held-out positives: {r['users']['with_holdout']}; distinct users "
        f"evaluated: {r['users']['evaluated_distinct']} ({r['users']['without_train_history']} without training history).",
        f"- Page: {r['layout']['carousels']} carousels x {r['layout']['items_per_carousel']} items, read carousel by carousel; "
        "`cf` is the plain EASE top-20 list. Accuracy @10 on the first 10 page items; ILD, novelty, serendipity on the page.",
        f"- EASE lambda {r['tuning']['ease_lambda']:g} and every strategy's weights were chosen on a validation split "
        "(see `tuning` in results.json); seeds = bootstrap samples of test users (mean ± std shown).",
        *provenance_lines(r),
        *(f"- Note: {n}." for n in r.get("notes", [])),
        "",
        table(header, rows),
        "",
        "## Target: combined ILD >= +30 % over CF at <= 5 % relative nDCG@10 loss",
        "",
        f"- Mean over seeds: ILD {t['ild_gain']:+.1%}, nDCG@10 {-t['ndcg_loss']:+.1%}: {met(t['met'])}.",
        f"- Per seed: {per_seed}.",
        "",
        "## Chosen weights (validation)",
        "",
        f"Rule: a setting is admissible when its validation nDCG@10 loss is <= 5 % with one-sided 95 % confidence "
        f"(paired bootstrap over {r['tuning']['validation_users']} validation users); single-aim strategies take the admissible "
        "setting with the largest aim, `combined` the one maximising min(z ILD, z nDCG) for the target. Validation numbers "
        "are relative to CF on the validation split.",
        "",
        "\n".join(
            f"- {s}: {r['tuning'][s]['chosen'] or '-'} (validation: nDCG {-r['tuning'][s]['target_stats']['ndcg_loss']:+.1%} "
            f"± {r['tuning'][s]['target_stats']['ndcg_loss_se']:.1%}, ILD {r['tuning'][s]['target_stats']['ild_gain']:+.1%} "
            f"± {r['tuning'][s]['target_stats']['ild_gain_se']:.1%})"
            for s in STRATEGIES
        ),
        "",
        f"Run time: {r['seconds']} s.",
        "",
    ]
    return "\n".join(lines)
