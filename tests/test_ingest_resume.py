"""A run killed with SIGKILL at any point and rerun ends exactly like an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

CORPUS = [{"title": f"Town {i}", "text": f"Town {i} is a small town in the county of Shire {i % 3}. "
           f"It was founded in {1800 + i} by the merchant Ann Smith {i}."} for i in range(6)]


def _env(home):
    return {**os.environ, "PLACECELL_HOME": str(home), "PLACECELL_MODEL": "smollm2-135m", "PLACECELL_N_CTX": "2048"}


def _ingest(home, corpus):
    return subprocess.run([sys.executable, "-m", "placecell.cli", "ingest", str(corpus), "--json"],
                          capture_output=True, text=True, env=_env(home), timeout=900)


def _extractions(home) -> int:
    files = list((home / "cache" / "extractions").glob("*.jsonl")) if (home / "cache" / "extractions").exists() else []
    return sum(f.read_text().count("\n") for f in files)


def _state(home):
    from placecell.agents.backends import Backends
    from placecell.settings import Settings

    b = Backends(settings=Settings(home=home))
    ids, vecs = b.get_vectors().all_vectors()
    kg_file = b.latest_kg_path()
    return (sorted(p.id for p in b.get_registry().all()), sorted(ids), json.loads(kg_file.read_text()))


def test_sigkill_at_several_points_then_resume(small_model, tmp_path, write_jsonl):
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS)
    clean = tmp_path / "clean"
    assert _ingest(clean, corpus).returncode == 0

    killed = tmp_path / "killed"
    # Kill early (loading/embedding), then after 1 and 3 extracted passages.
    for wait_for in (None, 1, 3):
        proc = subprocess.Popen([sys.executable, "-m", "placecell.cli", "ingest", str(corpus)], env=_env(killed),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        if wait_for is None:
            time.sleep(3)
        else:
            while _extractions(killed) < wait_for and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _ingest(killed, corpus)
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    assert summary["cached"] >= 3  # earlier work was kept
    assert _extractions(killed) == len(CORPUS)  # each passage extracted once: nothing duplicated
    assert _state(killed) == _state(clean)


def test_ctrl_c_stops_extraction_at_the_next_passage(small_model, tmp_path, write_jsonl):
    """Ctrl-C reaches the main thread only; the extraction loop runs in a LangGraph worker thread
    and used to finish every passage before the CLI could exit."""
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS)
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-m", "placecell.cli", "ingest", str(corpus)], env=_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _extractions(home) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    kept = _extractions(home)
    assert 1 <= kept <= 3 < len(CORPUS)  # the passage in flight may finish; no more start
    summary = json.loads(_ingest(home, corpus).stdout)
    assert summary["cached"] == kept and summary["extracted"] == len(CORPUS) - kept  # resumed, nothing redone


def test_two_ingests_of_one_home_extract_each_passage_once(small_model, tmp_path, write_jsonl):
    """A second ingest started while the first is extracting waits for it, then finds its
    extractions cached; both used to extract every passage (the end state was right, the LLM
    time doubled)."""
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS)
    home = tmp_path / "home"
    first = subprocess.Popen([sys.executable, "-m", "placecell.cli", "ingest", str(corpus), "--json"], env=_env(home),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _extractions(home) < 1 and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    second = _ingest(home, corpus)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "waiting for another ingest of this home" in second.stderr
    assert json.loads(second.stdout)["extracted"] == 0  # all of it was the first one's work
    assert _extractions(home) == len(CORPUS)


def test_exclusive_lock_waits_and_can_be_interrupted(tmp_path):
    from placecell.tools.stores.filelock import exclusive

    lock, waited = tmp_path / "x.lock", []

    def give_up():
        raise KeyboardInterrupt

    with exclusive(lock):
        try:
            with exclusive(lock, on_wait=lambda: waited.append(1), while_waiting=give_up, poll_seconds=0.01):
                raise AssertionError("took a lock that is held")
        except KeyboardInterrupt:
            pass
    assert waited == [1]
    with exclusive(lock, on_wait=lambda: waited.append(2)):
        pass  # released: taken at once
    assert waited == [1]


def test_embedding_goes_in_stored_batches_with_progress_and_stops_between_them(tmp_path, write_jsonl, monkeypatch):
    """All passages were embedded in one call: a 5 MB file showed nothing for 20 minutes, held every
    vector in memory, and an interrupt kept none of them."""
    import pytest

    from placecell.agents.backends import Backends
    from placecell.agents.events import STOP
    from placecell.agents.ingest import nodes
    from placecell.agents.ingest.state import IngestContext
    from placecell.errors import PlacecellError
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.settings import Settings

    monkeypatch.setattr(nodes, "EMBED_BATCH", 2)
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS[:5])
    backends = Backends(settings=Settings(home=tmp_path / "home"))
    embedder = backends.get_embedder()
    real_embed = embedder.embed
    calls = []

    def embed_then_stop(texts):
        calls.append(len(texts))
        STOP.set()  # as Ctrl-C does, while the first batch is embedded
        return real_embed(texts)

    monkeypatch.setattr(embedder, "embed", embed_then_stop)
    graph = build_ingest_graph(backends)
    try:
        with pytest.raises(PlacecellError, match="interrupted after embedding 2 of 5 passages"):
            graph.invoke({"sources": [str(corpus)]}, context=IngestContext(extract=False))
    finally:
        STOP.clear()
    assert calls == [2] and len(backends.get_vectors().ids()) == 2  # the finished batch is stored
    monkeypatch.setattr(embedder, "embed", real_embed)
    events = [c for mode, c in graph.stream({"sources": [str(corpus)]}, context=IngestContext(extract=False),
                                            stream_mode=["custom", "values"]) if mode == "custom"]
    assert [(e["done"], e["total"]) for e in events if e.get("event") == "embed"] == [(2, 3), (3, 3)]
    assert len(backends.get_vectors().ids()) == 5
