"""Small helpers shared by the CTR and carousel reports: json writing and markdown tables."""

from __future__ import annotations

import json
import math
from pathlib import Path


def machine_line() -> str:
    """Architecture, core count and CPU model: the machine line of every eval report."""
    import platform

    from placecell.evals.multihop_report import cpu_model, nproc

    return f"{platform.machine()}, {nproc()} CPUs (`nproc`), {cpu_model()}"


def provenance(command: list[str]) -> dict:
    """What made a report: the command (rebuilt from the eval's arguments), the machine and the date."""
    import datetime
    import shlex

    return {"command": shlex.join(command), "machine": machine_line(), "date": datetime.date.today().isoformat()}


def provenance_lines(r: dict) -> list[str]:
    p = r.get("provenance")
    if not p:
        return []
    return [f"- Command: `{p['command']}`.", f"- Machine: {p['machine']}; run on {p['date']}."]


def write_results(results: dict, out_dir: Path, markdown: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown, encoding="utf-8")


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def met(flag: bool) -> str:
    return "**met**" if flag else "**not met**"


def summary_markdown(reports: Path) -> str:
    """RESULTS_recsys.md body from every ctr_* and carousels_* results.json under `reports`."""
    import json

    lines = ["# Recsys tool results (issue 4)", "", "Generated from `evals/reports/ctr_*/results.json` and "
             "`evals/reports/carousels_*/results.json` by `placecell.evals.recsys_report.summary_markdown`.", ""]
    lines += ["## CTR: AUC mean ± std over seeds (clean / 20 % corrupted test)", ""]
    ctr_rows = []
    for path in sorted(reports.glob("ctr_*/results.json")):
        r = json.loads(path.read_text())
        t = r["targets"]
        for model in r["clean"]:
            c, n = r["clean"][model], r["corrupted"][model]
            ctr_rows.append([r["data"], model, mean_std(c["auc"], c["auc_std"]), mean_std(c["logloss"], c["logloss_std"]),
                             mean_std(n["auc"], n["auc_std"])])
        ctr_rows.append([r["data"], "**targets**", f"best-K SGCTR >= LightGBM: {met(t['sgctr_best_ge_lightgbm'])}",
                         f">= LR: {met(t['sgctr_best_ge_lr'])}", f"K>=1 beats K=0 corrupted: {met(t['corrupted_k_ge1_beats_k0'])} "
                         f"({t['corrupted_seeds_where_some_k_ge1_beats_k0']} seeds)"])
    lines += [table(["data", "model", "AUC clean", "log-loss clean", "AUC corrupted"], ctr_rows), ""]
    lines += ["## Carousels: page metrics (mean over bootstrap seeds of test users)", ""]
    car_rows = []
    for path in sorted(reports.glob("carousels_*/results.json")):
        r = json.loads(path.read_text())
        for name, m in r["strategies"].items():
            car_rows.append([r["data"], name] + [f"{m[k]:.3f}" for k in ("precision@10", "recall@10", "ndcg@10", "ild", "coverage", "novelty", "serendipity", "gini")])
        t = r["target"]
        car_rows.append([r["data"], "**target**", f"ILD {t['ild_gain']:+.1%}", f"nDCG {-t['ndcg_loss']:+.1%}", met(t["met"]),
                         "per seed: " + ", ".join("met" if s["met"] else "not met" for s in t["per_seed"]), "", "", "", ""])
    lines += [table(["data", "strategy", "P@10", "R@10", "nDCG@10", "ILD", "coverage", "novelty", "serendipity", "gini"], car_rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("evals")
    (root / "RESULTS_recsys.md").write_text(summary_markdown(root / "reports"), encoding="utf-8")
