"""Documents in a home: list them, remove them, and keep the derived stores in step.

The passage registry is the record of what is stored. The vectors (Chroma) and the knowledge
graphs (`kg/*.json`, one per extracting model) are derived from it, so after passages are
deleted (a document ingested again with other text, or `placecell remove`) they are brought in
line with the registry by comparing, not by replaying what was deleted: a run killed between
the registry's commit and these steps is repaired by the next ingest or remove.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from placecell.agents.backends import Backends
from placecell.agents.events import STOP, emit
from placecell.errors import InputError, PlacecellError
from placecell.tools.stores.atomic import write_json_atomic
from placecell.tools.stores.filelock import exclusive
from placecell.tools.stores.kg import restrict_to_passages
from placecell.tools.stores.passages import document_key


def _raise_if_stopped() -> None:
    if STOP.is_set():
        raise PlacecellError("interrupted while waiting for another ingest or remove of this home", 130)


def documents_changing(backends: Backends):
    """The home's stored documents change in one process at a time. Without it, a `remove` that
    ran while an ingest was between reading the registry and writing vectors or a knowledge graph
    had its passages written back (reads filter them out, but the files kept them until the next
    ingest or remove). Held briefly: around a registry write and each derived store's sync, never
    around LLM extraction, so a remove waits seconds, not the length of an ingest."""
    lock = backends.home / "documents.lock"
    return exclusive(lock, while_waiting=_raise_if_stopped,
                     on_wait=lambda: emit({"event": "documents_wait", "lock": str(lock)}))


def sync_vectors(backends: Backends, passage_ids: list[str]) -> int:
    """Delete the vectors of passages the registry no longer has; returns how many."""
    vectors = backends.get_vectors()
    orphans = sorted(vectors.ids() - set(passage_ids))
    if orphans:
        vectors.delete(orphans)
    return len(orphans)


def sync_knowledge_graphs(backends: Backends, passage_ids: set[str]) -> int:
    """Drop, from every knowledge graph in the home, the triples of passages the registry no longer
    has (no LLM or embedding call: aliases of names that are left stay as they were). Returns how
    many passages were dropped over all graphs."""
    folder = backends.home / "kg"
    dropped = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
            stale = set(data["passages"]) - passage_ids
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            continue  # a damaged graph is reported, and rebuilt, where it is read (KnowledgeGraph.load)
        if stale:
            write_json_atomic(path, restrict_to_passages(data, passage_ids))
            dropped += len(stale)
    backends.forget_kg()
    return dropped


def gone_from_folders(backends: Backends, folders: list[str], loaded: set[str]) -> list[str]:
    """Stored documents under these folders whose files are no longer there."""
    registry = backends.get_registry()
    gone: set[str] = set()
    for folder in folders:
        gone.update(doc for doc in registry.matching_documents(folder)
                    if doc != folder and doc not in loaded and not os.path.exists(doc))
    return sorted(gone)


def remove_documents(backends: Backends, targets: list[str]) -> dict:
    """Forget the documents these paths (a file, or a folder: every document under it), URLs or
    stored document names name, with their passages (unless another document holds the same text),
    vectors and knowledge-graph triples. Extraction and embedding caches stay: ingesting the same
    text again costs no model call."""
    if blank := [t for t in targets if not isinstance(t, str) or not t.strip()]:
        raise InputError(f"an empty name is no document ({blank[0]!r}); give a file, folder or URL to remove")
    registry = backends.get_registry()
    documents: list[str] = []
    unmatched: list[str] = []
    with documents_changing(backends):
        for target in targets:
            found = registry.matching_documents(target) or registry.matching_documents(document_key(target))
            documents += [doc for doc in found if doc not in documents]
            if not found:
                unmatched.append(target)
        removed = registry.remove_documents(documents) if documents else []
        ids = registry.ids()
        sync_vectors(backends, ids)
        sync_knowledge_graphs(backends, set(ids))
    return {"documents": documents, "removed_passages": len(removed), "passages": len(ids), "unmatched": unmatched}


def list_documents(backends: Backends) -> list[dict]:
    """Every stored document with its passage count, and whether its file is still there."""
    out = []
    for doc, n in backends.get_registry().documents().items():
        local = "://" not in doc
        out.append({"document": doc, "passages": n, **({"exists": Path(doc).exists()} if local else {})})
    return out
