"""Shared fixtures. Tests never touch the network or the user's data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/support.py

# Models are big: every test home shares the user's model cache (make test pulls into it).
_DEFAULT_MODELS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "placecell" / "models"
os.environ.setdefault("PLACECELL_MODEL_CACHE", str(_DEFAULT_MODELS))
SMALL_MODEL = "smollm2-135m"


@pytest.fixture(autouse=True)
def cli_exports_restored():
    """The CLI exports --home and --model to the process environment (`cli.common.settings_from`):
    one test's choice must not leak into the next."""
    saved = {name: os.environ.get(name) for name in ("PLACECELL_HOME", "PLACECELL_MODEL")}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory, small_model):
    """`langgraph dev` serving langgraph.json's four graphs, offline (no tracing, no CLI analytics,
    no browser, no reload), over an empty temporary PLACECELL_HOME and smollm2-135m. Yields
    SimpleNamespace(url, home, log). One server per session (tests/test_dev_server.py and the
    README's RemoteGraph example share it), stopped with its whole process group at the end.

    It runs in a temporary folder on a copy of langgraph.json whose graph paths are made absolute
    and whose `env` (the repository's `.env`, which would override these variables) is dropped:
    the server keeps its threads in `.langgraph_api/` and pydantic reads `.env` of its working
    directory, and neither may touch the repository or the user's data."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    import httpx

    root = Path(__file__).resolve().parent.parent
    cli = Path(sys.executable).parent / "langgraph"
    if not cli.exists():
        cli = Path(shutil.which("langgraph") or "langgraph")
    work = tmp_path_factory.mktemp("devserver")
    home = work / "home"
    config = work / "langgraph.json"
    spec = json.loads((root / "langgraph.json").read_text())
    spec.pop("env", None)
    spec["graphs"] = {name: str(root / target) for name, target in spec["graphs"].items()}
    config.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_CLOUD_LICENSE_KEY",
                        "LANGSMITH_CONTROL_PLANE_API_KEY") and not k.startswith("PLACECELL_")}
    env.update(PLACECELL_HOME=str(home), PLACECELL_MODEL=SMALL_MODEL, PLACECELL_LLM_BACKEND="llamacpp",
               PLACECELL_MODEL_CACHE=os.environ["PLACECELL_MODEL_CACHE"], PLACECELL_N_THREADS="1",
               LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false", LANGGRAPH_CLI_NO_ANALYTICS="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    log = open(log_path, "w+")  # llama.cpp logs enough to fill a pipe and block
    proc = subprocess.Popen([str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port",
                             str(port), "--config", str(config)], cwd=work, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def tail() -> str:
        log.flush()
        return log_path.read_text(errors="replace")[-3000:]

    try:
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{tail()}")
            try:
                if httpx.get(url + "/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"langgraph dev did not answer /ok in 180 s:\n{tail()}")
            time.sleep(0.3)
        yield SimpleNamespace(url=url, home=home, log=log_path)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
