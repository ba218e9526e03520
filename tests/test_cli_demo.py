"""`placecell demo` (what `make demo` runs): it ingests the bundled corpus and answers its question
with the same settings as `placecell ask` (QAContext's defaults)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from placecell.agents.qa.state import QAContext


def run_cli(args) -> int:
    from placecell.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return exit_info.value.code


def test_demo_asks_with_the_product_defaults(tmp_path, monkeypatch):
    from placecell.cli import docs

    ingested, asked = [], []
    monkeypatch.setattr(docs, "ingest", lambda paths, **kw: ingested.append((paths, kw)))
    monkeypatch.setattr(docs, "answer_question", lambda question, ctx, **kw: asked.append((question, ctx, kw)))
    assert run_cli(["demo", "--home", str(tmp_path / "home"), "--model", "smollm2-135m"]) == 0
    (paths, ingest_kw), = ingested
    assert paths[0].endswith("corpus.jsonl") and ingest_kw["no_extract"] is False
    (question, ctx, kw), = asked
    assert question == docs.DEMO_QUESTION
    assert ctx == QAContext()  # every field a real value (no typer defaults leaking in), as `ask` has them
    assert kw == {"as_json": False, "model": "smollm2-135m", "home": str(tmp_path / "home")}


@pytest.mark.slow
def test_demo_end_to_end_with_the_smallest_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLACECELL_")}
    env.update(PLACECELL_MODEL_CACHE=os.environ["PLACECELL_MODEL_CACHE"], PLACECELL_N_THREADS="1")
    proc = subprocess.run([str(Path(sys.executable).with_name("placecell")), "demo", "--model", "smollm2-135m", "--home", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Q: Longleat Safari Park" in proc.stdout and "[1] " in proc.stdout
