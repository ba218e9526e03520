"""Extraction against a remote LLM: the real ingest graph with PLACECELL_LLM_BACKEND=openai and
LLM_CONCURRENCY=3, talking to a real `python -m llama_cpp.server` (smollm2) through a counting
proxy on 127.0.0.1 that records how many requests are in flight at once. The server may well
answer them one at a time; the proxy measures what the client sends."""

from __future__ import annotations

import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

CORPUS = [{"title": f"Town {i}", "text": f"Town {i} is a small town in the county of Shire {i}. "
           f"It was founded in {1800 + i} by the merchant Ann Smith {i}."} for i in range(6)]


class CountingProxy:
    """Forwards every request to `upstream`; counts requests and the most in flight at once."""

    def __init__(self, upstream: str):
        up = urlsplit(upstream)
        self.requests, self.in_flight, self.max_in_flight = 0, 0, 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    proxy.requests += 1
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    conn = http.client.HTTPConnection(up.hostname, up.port, timeout=900)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                finally:
                    with lock:
                        proxy.in_flight -= 1
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def proxy(small_model, local_server):
    base = local_server([sys.executable, "-m", "llama_cpp.server", "--model", str(small_model), "--host", "127.0.0.1",
                         "--port", "{port}", "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "smol",
                         "--verbose", "False"], "/v1/models")
    p = CountingProxy(base)
    yield p
    p.close()


def test_concurrent_extraction_through_the_ingest_graph(proxy, tmp_path, write_jsonl):
    from placecell.agents.backends import Backends
    from placecell.agents.ingest.extract import SCHEMA_VERSION
    from placecell.agents.ingest.state import IngestContext
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.settings import Settings
    from placecell.tools.stores.kg import KnowledgeGraph

    corpus = write_jsonl(tmp_path / "towns.jsonl", CORPUS)
    settings = Settings(home=tmp_path / "home", llm_backend="openai", llm_base_url=proxy.url + "/v1",
                        llm_model="smol", llm_schema_format="json_object", llm_concurrency=3, llm_timeout=900)
    backends = Backends(settings=settings)
    graph = build_ingest_graph(backends)
    out = graph.invoke({"sources": [str(corpus)]}, context=IngestContext())
    assert out["new_passages"] == len(CORPUS) and out["extracted"] == len(CORPUS) and out["cached"] == 0
    assert 1 < proxy.max_in_flight <= 3  # several requests at once, never more than llm_concurrency
    assert proxy.requests >= len(CORPUS)  # one per passage (a second try on an invalid answer)

    # every passage has a durable record; the KG holds exactly the records' triples
    llm = backends.get_llm()
    cache = backends.extraction_cache(llm.model_id, SCHEMA_VERSION)
    ids = [p.id for p in backends.get_registry().all()]
    assert all(pid in cache for pid in ids)
    assert out["extraction_failed"] == sum(cache.get(pid)["failed"] for pid in ids)
    kg = KnowledgeGraph.load(backends.kg_path(llm.model_id))
    expected = KnowledgeGraph()
    for pid in ids:
        expected.add_passage(pid, cache.get(pid)["triples"])
    assert kg.triples() and sorted(kg.triples()) == sorted(expected.triples())
    assert out["kg"]["triples"] == kg.n_triples()
    # a remote model's files are named safely (no ':' or '/' from its URL) and found as the latest KG
    assert backends.latest_kg_path() == backends.kg_path(llm.model_id)
    assert ":" not in backends.kg_path(llm.model_id).name and cache.path.parent.name == "extractions"
    lines = cache.path.read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(ids)  # each passage written once

    before = proxy.requests
    again = graph.invoke({"sources": [str(corpus)]}, context=IngestContext())
    assert again["extracted"] == 0 and again["cached"] == len(CORPUS)  # resumable: no LLM work twice
    assert proxy.requests == before and again["kg"] == out["kg"]


def test_model_keys_are_file_safe_and_keep_gguf_names():
    from placecell.agents.backends import model_key

    sha = "1d9614638d18024d" + "0" * 48
    assert model_key(sha) == "1d9614638d18024d"  # committed eval caches keep their names
    a, b = model_key("openai:http://127.0.0.1:8080/v1:local"), model_key("openai:http://127.0.0.1:8081/v1:local")
    assert a.startswith("openai-") and a != b and not set(a) & set(":/")


class SilentEndpoint:
    """An endpoint that takes every request and answers none within a test (a server busy with
    a long answer); `arrived` is set by the first request."""

    def __init__(self):
        import time

        self.arrived = arrived = threading.Event()

        class Silent(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived.set()
                time.sleep(120)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _remote_env(tmp_path, endpoint):
    import os

    return {**os.environ, "PLACECELL_HOME": str(tmp_path / "home"), "PLACECELL_LLM_BACKEND": "openai",
            "PLACECELL_LLM_BASE_URL": endpoint.url, "PLACECELL_LLM_TIMEOUT": "100", "PLACECELL_LLM_CONCURRENCY": "2",
            "NO_COLOR": "1"}


def test_ctrl_c_does_not_wait_for_a_remote_call_in_flight(tmp_path, write_jsonl):
    """A remote endpoint that never answers held Ctrl-C for PLACECELL_LLM_TIMEOUT (300 s by
    default): the extraction thread waits in the HTTP call, and LangGraph waits for it."""
    import signal
    import subprocess

    endpoint = SilentEndpoint()
    env = _remote_env(tmp_path, endpoint)
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS[:2])
    proc = subprocess.Popen([sys.executable, "-m", "placecell.cli", "ingest", str(corpus)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert endpoint.arrived.wait(120), "no extraction request reached the endpoint"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)  # not the 100 s of the timeout, nor the 120 s of the server
    finally:
        proc.kill()
        endpoint.close()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    passages = json.loads(subprocess.run([sys.executable, "-m", "placecell.cli", "status", "--json"], env=env,
                                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout)["passages"]
    assert passages == 2  # what was stored before the interrupt stays


def test_in_chat_a_first_ctrl_c_says_it_is_stopping_and_a_second_quits(tmp_path):
    import signal
    import subprocess
    import time

    endpoint = SilentEndpoint()
    (tmp_path / "notes.md").write_text("The Kettle River feeds Osprey Lake.\n")
    env = _remote_env(tmp_path, endpoint)
    subprocess.run([sys.executable, "-m", "placecell.cli", "ingest", str(tmp_path / "notes.md"), "--no-extract"],
                   env=env, capture_output=True, check=True, cwd=tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "placecell.cli", "chat", "--router", "keywords", "--method", "dense"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        proc.stdin.write("What feeds Osprey Lake?\n")
        proc.stdin.flush()
        assert endpoint.arrived.wait(120), "no request reached the endpoint"
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # the session is still there after the first Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        endpoint.close()
    assert "(stopping; Ctrl-C again to quit)" in err and err.strip().splitlines()[-1] == "interrupted"
    assert proc.returncode == 130 and "Traceback" not in err
