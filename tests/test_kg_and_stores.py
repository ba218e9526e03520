"""Knowledge graph, passage registry, JSONL cache and atomic writes."""

from __future__ import annotations

import json

import numpy as np

from placecell.tools.stores.atomic import write_json_atomic
from placecell.tools.stores.jsonl_cache import JsonlCache
from placecell.tools.stores.kg import KnowledgeGraph, normalize_entity
from placecell.tools.stores.passages import Passage, PassageRegistry, passage_id


def test_normalize_entity_matches_neuropath():
    assert normalize_entity("  Lou Rawls' (singer)!") == "lou rawls singer"
    assert normalize_entity("Capitol-Records") == "capitol records"


def test_normalize_entity_folds_latin_accents_and_keeps_other_scripts():
    # A question typed without accents must meet the passage's accented name (it became "aschenbr del").
    assert normalize_entity("Aschenbrödel") == normalize_entity("Aschenbrodel") == "aschenbrodel"
    assert normalize_entity("Akinoshū Kenji") == "akinoshu kenji"
    assert normalize_entity("Hans Næss, Łódź; Straße") == "hans naess lodz strasse"
    # Letters of other scripts are names too: kept, not blanked (Cyrillic "й" keeps its mark).
    assert normalize_entity("Йошкар-Ола") == "йошкар ола"
    assert normalize_entity("東京 タワー") == "東京 タワー"
    assert normalize_entity("snake_case") == "snake case"


def test_kg_files_say_which_normalisation_made_them(tmp_path):
    from placecell.tools.stores.kg import KG_VERSION

    kg = KnowledgeGraph()
    kg.add_passage("p1", [["Aschenbrödel", "written by", "Johann Strauss II"]])
    kg.save(tmp_path / "kg.json")
    loaded = KnowledgeGraph.load(tmp_path / "kg.json")
    assert loaded.version == KG_VERSION and loaded.triples_with("aschenbrodel")
    old = json.loads((tmp_path / "kg.json").read_text())
    old.pop("version")  # files written before the version field said so are version 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert KnowledgeGraph.load(tmp_path / "old.json").version == 1 < KG_VERSION


def test_kg_dedupes_and_remembers_passages():
    kg = KnowledgeGraph()
    assert kg.add_passage("p1", [["Lou Rawls", "signed with", "Capitol Records"], ["Lou Rawls", "signed with", "Capitol Records"],
                                 ["bad"], ["x", "is", "x"]]) == 1
    assert kg.add_passage("p2", [["Capitol Records", "based in", "Los Angeles"]]) == 1
    assert kg.n_triples() == 2
    assert kg.triples_with("capitol records") == [
        ("lou rawls", "signed with", "capitol records", "p1"), ("capitol records", "based in", "los angeles", "p2")]
    assert kg.entity_passages["capitol records"] == {"p1", "p2"}


def test_aliases_threshold_and_cap():
    kg = KnowledgeGraph()
    kg.add_passage("p", [["a", "r", "b"], ["c", "r", "d"]])
    vecs = {"a": [1, 0], "b": [0.99, 0.14], "c": [0, 1], "d": [0.6, 0.8]}

    def embed(names):
        v = np.array([vecs[n] for n in names], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    assert kg.add_aliases(embed, threshold=0.8, per_node=5) == 4  # a<->b and c<->d (0.8) both ways
    assert kg.aliases("a") == ["b"]
    assert kg.add_aliases(embed, threshold=0.95) == 2  # rebuilt, not accumulated
    assert kg.aliases("c") == []


def test_containment_aliases_join_a_name_to_the_names_it_contains(tmp_path):
    kg = KnowledgeGraph()
    kg.add_passage("p1", [["You'll Never Find", "performed by", "R&B singer Lou Rawls"]])
    kg.add_passage("p2", [["Lou Rawls", "signed with", "Capitol Records"], ["Stormy Monday", "year", "1962"],
                          ["Nigeria's Minister of Transportation", "held by", "Ibrahim Bio"], ["Nigeria", "ratio", "11 percent"],
                          ["Mine 1962 remaster", "of", "Mine"]])
    # "album" is contained in 25 names: too generic to join them.
    kg.add_passage("p3", [[f"album number {i}", "is", "album"] for i in range(25)])
    assert kg.add_containment_aliases(per_node=2, max_containers=20) > 0
    assert kg.aliases("r b singer lou rawls") == ["lou rawls"]
    assert kg.aliases("nigeria s minister of transportation") == ["nigeria"]
    assert kg.aliases("lou rawls") == []  # one direction: the longer name points to the shorter
    assert kg.aliases("mine 1962 remaster") == ["mine"]  # numbers ("1962") are never alias targets
    assert kg.aliases("album number 3") == []
    # Saved and loaded like the embedding aliases.
    kg.save(tmp_path / "kg.json")
    assert KnowledgeGraph.load(tmp_path / "kg.json").aliases("r b singer lou rawls") == ["lou rawls"]


def test_kg_roundtrip(tmp_path):
    kg = KnowledgeGraph()
    kg.add_passage("p1", [["A", "r", "B"]])
    kg.g.add_edge("a", "b", key="alias", kind="alias", score=0.9)
    kg.save(tmp_path / "kg.json")
    back = KnowledgeGraph.load(tmp_path / "kg.json")
    assert back.to_json() == kg.to_json()
    assert KnowledgeGraph.load(tmp_path / "missing.json").n_triples() == 0


def test_registry_is_idempotent(tmp_path):
    reg = PassageRegistry(tmp_path / "p.sqlite")
    ps = [Passage(passage_id(t), "T", t) for t in ("one", "two")]
    assert reg.add_many(ps) == 2
    assert reg.add_many(ps) == 0
    assert [p.text for p in reg.all()] == ["one", "two"]
    assert set(reg.get_many([ps[1].id, "nope"])) == {ps[1].id}


def test_jsonl_cache_survives_torn_last_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = JsonlCache(path)
    cache.put("a", {"x": 1})
    cache.put("a", {"x": 1})  # same value: not written twice
    with open(path, "a") as fh:
        fh.write('{"key": "b", "val')  # a killed writer
    again = JsonlCache(path)
    assert len(again) == 1 and again.get("a") == {"x": 1} and "b" not in again
    again.put("b", [1])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_jsonl_cache_a_damaged_middle_line_costs_only_its_record(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = JsonlCache(path)
    for key in "abcd":
        cache.put(key, {"k": key})
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["this is garbage {not json"] + lines[2:]) + "\n")
    again = JsonlCache(path)
    assert sorted(again._data) == ["a", "b", "c", "d"] and again.skipped_lines == 1
    again.put("e", 1)
    reopened = JsonlCache(path)
    assert len(reopened) == 5  # nothing after the bad line was cut
    assert reopened.skipped_lines == 0 and "garbage" not in path.read_text()  # dropped once: no warning on every run


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    write_json_atomic(target, {"v": 1})
    import os

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    try:
        write_json_atomic(target, {"v": 2})
    except OSError:
        pass
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_atomic_write_gives_the_mode_a_plain_write_would(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        fresh = tmp_path / "kg.json"
        write_json_atomic(fresh, {"v": 1})
        assert fresh.stat().st_mode & 0o777 == 0o644  # mkstemp's 0600 used to carry over
        shared = tmp_path / "shared.json"
        shared.write_text("{}")
        shared.chmod(0o664)
        write_json_atomic(shared, {"v": 2})
        assert shared.stat().st_mode & 0o777 == 0o664  # an existing file keeps its mode
    finally:
        os.umask(old)
