"""The README's Python examples (the blocks after `<!-- example: NAME -->`), run as a user runs
them: each in a fresh interpreter, in an empty folder, with settings from the environment. The
in-process ones use a PLACECELL_HOME holding the demo corpus; the SDK and RemoteGraph ones call
`langgraph dev` (the `dev_server` fixture) after the corpus is ingested through its ingest graph.
A trailer appended to each example writes its result variables (`out`, ...) for the asserts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import placecell

ROOT = Path(placecell.__file__).parent
CORPUS = ROOT / "tools" / "assets" / "demo" / "corpus.jsonl"
EXAMPLE = re.compile(r"^<!-- example: (\w+) -->\n```python\n(.*?)\n```$", re.S | re.M)
RESULTS = ("out", "steps", "app_out", "turn")
TRAILER = f"""

import json as _json, os as _os
with open(_os.environ["README_EXAMPLE_RESULT"], "w") as _f:
    _json.dump({{_k: _v for _k, _v in dict(globals()).items() if _k in {RESULTS!r}}}, _f, default=str)
"""


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def corpus_titles() -> set[str]:
    return {json.loads(line)["title"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line}


def example_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLACECELL_", "LANGSMITH_", "LANGCHAIN_"))}
    env.update(PLACECELL_HOME=str(home), PLACECELL_MODEL="smollm2-135m", PLACECELL_N_THREADS="1",
               PLACECELL_MODEL_CACHE=os.environ["PLACECELL_MODEL_CACHE"], **extra)
    return env


def run_example(name: str, tmp_path: Path, env: dict[str, str]) -> tuple[dict, str]:
    """Run README example `name` in a fresh interpreter in an empty folder; (its results, stdout)."""
    code = readme_examples()[name]
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.py").write_text(code + TRAILER, encoding="utf-8")
    result = folder / "result.json"
    proc = subprocess.run([sys.executable, f"{name}.py"], cwd=folder, capture_output=True, text=True, timeout=900,
                          env={**env, "README_EXAMPLE_RESULT": str(result)})
    assert proc.returncode == 0, f"README example {name} failed:\n{proc.stderr[-3000:]}"
    return json.loads(result.read_text()), proc.stdout


def registry_titles(home: Path) -> dict[str, str]:
    """{passage id: title} of the passages stored under `home`."""
    from placecell.tools.stores.passages import PassageRegistry

    registry = PassageRegistry(home / "passages.sqlite")
    try:
        return {p.id: p.title for p in registry.all()}
    finally:
        registry.close()


def assert_cited(out: dict, stored: dict[str, str], expected: set[str], k: int | None = None) -> None:
    """A real answer: text, and citations that are stored passages, one of them an expected title."""
    assert isinstance(out["answer"], str) and out["answer"].strip(), out
    cites = out["citations"]
    assert cites and all(stored.get(c["passage_id"]) == c["title"] for c in cites), cites
    assert expected & {c["title"] for c in cites}, cites
    if k is not None:
        assert len(cites) == k


@pytest.fixture(scope="module")
def local_home(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A PLACECELL_HOME with the demo corpus ingested (vectors only); (home, {passage id: title})."""
    work = tmp_path_factory.mktemp("readme")
    home = work / "home"
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "ingest", str(CORPUS), "--no-extract", "--json"],
                          cwd=work, env=example_env(home), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = registry_titles(home)
    assert set(stored.values()) == corpus_titles() and len(stored) == 36
    return home, stored


@pytest.fixture(scope="module")
def server_with_corpus(dev_server) -> tuple[str, dict[str, str]]:
    """The dev server with the demo corpus ingested through its ingest graph; (url, {passage id: title})."""
    from langgraph_sdk import get_sync_client

    out = get_sync_client(url=dev_server.url).runs.wait(None, "ingest", input={"sources": [str(CORPUS)]},
                                                        context={"extract": False})
    assert out["loaded"] == 36 and out["warnings"] == [], out
    stored = registry_titles(dev_server.home)
    assert corpus_titles() <= set(stored.values())
    return dev_server.url, stored


def test_the_readme_has_its_examples():
    examples = readme_examples()
    assert set(examples) == {"sdk", "qa_python", "qa_subgraph", "qa_remote"}
    for name in ("sdk", "qa_remote"):  # server examples default to `langgraph dev`'s address
        assert 'os.environ.get("PLACECELL_SERVER_URL", "http://127.0.0.1:2024")' in examples[name]


def test_qa_from_python(local_home, tmp_path):
    home, stored = local_home
    res, stdout = run_example("qa_python", tmp_path, example_env(home))
    out = res["out"]
    assert_cited(out, stored, {"Longleat Safari Park", "Alexander Thynn, 7th Marquess of Bath"}, k=3)
    assert out["method"] == "neuropath" and out["paths"] == []  # no KG here (--no-extract): dense completion
    assert out["answer"] in stdout


def test_qa_as_a_subgraph_of_another_app(local_home, tmp_path):
    home, stored = local_home
    res, stdout = run_example("qa_subgraph", tmp_path, example_env(home))
    out = res["out"]
    assert_cited(out, stored, {"Gary Groth", "The Comics Journal"}, k=3)
    sources = "; ".join(c["title"] for c in out["citations"])
    assert out["reply"] == f"{out['answer']} (sources: {sources})"
    assert out["reply"] in stdout


def test_sdk_against_the_dev_server(server_with_corpus, tmp_path):
    url, stored = server_with_corpus
    res, _ = run_example("sdk", tmp_path, example_env(tmp_path / "unused-home", PLACECELL_SERVER_URL=url))
    assert_cited(res["out"], stored, {"Gary Groth"}, k=3)
    turn = res["turn"]
    assert turn["route"] == "reply" and turn["messages"][-1]["type"] == "ai" and turn["messages"][-1]["content"].strip()


def test_remote_graph_invoke_stream_and_node(server_with_corpus, tmp_path):
    url, stored = server_with_corpus
    res, stdout = run_example("qa_remote", tmp_path, example_env(tmp_path / "unused-home", PLACECELL_SERVER_URL=url))
    assert_cited(res["out"], stored, {"Maulana Karenga", "Hakim Jamal"}, k=3)
    assert res["out"]["method"] == "dense"
    assert res["steps"] == ["start", "retrieve", "read"]
    # as a node: the RemoteGraph's configurable became the remote run's context (dense, top 3)
    assert_cited(res["app_out"], stored, {"Chip Kelly", "2013 Philadelphia Eagles season"}, k=3)
    assert "['start', 'retrieve', 'read']" in stdout
    assert not (tmp_path / "unused-home").exists()  # the examples ran on the server, not in-process
