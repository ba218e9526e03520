"""Passage vectors in a Chroma server (`chroma run` on 127.0.0.1) through PLACECELL_CHROMA_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from placecell.agents.backends import Backends
from placecell.errors import PlacecellError
from placecell.settings import Settings
from placecell.tools.stores.vectors import VectorStore


@pytest.fixture(scope="module")
def chroma_url(local_server, tmp_path_factory):
    chroma = Path(sys.executable).parent / "chroma"
    return local_server([str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma")), "--host", "127.0.0.1",
                         "--port", "{port}"], "/api/v2/heartbeat", timeout=60)


def test_ingest_and_ask_against_a_chroma_server(chroma_url, home, tmp_path, write_jsonl):
    corpus = write_jsonl(tmp_path / "c.jsonl", [
        {"title": "Paris", "text": "Paris is the capital of France."},
        {"title": "Bananas", "text": "Bananas are a yellow fruit."}])
    env = {**os.environ, "PLACECELL_CHROMA_URL": chroma_url}
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "ingest", str(corpus), "--no-extract"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (home / "chroma").exists()  # nothing went to the embedded store
    b = Backends(settings=Settings(chroma_url=chroma_url))
    assert b.get_vectors().count() == 2
    best = b.get_vectors().query(b.get_embedder().embed_one("What is the capital of France?"), 1)
    assert b.get_registry().get(best[0][0]).title == "Paris"


def test_unreachable_server_is_one_line(home):
    with pytest.raises(PlacecellError, match="unavailable"):
        from placecell.tools.embed import get_embedder

        VectorStore(get_embedder(), url="http://127.0.0.1:9")
