"""Documents: a file ingested again replaces its passages, `placecell remove` forgets documents,
and the vectors and knowledge graphs follow the registry (no model call)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from placecell.tools.stores.kg import KnowledgeGraph
from placecell.tools.stores.passages import Passage, PassageRegistry, document_key, passage_id


def run_cli(args) -> int:
    from placecell.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    return exit_info.value.code


def passage(text: str, source: str = "") -> Passage:
    return Passage(passage_id(text), "", text, source)


def test_registry_replaces_a_documents_passages_and_keeps_shared_ones(tmp_path):
    reg = PassageRegistry(tmp_path / "p.sqlite")
    a1, a2, shared, b = passage("a one"), passage("a two"), passage("same words"), passage("b one")
    first = reg.store([a1, a2, shared, b], {"/d/a.md": [a1.id, a2.id, shared.id], "/d/b.md": [b.id, shared.id]},
                      replace={"/d/a.md", "/d/b.md"})
    assert first.new == 4 and first.removed == []
    a3 = passage("a three")
    # a.md now reads "a one / a three": "a two" goes; "same words" goes from a.md but b.md still holds it
    again = reg.store([a1, a3], {"/d/a.md": [a1.id, a3.id]}, replace={"/d/a.md"})
    assert again.new == 1 and again.removed == [a2.id]
    assert sorted(p.text for p in reg.all()) == ["a one", "a three", "b one", "same words"]
    assert reg.documents() == {"/d/a.md": 2, "/d/b.md": 2}
    # not read in full (a bad JSONL line, an unreadable file): nothing is taken away
    assert reg.store([a1], {"/d/a.md": [a1.id]}, replace=()).removed == []
    assert reg.documents()["/d/a.md"] == 2

    assert reg.matching_documents("/d") == ["/d/a.md", "/d/b.md"]
    assert reg.matching_documents("/d/a") == []  # a folder prefix ends at a separator
    gone = reg.remove_documents(["/d/b.md"])
    assert sorted(gone) == sorted([b.id, shared.id])
    app_own = passage("an app's passage, no document")
    reg.add_many([app_own])
    assert sorted(reg.remove_documents(reg.matching_documents("/d"))) == sorted([a1.id, a3.id])
    assert [p.text for p in reg.all()] == [app_own.text] and reg.documents() == {}


def test_a_registry_from_before_documents_gets_them_from_sources(tmp_path, monkeypatch):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE passages (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, "
                 "source TEXT NOT NULL DEFAULT '')")
    rows = [("1", "t", "x", "/abs/a.md"), ("2", "t", "y", "corpus.jsonl:7"), ("3", "t", "z", "https://e.org/p"),
            ("4", "t", "w", "")]
    conn.executemany("INSERT INTO passages VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    monkeypatch.chdir(tmp_path)
    reg = PassageRegistry(path)
    assert reg.documents() == {"/abs/a.md": 1, str(tmp_path / "corpus.jsonl"): 1, "https://e.org/p": 1}
    assert reg.matching_documents("https://e.org") == []  # a URL names itself only
    reg.close()
    assert PassageRegistry(path).documents()["/abs/a.md"] == 1  # backfilled once, not twice


def test_only_documents_read_in_full_are_complete(tmp_path):
    from placecell.tools.loaders import load_sources

    (tmp_path / "ok.md").write_text("One paragraph.\n\nAnother paragraph.\n")
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "c.jsonl").write_text('{"title": "A", "text": "a"}\n{broken\n')
    (tmp_path / "d.jsonl").write_text('{"title": "A", "text": "a"}\n{"title": "B", "text": "b"}\n')
    res = load_sources([str(tmp_path / n) for n in ("ok.md", "empty.md", "c.jsonl", "d.jsonl")], max_chars=20)
    key = lambda name: document_key(tmp_path / name)  # noqa: E731
    assert res.complete == {key("ok.md"), key("d.jsonl")}
    assert len(res.documents[key("ok.md")]) == 2 and len(res.documents[key("c.jsonl")]) == 1
    # the same record in two corpora is one passage, held by both documents
    assert res.documents[key("c.jsonl")][0] in res.documents[key("d.jsonl")] and len(res.passages) == 4


def _home_state(home):
    from placecell.agents.backends import Backends
    from placecell.settings import Settings

    b = Backends(settings=Settings(home=home))
    return b, {p.text for p in b.get_registry().all()}, b.get_vectors().ids()


def test_a_changed_file_replaces_its_passages_vectors_and_triples(tmp_path, capsys):
    """Without --no-extract's LLM: the knowledge graph another run extracted loses the triples of
    the passages the file no longer has, the vectors go, and dense retrieval cannot return them."""
    from placecell.agents.backends import Backends
    from placecell.settings import Settings
    from placecell.tools import retrievers

    home, docs = tmp_path / "home", tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Alpha is a town in Norway.\n\nAlpha has a river called Beta.\n")
    (docs / "b.md").write_text("Gamma is a cat owned by Delta.\n")
    assert run_cli(["ingest", str(docs), "--no-extract", "--home", str(home)]) == 0
    b = Backends(settings=Settings(home=home))
    reg = b.get_registry()
    kg = KnowledgeGraph()  # as an extracting run would have saved it
    for p in reg.all():
        subject = p.text.split()[0]
        kg.add_passage(p.id, [[subject, "mentioned in", p.title], [subject, "described as", p.text[:20]]])
    assert kg.add_aliases(b.get_embedder().embed, threshold=0.5) > 0
    kg.save(home / "kg" / "0123456789abcdef.json")
    old = {p.text: p.id for p in reg.all()}
    norway = next(pid for text, pid in old.items() if "Norway" in text)

    (docs / "a.md").write_text("Alpha is a city in Sweden.\n\nAlpha has a river called Beta.\n")
    capsys.readouterr()
    assert run_cli(["ingest", str(docs / "a.md"), "--no-extract", "--json", "--home", str(home)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new_passages"] == 1 and out["removed_passages"] == 1 and out["passages"] == 2
    b, texts, vector_ids = _home_state(home)
    assert not any("Norway" in t for t in texts) and any("Sweden" in t for t in texts)
    assert norway not in vector_ids and vector_ids == set(b.get_registry().ids())
    saved = json.loads((home / "kg" / "0123456789abcdef.json").read_text())
    assert list(saved["passages"]) == [next(pid for text, pid in old.items() if "Gamma" in text)]
    names = {n for ts in saved["passages"].values() for t in ts for n in (t[0], t[2])}
    assert all(u in names and v in names for u, v, _ in saved["aliases"])
    assert norway not in [pid for pid, _ in retrievers.dense("a town in Norway", b, k=10)]

    # a file that is now empty keeps what it had (bad input loses nothing); remove forgets it
    (docs / "b.md").write_text("")
    assert run_cli(["ingest", str(docs / "b.md"), "--no-extract", "--home", str(home)]) == 2
    assert any("Gamma" in t for t in _home_state(home)[1])
    capsys.readouterr()
    assert run_cli(["remove", str(docs / "b.md"), "--json", "--home", str(home)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"documents": [document_key(docs / "b.md")], "removed_passages": 1, "passages": 1, "unmatched": []}
    b, texts, vector_ids = _home_state(home)
    assert not any("Gamma" in t for t in texts) and len(vector_ids) == 1
    saved = json.loads((home / "kg" / "0123456789abcdef.json").read_text())
    assert saved["passages"] == {} and saved["aliases"] == [] and saved["version"] == kg.version

    assert run_cli(["remove", "nothing-here.md", "--home", str(home)]) == 2
    assert "no stored document matches nothing-here.md" in capsys.readouterr().err
    assert run_cli(["documents", "--json", "--home", str(home)]) == 0
    assert json.loads(capsys.readouterr().out) == [{"document": document_key(docs / "a.md"), "passages": 1,
                                                    "exists": True}]


def test_a_folder_ingest_names_its_deleted_files_and_remove_takes_the_folder(tmp_path, capsys):
    home, docs = tmp_path / "home", tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("Alpha is a town.\n")
    (docs / "sub" / "b.md").write_text("Beta is a river.\n")
    assert run_cli(["ingest", str(docs), "--no-extract", "--home", str(home)]) == 0
    (docs / "sub" / "b.md").unlink()
    capsys.readouterr()
    assert run_cli(["ingest", str(docs), "--no-extract", "--home", str(home)]) == 0  # a note, not a failure
    err = capsys.readouterr().err
    assert "1 stored document(s) under the folder(s) given are gone from disk" in err and "b.md" in err
    assert run_cli(["documents", "--home", str(home)]) == 0
    assert "(file gone: placecell remove it)" in capsys.readouterr().out
    assert run_cli(["remove", str(docs), "--home", str(home)]) == 0
    assert "removed 2 document(s), 2 passage(s); 0 passages in the store" in capsys.readouterr().out


def test_reading_after_a_cut_short_removal_never_reaches_deleted_passages(tmp_path):
    """The registry commits first; a process killed before the vectors and graphs follow leaves
    them ahead of it. Reads filter by the registry, and the next ingest or remove repairs them."""
    from placecell.agents.backends import Backends
    from placecell.agents.ingest.documents import sync_knowledge_graphs, sync_vectors
    from placecell.settings import Settings
    from placecell.tools import retrievers

    home = tmp_path / "home"
    (tmp_path / "a.md").write_text("Alpha is a town in Norway.\n")
    (tmp_path / "b.md").write_text("Gamma is a cat owned by Delta.\n")
    assert run_cli(["ingest", str(tmp_path / "a.md"), str(tmp_path / "b.md"), "--no-extract", "--home", str(home)]) == 0
    b = Backends(settings=Settings(home=home))
    ids = {p.title: p.id for p in b.get_registry().all()}
    kg = KnowledgeGraph()
    kg.add_passage(ids["a"], [["alpha", "located in", "norway"]])
    kg.add_passage(ids["b"], [["gamma", "owned by", "delta"]])
    kg.save(home / "kg" / "m.json")
    b.get_registry().remove_documents([document_key(tmp_path / "a.md")])  # ... and the process dies here

    fresh = Backends(settings=Settings(home=home))
    assert fresh.load_kg().triples() == [("gamma", "owned by", "delta", ids["b"])]
    assert [pid for pid, _ in retrievers.dense("Norway", fresh, k=5)] == [ids["b"]]
    assert sync_vectors(fresh, fresh.get_registry().ids()) == 1
    assert sync_knowledge_graphs(fresh, set(fresh.get_registry().ids())) == 1
    assert list(json.loads((home / "kg" / "m.json").read_text())["passages"]) == [ids["b"]]


def test_a_remove_while_an_ingest_embeds_is_not_undone(tmp_path):
    """An ingest embeds outside the home's documents lock (the slow part); a document removed in
    that time must not get its vectors written back when the ingest stores them."""
    from placecell.agents.backends import Backends
    from placecell.agents.ingest.documents import remove_documents
    from placecell.agents.ingest.state import IngestContext
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.settings import Settings

    home = tmp_path / "home"
    (tmp_path / "a.md").write_text("Alpha is a town in Norway.\n")
    (tmp_path / "c.md").write_text("Gamma is a cat owned by Delta.\n")
    assert run_cli(["ingest", str(tmp_path / "a.md"), "--no-extract", "--home", str(home)]) == 0
    backends = Backends(settings=Settings(home=home))
    real_embed, removed = backends.get_embedder().embed, []

    def embed_while_someone_removes(texts):
        if any("Gamma" in t for t in texts) and not removed:
            removed.append(remove_documents(Backends(settings=Settings(home=home)), [str(tmp_path / "c.md")]))
        return real_embed(texts)

    backends.embedder.embed = embed_while_someone_removes
    out = build_ingest_graph(backends).invoke({"sources": [str(tmp_path / "c.md")]},
                                              context=IngestContext(extract=False))
    assert out["new_passages"] == 1
    assert removed and removed[0]["removed_passages"] == 1
    _, texts, vector_ids = _home_state(home)
    assert texts == {"a\nAlpha is a town in Norway."}
    assert vector_ids == set(Backends(settings=Settings(home=home)).get_registry().ids())


def test_remove_waits_for_the_homes_documents_lock(tmp_path):
    import threading

    from placecell.agents.backends import Backends
    from placecell.agents.ingest.documents import remove_documents
    from placecell.settings import Settings
    from placecell.tools.stores.filelock import exclusive

    home = tmp_path / "home"
    (tmp_path / "a.md").write_text("Alpha is a town in Norway.\n")
    assert run_cli(["ingest", str(tmp_path / "a.md"), "--no-extract", "--home", str(home)]) == 0
    finished = threading.Event()

    def remove():
        if remove_documents(Backends(settings=Settings(home=home)), [str(tmp_path / "a.md")])["removed_passages"] == 1:
            finished.set()

    with exclusive(home / "documents.lock"):  # as an ingest storing passages holds it
        worker = threading.Thread(target=remove)
        worker.start()
        assert not finished.wait(1.0)  # waiting, not failing or going ahead
    worker.join(60)
    assert finished.is_set()
    assert _home_state(home)[1:] == (set(), set())


@pytest.mark.parametrize("target", ["", "  "])
def test_an_empty_remove_target_removes_nothing(tmp_path, capsys, monkeypatch, target):
    """`placecell remove ''` (an unset shell variable) removed every document of the home: '' became
    the folder '/'."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.txt").write_text("Cats are small.\n")
    home = ["--home", str(tmp_path / "home")]
    assert run_cli(["ingest", str(docs), "--no-extract", *home]) == 0
    monkeypatch.chdir(tmp_path / "home")  # a folder that holds no document either
    assert run_cli(["remove", target, *home]) == 2
    assert "an empty name is no document" in capsys.readouterr().err
    assert run_cli(["documents", "--json", *home]) == 0
    assert [d["document"] for d in json.loads(capsys.readouterr().out)] == [str(docs / "x.txt")]
    assert PassageRegistry(tmp_path / "reg.sqlite").matching_documents(target) == []
