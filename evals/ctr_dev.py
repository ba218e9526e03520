"""CTR dev harness: compare SGCTR settings on a split carved out of the eval's *training* part.

`placecell eval ctr` reports on the test split; choosing settings there would tune on the test. This
harness reproduces the choices written up in `RESULTS_recsys.md`: for the catalogs the dev test is
each user's last 20 % of the training rows (mirroring the per-user temporal test split; the eval's
random validation share reads 0.01-0.03 higher and ranked settings differently), for iPinYou a
stratified 20 % of the seed's training rows. Test rows are never read.

    python -m placecell.evals.ctr_dev --data movielens --seeds 0,1,2,3,4 --set dim=32 --set batch_size=256
    python -m placecell.evals.ctr_dev --data movielens --seeds 0,1,2 --baselines   # LR, FM, LightGBM too

Prints one JSON line per seed (AUC on the clean and corrupted dev test, K = 0..3) and a summary,
and appends the lines to `--out FILE` when given. With `--compare FILE` it also prints paired
per-seed differences (best K of this run minus the best K of the earlier run, same seeds).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np

from placecell.errors import InputError, PlacecellError
from placecell.evals.ctr import DATASETS, PASSES, CTRSplit, load_named, run_seed
from placecell.tools.ctr.data import stratified_split


def dev_split(name: str, seed: int) -> CTRSplit:
    """The eval's training part for `seed`, split again into dev-train and dev-test."""
    split = load_named(name, seed)
    if name == "ipinyou":
        train_idx, test_idx = stratified_split(split.train.labels, 0.2, np.random.default_rng(seed + 2000))
        note = "stratified 20 % of the seed's training rows"
    else:
        from placecell.tools.recsys_data import split_by_user

        # The training part keeps the catalog's row order (time order per user), so the same split
        # function gives each user's last 20 % of training rows.
        mask = split_by_user(split.train.values[:, 0])
        train_idx, test_idx = np.flatnonzero(~mask), np.flatnonzero(mask)
        note = "each user's last 20 % of the training rows"
    return CTRSplit(f"{name}_dev", split.train.take(train_idx), split.train.take(test_idx), note)


def parse_setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"--set wants KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word, e.g. stop_on=logloss


def best_k_auc(row: dict, part: str = "clean") -> float:
    return max(row[part][f"sgctr_k{k}"]["auc"] for k in PASSES)


def summary_lines(rows: list[dict], earlier: list[dict] | None = None) -> list[str]:
    lines = [f"{len(rows)} seeds ({', '.join(str(r['seed']) for r in rows)}), settings {rows[0]['settings']}, "
             f"{rows[0].get('train_rows', '?')} training rows with {rows[0].get('train_clicks', '?')} clicks"]
    for m in rows[0]["clean"]:
        aucs = [r["clean"][m]["auc"] for r in rows]
        lines.append(f"  {m:10s} dev AUC {np.mean(aucs):.4f} ± {np.std(aucs):.4f}  corrupted "
                     f"{np.mean([r['corrupted'][m]['auc'] for r in rows]):.4f}")
    best = [best_k_auc(r) for r in rows]
    lines.append(f"  {'sgctr best':10s} dev AUC {np.mean(best):.4f} (best K per seed)")
    comparisons = [(m, [b - r["clean"][m]["auc"] for b, r in zip(best, rows)])
                   for m in ("lr", "lightgbm") if m in rows[0]["clean"]]
    if earlier:
        by_seed = {r["seed"]: r for r in earlier}
        comparisons.append(("earlier run", [best_k_auc(r) - best_k_auc(by_seed[r["seed"]]) for r in rows if r["seed"] in by_seed]))
    for other, diffs in comparisons:
        if len(diffs) < 2:
            continue
        diffs = np.array(diffs)
        lines.append(f"  paired vs {other}: {diffs.mean():+.4f} ± {diffs.std(ddof=1) / np.sqrt(len(diffs)):.4f} (s.e.), "
                     f"ahead in {(diffs > 0).sum()}/{len(diffs)} seeds")
    return lines


def subsample(split: CTRSplit, share: float, seed: int) -> CTRSplit:
    """Keep a stratified `share` of the dev-train rows (the dev test is unchanged): how a setting
    behaves with less data, e.g. where the logistic-regression start stops paying."""
    if not 0 < share <= 1:
        raise InputError(f"--subsample must be in (0, 1], got {share}")
    if share == 1:
        return split
    _, kept = stratified_split(split.train.labels, share, np.random.default_rng(seed + 3000))
    return CTRSplit(split.name, split.train.take(np.sort(kept)), split.test, f"{split.note}; {share:g} of its training rows")


def run(data: str, seeds: list[int], settings: dict, baselines: bool, epochs: int = 20, threads: int = 1,
        say=lambda m: None, share: float = 1.0) -> list[dict]:
    rows = []
    for seed in seeds:
        split = subsample(dev_split(data, seed), share, seed)
        out = run_seed(split, seed, epochs, threads, say, overrides=settings, baselines=baselines)
        rows.append({"data": data, "seed": seed, "settings": settings, "dev_split": split.note,
                     "train_rows": len(split.train), "train_clicks": int(split.train.labels.sum()),
                     "clean": out["clean"], "corrupted": out["corrupted"],
                     "sgctr_default_k": out["sgctr_default_k"], "sgctr_linear_init": out["sgctr_linear_init"],
                     "seconds": out["seconds"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, choices=DATASETS)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an SGCTRConfig or TrainConfig field, e.g. dim=32, mlp_hidden=(256,128), stop_on=logloss")
    parser.add_argument("--baselines", action="store_true", help="also train LR, FM and LightGBM on the dev split")
    parser.add_argument("--subsample", type=float, default=1.0, metavar="SHARE",
                        help="train on a stratified share of the dev-train rows (the dev test is unchanged)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="append the per-seed JSON lines to this file")
    parser.add_argument("--compare", type=Path, help="an earlier --out file: paired differences by seed")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        settings = dict(parse_setting(s) for s in args.set)
        earlier = None
        if args.compare:
            if not args.compare.is_file():
                raise InputError(f"--compare file not found: {args.compare}")
            earlier = [json.loads(line) for line in args.compare.read_text().splitlines() if line.strip()]
        rows = run(args.data, seeds, settings, args.baselines, args.epochs, args.threads, share=args.subsample)
    except (PlacecellError, ValueError, TypeError) as exc:  # TypeError: a setting of the wrong type
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        print(json.dumps(row))
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    print("\n".join(summary_lines(rows, earlier)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
