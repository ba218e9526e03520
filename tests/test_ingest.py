"""The ingest graph and the first `ask`, through the real CLI, on smollm2-135m."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CORPUS = [
    {"title": "Longleat", "text": "Longleat is an English stately home, the seat of the Marquesses of Bath. Longleat Safari Park was the first drive-through safari park outside Africa."},
    {"title": "Alexander Thynn", "text": "Alexander Thynn, 7th Marquess of Bath, was styled Viscount Weymouth between 1946 and 1992. He lived at Longleat."},
    {"title": "Gary Groth", "text": "Gary Groth is an American comic book editor and co-founder of Fantagraphics Books."},
]


def run(args, home, model="smollm2-135m", check=False):
    env = {**os.environ, "PLACECELL_HOME": str(home), "PLACECELL_MODEL": model, "PLACECELL_N_CTX": "2048"}
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def corpus(tmp_path, write_jsonl):
    return write_jsonl(tmp_path / "corpus.jsonl", CORPUS)


def test_ingest_then_rerun_does_no_llm_work(small_model, home, corpus):
    first = json.loads(run(["ingest", str(corpus), "--json"], home, check=True).stdout)
    assert first["passages"] == 3 and first["new_passages"] == 3 and first["extracted"] == 3
    assert first["kg"]["entities"] > 0 and first["kg"]["triples"] > 0
    again = json.loads(run(["ingest", str(corpus), "--json"], home, check=True).stdout)
    assert again["new_passages"] == 0 and again["extracted"] == 0 and again["cached"] == 3
    assert again["kg"] == first["kg"]
    status = json.loads(run(["status", "--json"], home, check=True).stdout)
    assert status["passages"] == 3 and status["triples"] == first["kg"]["triples"] and status["store_bytes"] > 0
    assert status["knowledge_graphs"] == 1


def test_an_edited_corpus_is_extracted_once_more_and_its_old_record_leaves_the_kg(small_model, home, corpus, write_jsonl):
    first = json.loads(run(["ingest", str(corpus), "--json"], home, check=True).stdout)
    kg_file = next((home / "kg").glob("*.json"))
    old_ids = set(json.loads(kg_file.read_text())["passages"])
    edited = [*CORPUS[:2], {"title": "Gary Groth", "text": "Gary Groth is an American editor who co-founded The Comics Journal."}]
    write_jsonl(corpus, edited)
    again = json.loads(run(["ingest", str(corpus), "--json"], home, check=True).stdout)
    assert again["new_passages"] == 1 and again["removed_passages"] == 1 and again["passages"] == 3
    assert again["extracted"] == 1 and again["cached"] == 2  # the two unchanged records keep their extraction
    new_ids = set(json.loads(kg_file.read_text())["passages"])
    assert len(old_ids - new_ids) == 1 and len(new_ids - old_ids) <= 1 and first["kg"]["triples"] > 0
    assert json.loads(run(["status", "--json"], home, check=True).stdout)["documents"] == 1


def test_ask_json_shape_and_citations(small_model, home, corpus):
    run(["ingest", str(corpus), "--no-extract"], home, check=True)
    out = json.loads(run(["ask", "Who co-founded Fantagraphics Books?", "--method", "dense", "--json",
                          "--top-k", "2"], home, check=True).stdout)
    assert set(out) == {"answer", "citations", "paths", "notes", "usage"}
    assert out["citations"][0]["title"] == "Gary Groth" and len(out["citations"]) == 2
    assert out["paths"] == []
    assert out["usage"]["llm_calls"] == 1 and out["usage"]["completion_tokens"] > 0


def test_bad_inputs_get_one_line_messages(home, tmp_path, corpus):
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02")
    proc = run(["ingest", str(binary), "--no-extract"], home)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: nothing was ingested: {binary}: skipped (binary file)"]
    assert proc.stdout == ""
    proc = run(["ingest", str(binary), "--no-extract", "--json"], home)  # scripts still get the summary
    assert proc.returncode == 2 and json.loads(proc.stdout)["passages"] == 0
    assert "error: nothing was ingested" in proc.stderr and "Traceback" not in proc.stderr

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(CORPUS[0]) + "\n{broken\n" + json.dumps(CORPUS[2]) + "\n")
    proc = run(["ingest", str(mixed), "--no-extract", "--json", str(tmp_path / "missing.md")], home)
    # the good records are stored, and the exit says that not everything was (as cp does)
    assert proc.returncode == 2 and json.loads(proc.stdout)["passages"] == 2
    assert "skipped 1 bad JSONL line(s): 2" in proc.stderr and "missing.md: not found" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: 2 input problem(s), see the warnings; everything else was stored"

    # The store survives a later bad run untouched.
    proc = run(["ingest", str(tmp_path / "nope.md"), "--no-extract"], home)
    assert proc.returncode == 2 and "not found" in proc.stderr
    assert json.loads(run(["status", "--json"], home, check=True).stdout)["passages"] == 2

    # A mistyped path with extraction on: nothing new, so no extraction of the stored passages
    # either (it used to extract the whole store with this run's model, then say nothing was ingested).
    proc = run(["ingest", str(tmp_path / "nope.md"), "--json"], home)
    assert proc.returncode == 2 and not json.loads(proc.stdout)["extracted"]
    assert not (home / "kg").exists() and not (home / "cache" / "extractions").exists()


def test_ask_without_data_and_with_bad_model(home, tmp_path):
    proc = run(["ask", "anything?", "--method", "dense"], home)
    assert proc.returncode == 4 and proc.stderr.strip() == "error: no documents ingested yet (run: placecell ingest PATH)"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    doc = tmp_path / "d.md"
    doc.write_text("Some text about a thing.")
    run(["ingest", str(doc), "--no-extract"], home, check=True)
    proc = run(["ask", "what?", "--method", "dense"], home, model=str(bad))
    assert proc.returncode == 3 and proc.stderr.startswith("error: could not load model")
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run(["ask", "what?", "--method", "magic"], home)
    assert proc.returncode == 2 and "unknown method 'magic'" in proc.stderr
    proc = run(["ask", "what?", "--path-probe", "maybe"], home)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown path probe 'maybe' (known: each, list, none)"
