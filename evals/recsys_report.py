"""Small helpers shared by the CTR and carousel reports: json writing and markdown tables."""

from __future__ import annotations

import json
import math
from pathlib import Path


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
