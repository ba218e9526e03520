"""`placecell eval ctr`, `placecell eval carousels` and `placecell train ctr`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from placecell.cli import eval_app, train_app
from placecell.cli.common import writable_dir
from placecell.errors import InputError

REPORTS = Path("evals") / "reports"


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _at_least(value: int, minimum: int, flag: str) -> None:
    if value < minimum:
        raise InputError(f"{flag} must be at least {minimum}, not {value}")


def _needs_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError('training needs PyTorch: pip install "placecell[train]" (pins the CPU build torch==2.13.0)') from exc


@eval_app.command("ctr")
def eval_ctr(
    data: Optional[str] = typer.Option(None, "--data", help="ipinyou | goodbooks_399 | movielens"),
    out: Optional[Path] = typer.Option(None, "--out", help="report directory (default evals/reports/ctr_<data>)"),
    train: Optional[Path] = typer.Option(None, "--train", help="training file (instead of --data)"),
    test: Optional[Path] = typer.Option(None, "--test", help="test file, same format as --train"),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | libfm | criteo-tsv (with --train/--test)"),
    label: Optional[str] = typer.Option(None, "--label", help="label column for --format csv"),
    featindex: Optional[Path] = typer.Option(None, "--featindex", help="feature index for --format libfm"),
    seeds: int = typer.Option(3, "--seeds", help="number of seeds (0..n-1)"),
    epochs: int = typer.Option(20, "--epochs", help="maximum SGCTR / FM epochs (early stopping on validation)"),
    threads: int = typer.Option(1, "--threads", help="CPU threads for torch and LightGBM"),
    linear_init: str = typer.Option("auto", "--linear-init", help="auto | zero | lr: SGCTR's first-order weights start "
                                    "at zero or at an L2 logistic regression; auto picks lr when either class has "
                                    "few training rows"),
) -> None:
    """SGCTR (K = 0..3) vs LR, FM, LightGBM: AUC and log-loss, clean and with 20 % corrupted test cells."""
    from placecell.evals.ctr import DATASETS, run_ctr_eval

    files = None
    _at_least(seeds, 1, "--seeds")
    _at_least(epochs, 1, "--epochs")
    _at_least(threads, 1, "--threads")
    if train or test:
        if not (train and test and fmt):
            raise InputError("--train, --test and --format go together")
        if data:  # the report would carry the bundled data's name (and overwrite its default folder)
            raise InputError("--data and --train/--test are alternatives; pass one of them")
        files = (str(train), str(test), fmt, label, str(featindex) if featindex else None)
    elif data not in DATASETS:
        raise InputError(f"--data must be one of {', '.join(DATASETS)} (or pass --train/--test/--format)")
    _needs_torch()
    name = data or train.stem
    out_dir = writable_dir(out or REPORTS / f"ctr_{name}")
    results = run_ctr_eval(data, files, out_dir, seeds, epochs, threads, say=_say, linear_init=linear_init)
    typer.echo(f"wrote {out_dir / 'results.json'} and {out_dir / 'report.md'}")
    for model, m in results["clean"].items():
        typer.echo(f"{model:10s} clean AUC {m['auc']:.4f} ± {m['auc_std']:.4f}  corrupted AUC {results['corrupted'][model]['auc']:.4f}")


@eval_app.command("carousels")
def eval_carousels(
    data: Optional[str] = typer.Option(None, "--data", help="goodbooks_399 | goodbooks_classics | movielens"),
    out: Optional[Path] = typer.Option(None, "--out", help="report directory (default evals/reports/carousels_<data>)"),
    interactions: Optional[Path] = typer.Option(None, "--interactions", help="ratings user_id,book_id[,rating]"),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="held-out ratings, same layout"),
    items: Optional[Path] = typer.Option(None, "--items", help="books.csv"),
    item_tags: Optional[Path] = typer.Option(None, "--item-tags", help="book_tags.csv (goodreads_book_id,tag_id,count)"),
    tag_names: Optional[Path] = typer.Option(None, "--tag-names", help="tags.csv (tag_id,tag_name)"),
    seeds: int = typer.Option(3, "--seeds", help="bootstrap samples of test users"),
    max_users: int = typer.Option(2000, "--max-users", help="test users per seed"),
) -> None:
    """Carousel strategies vs plain CF: precision/recall/nDCG@10, ILD, coverage, novelty, serendipity, Gini."""
    from placecell.evals.carousels import DATASETS, run_carousel_eval

    given = [interactions, holdout, items, item_tags, tag_names]
    files = None
    _at_least(seeds, 1, "--seeds")
    _at_least(max_users, 1, "--max-users")
    if any(given):
        if not all(given):
            raise InputError("--interactions, --holdout, --items, --item-tags and --tag-names go together")
        if data:
            raise InputError("--data and the five files are alternatives; pass one of them")
        files = tuple(str(p) for p in given)
    elif data not in DATASETS:
        raise InputError(f"--data must be one of {', '.join(DATASETS)} (or pass the five files)")
    name = data or interactions.stem
    out_dir = writable_dir(out or REPORTS / f"carousels_{name}")
    results = run_carousel_eval(data, files, out_dir, seeds, max_users, say=_say)
    typer.echo(f"wrote {out_dir / 'results.json'} and {out_dir / 'report.md'}")
    for strategy, m in results["strategies"].items():
        typer.echo(f"{strategy:12s} nDCG@10 {m['ndcg@10']:.4f}  ILD {m['ild']:.3f}  novelty {m['novelty']:.2f}  coverage {m['coverage']:.3f}")
    t = results["target"]
    typer.echo(f"target (combined ILD +30 % at <= 5 % nDCG loss): ILD {t['ild_gain']:+.1%}, nDCG {-t['ndcg_loss']:+.1%} -> {'met' if t['met'] else 'not met'}")


@train_app.command("ctr")
def train_ctr(
    data: str = typer.Option(..., "--data", help="a CTR file, or goodbooks_399 / movielens for the demo catalogs"),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | libfm | criteo-tsv"),
    label: Optional[str] = typer.Option(None, "--label", help="label column for --format csv"),
    featindex: Optional[Path] = typer.Option(None, "--featindex", help="feature index for --format libfm"),
    out: Path = typer.Option(Path("ctr_model"), "--out", help="directory for <name>.onnx, <name>.json, <name>_training.md"),
    name: Optional[str] = typer.Option(None, "--name", help="artefact name (default: the data name)"),
    epochs: int = typer.Option(20, "--epochs"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads"),
    linear_init: str = typer.Option("auto", "--linear-init", help="auto | zero | lr: start the first-order weights from "
                                    "an L2 logistic regression (lr) or zero; auto picks lr when either class has few "
                                    "training rows (see RESULTS_recsys.md)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a model of the same --name in --out"),
) -> None:
    """Train SGCTR on your data, export it to ONNX and write a training report."""
    from placecell.tools.ctr.train import LINEAR_INITS
    from placecell.tools.ctr.training_report import train_and_export

    if linear_init not in LINEAR_INITS:
        raise InputError(f"--linear-init must be one of {', '.join(LINEAR_INITS)}, not {linear_init!r}")
    _at_least(epochs, 1, "--epochs")
    _at_least(threads, 1, "--threads")
    artefact = name or Path(data).name.split(".")[0]
    if not artefact or artefact.startswith(".") or re.search(r"[/\\\x00]", artefact):  # a file name inside --out, not a path
        raise InputError(f"--name {artefact!r}: a file name inside --out, without '/' and not starting with '.'")
    writable_dir(out)
    existing = [p for p in (Path(out) / f"{artefact}.onnx", Path(out) / f"{artefact}.json") if p.exists()]
    if existing and not overwrite:  # a trained model (the shipped ones among them) is not replaced by accident
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace it, or choose another --out or --name")
    _needs_torch()
    paths = train_and_export(data, fmt, label, str(featindex) if featindex else None, out, artefact, epochs, seed, threads, say=_say,
                             linear_init=linear_init)
    for kind, path in paths.items():
        typer.echo(f"{kind}: {path}")
    fusion = Path(out) / f"{artefact}_fusion.json"
    if fusion.exists():  # keyed by the old model's hash: the recommend graph would fall back to fixed weights
        typer.echo(f"note: {fusion} was fitted for the previous model; refit it with "
                   f"`python -m placecell.evals.recommend_weights --data {artefact} --out DIR --write`")
