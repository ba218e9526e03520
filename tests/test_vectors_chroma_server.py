"""Passage vectors in a Chroma server (`chroma run` on 127.0.0.1) through PLACECELL_CHROMA_URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from placecell.agents.backends import Backends
from placecell.errors import PlacecellError
from placecell.settings import Settings
from placecell.tools.stores.vectors import VectorStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    chroma = Path(sys.executable).parent / "chroma"
    port = _free_port()
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path_factory.mktemp("chroma")), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma run did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


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

        VectorStore(get_embedder(), url=f"http://127.0.0.1:{_free_port()}")
