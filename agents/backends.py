"""The backends a graph runs on, built lazily from settings.

Graph builders take a `Backends` (or the individual pieces) as arguments, so an embedding app
can hand in its own LLM, embedder or stores; nothing heavy is loaded until a node needs it.
Where things live under `home` (PLACECELL_HOME):
  passages.sqlite            passage registry (by content hash)
  chroma/                    passage vectors (embedded Chroma)
  cache/embeddings.sqlite    embedding cache (by model id + text hash)
  cache/extractions/*.jsonl  LLM extraction cache (by passage hash, file per model + prompt version)
  kg/<model>.json            the knowledge graph built by that model
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from placecell.settings import Settings, get_settings


def _file_state(path: Path | None) -> tuple:
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return (None, None)
    return (st.st_mtime_ns, st.st_size) if st else (None, None)


def model_key(model_id: str) -> str:
    """A model id as a file-name part: a GGUF's sha256 id keeps its first 16 hex digits; any other
    id (`openai:http://host:port/v1:model`) becomes `openai-` + 16 hex digits of its hash, so no
    `/` or `:` lands in a file name and two endpoints or models never share a cache."""
    if re.fullmatch(r"[0-9a-f]{16,}", model_id):
        return model_id[:16]
    kind = re.sub(r"[^A-Za-z0-9]+", "-", model_id.split(":", 1)[0]).strip("-") or "model"
    return f"{kind}-{hashlib.sha256(model_id.encode()).hexdigest()[:16]}"


@dataclass
class Backends:
    settings: Settings = field(default_factory=get_settings)
    llm: object | None = None
    embedder: object | None = None
    registry: object | None = None
    vectors: object | None = None
    extraction_dir: Path | None = None  # eval harness points this at a committed cache
    # Read the KG another model extracted (e.g. a 1.5B extraction answered with the 0.5B model);
    # None: the KG of the model that asks.
    kg_model_id: str | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _kg: object | None = field(default=None, repr=False)
    _unextracted: tuple = field(default=(None, None), repr=False)  # (key, answer) of the last count

    @property
    def home(self) -> Path:
        return Path(self.settings.data_dir)

    def get_llm(self):
        with self._lock:
            if self.llm is None:
                from placecell.tools.llm import get_llm

                self.llm = get_llm(self.settings)
            return self.llm

    def get_embedder(self):
        with self._lock:
            if self.embedder is None:
                from placecell.tools.embed import get_embedder

                self.embedder = get_embedder(self.home / "cache" / "embeddings.sqlite")
            return self.embedder

    def get_registry(self):
        with self._lock:
            if self.registry is None:
                from placecell.tools.stores.passages import PassageRegistry

                self.registry = PassageRegistry(self.home / "passages.sqlite")
            return self.registry

    def get_vectors(self):
        with self._lock:
            if self.vectors is None:
                from placecell.tools.stores.vectors import VectorStore

                self.vectors = VectorStore(self.get_embedder(), path=self.home / "chroma",
                                           url=self.settings.chroma_url, collection=self.settings.collection)
            return self.vectors

    def extraction_cache_path(self, model_id: str, version: str) -> Path:
        folder = self.extraction_dir or (self.home / "cache" / "extractions")
        return Path(folder) / f"{model_key(model_id)}-{version}.jsonl"

    def extraction_cache(self, model_id: str, version: str):
        from placecell.tools.stores.jsonl_cache import JsonlCache

        return JsonlCache(self.extraction_cache_path(model_id, version))

    def kg_path(self, model_id: str) -> Path:
        return self.home / "kg" / f"{model_key(model_id)}.json"

    def latest_kg_path(self) -> Path | None:
        folder = self.home / "kg"
        files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
        return files[-1] if files else None

    def load_kg(self, model_id: str | None = None):
        """The KG built by `model_id` (when that model built one here), else the most recent."""
        from placecell.tools.stores.kg import KnowledgeGraph

        with self._lock:
            model_id = self.kg_model_id or model_id
            own = self.kg_path(model_id) if model_id else None
            path = own if own is not None and own.exists() else self.latest_kg_path()
            # Keyed by the file's state too: another process (the CLI beside a server) rewrites the same path.
            key = (path, *_file_state(path))
            if self._kg is None or getattr(self._kg, "_key", None) != key:
                kg = KnowledgeGraph.load(path) if path else KnowledgeGraph()
                if kg.passage_triples:
                    # Passages deleted since the graph was saved (an ingest or remove that was cut
                    # short, or another process's) must not be reached through its paths.
                    kg = kg.without_passages(set(self.get_registry().ids()))
                kg._path, kg._key = path, key
                self._kg = kg
            return self._kg

    def answers_with_another_models_kg(self, model_id: str | None) -> bool:
        """True when `load_kg(model_id)` falls back to another model's graph (this one built none here).
        Asked per run, not stored on the shared graph object: runs with other models share it."""
        model_id = self.kg_model_id or model_id
        return bool(model_id) and not self.kg_path(model_id).exists() and self.latest_kg_path() is not None

    def unextracted(self, model_id: str) -> tuple[int, int]:
        """(passages with no extraction record of the model whose graph answers, stored passages): a
        graph built before an ingest by another backend, or with --no-extract, covers only part."""
        from placecell.agents.ingest.extract import SCHEMA_VERSION
        from placecell.tools.stores.jsonl_cache import stored_keys

        model_id = self.kg_model_id or model_id
        path = self.extraction_cache_path(model_id, SCHEMA_VERSION)
        ids = self.get_registry().ids()
        key = (path, *_file_state(path), len(ids), hash(tuple(ids)))  # the ids, not their count: a remove and an ingest keep it
        with self._lock:
            if self._unextracted[0] != key:  # the cache is read once per change, not per question
                done = stored_keys(path)
                self._unextracted = (key, (sum(pid not in done for pid in ids), len(ids)))
            return self._unextracted[1]

    def forget_kg(self) -> None:
        with self._lock:
            self._kg = None
