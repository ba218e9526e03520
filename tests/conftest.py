"""Shared fixtures. Tests never touch the network or the user's data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Models are big: every test home shares the user's model cache (make test pulls into it).
_DEFAULT_MODELS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "placecell" / "models"
os.environ.setdefault("PLACECELL_MODEL_CACHE", str(_DEFAULT_MODELS))
SMALL_MODEL = "smollm2-135m"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh PLACECELL_HOME per test."""
    h = tmp_path / "home"
    monkeypatch.setenv("PLACECELL_HOME", str(h))
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return h


def small_model_path() -> Path | None:
    from placecell.errors import ModelError
    from placecell.settings import get_settings
    from placecell.tools import models

    try:
        return models.resolve(SMALL_MODEL, get_settings().models_dir)
    except ModelError:
        return None


@pytest.fixture(scope="session")
def small_model() -> Path:
    path = small_model_path()
    if path is None:
        pytest.skip(f"{SMALL_MODEL} is not installed (make test runs: placecell models pull {SMALL_MODEL})")
    return path


@pytest.fixture(scope="session")
def small_llm(small_model):
    """One in-process smollm2 for the whole session (loading costs ~1 s and RAM)."""
    from placecell.tools import models
    from placecell.tools.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM(small_model, n_ctx=2048, n_threads=2, model_id=models.model_id(small_model))


@pytest.fixture
def write_jsonl():
    """write_jsonl(path, records) -> path."""
    import json

    def write(path: Path, records: list[dict]) -> Path:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    """start(cmd_with_{port}, ready_path) -> base URL: runs a server on 127.0.0.1, waits until
    GET ready_path answers 200, stops it after the module. Its output goes to a file: llama.cpp
    logs enough while loading to fill a pipe and block."""
    import subprocess
    import time

    import httpx

    procs = []

    def start(cmd: list[str], ready_path: str, timeout: float = 120.0) -> str:
        port = free_port()
        log = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
        proc = subprocess.Popen([c.format(port=port) for c in cmd], stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"{cmd[0]} exited: {log.read()[-500:]}")
            try:
                if httpx.get(base + ready_path, timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"{' '.join(cmd[:3])} did not start in {timeout:.0f} s")

    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
