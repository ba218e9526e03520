"""Ingest nodes. Each is short, returns a partial update, and is safe to re-run: every write is
keyed by content (passage hash, extraction cache key), so a killed run resumes without
duplicates and an unchanged rerun does no LLM work."""

from __future__ import annotations

import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor, as_completed

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from placecell.agents import checks
from placecell.agents.backends import Backends
from placecell.agents.events import STOP, emit
from placecell.agents.ingest.documents import documents_changing, gone_from_folders, sync_knowledge_graphs, sync_vectors
from placecell.agents.ingest.extract import SCHEMA_VERSION, extract_passage
from placecell.agents.ingest.state import IngestContext, IngestState
from placecell.agents.reducers import Fresh
from placecell.errors import InputError, PlacecellError
from placecell.tools.loaders import load_sources
from placecell.tools.stores.filelock import exclusive
from placecell.tools.stores.kg import KnowledgeGraph


def _ctx(runtime: Runtime[IngestContext] | None) -> IngestContext:
    return (runtime.context if runtime is not None else None) or IngestContext()


def _raise_if_stopped() -> None:
    if STOP.is_set():
        raise PlacecellError("interrupted while waiting for another ingest of this home", 130)


def _one_ingest_at_a_time(cache_path: Path):
    """Extraction and the KG build of one home and model run in one process at a time: a second
    `placecell ingest` waits, then finds the first one's extractions in the cache instead of
    paying for them again (and never reads a line the first one is still appending)."""
    lock = cache_path.with_suffix(".lock")
    return exclusive(lock, while_waiting=_raise_if_stopped, on_wait=lambda: emit({"event": "ingest_wait", "lock": str(lock)}))


EMBED_BATCH = 256


def make_nodes(backends: Backends):
    def load(state: IngestState, runtime: Runtime[IngestContext]) -> dict:
        ctx = _ctx(runtime)
        s = backends.settings
        sources = checks.list_input(state, "sources", str, "paths or URLs")
        if not sources:
            raise InputError("input 'sources' is empty: give files, folders, .jsonl corpora or URLs")
        loaded = load_sources(sources, max_chars=ctx.chunk_chars,
                              allow_hosts=list(ctx.allow_hosts) + list(s.allow_hosts),
                              timeout=s.fetch_timeout, max_bytes=s.fetch_max_bytes, encoding=ctx.encoding)
        registry = backends.get_registry()
        with documents_changing(backends):
            # A document read in full replaces what it held before; one that failed keeps it.
            stored = registry.store(loaded.passages, loaded.documents, replace=loaded.complete)
            gone = gone_from_folders(backends, loaded.folders, set(loaded.documents))
        replaced = sorted(doc for doc in loaded.complete if doc in loaded.documents)
        notes = [f"{len(gone)} stored document(s) under the folder(s) given are gone from disk and still answer "
                 f"questions: `placecell remove` them ({', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''})"] if gone else []
        return {"passage_ids": [p.id for p in loaded.passages], "loaded": len(loaded.passages), "new_passages": stored.new,
                "removed_passages": len(stored.removed), "documents": len(replaced),
                "passages": len(registry), "warnings": Fresh(loaded.warnings + loaded.notices + notes),
                "skipped_inputs": len(loaded.warnings)}

    def embed(state: IngestState) -> dict:
        registry, vectors = backends.get_registry(), backends.get_vectors()
        with documents_changing(backends):
            ids = registry.ids()
            stored = vectors.ids()
            sync_vectors(backends, ids)  # the vectors of passages a changed document no longer has
            missing = [pid for pid in ids if pid not in stored]
            rows = registry.get_many(missing) if missing else {}
        todo = [rows[i] for i in missing if i in rows]
        # In batches, each stored as it is done: a large file (thousands of passages, ~20 min on 2 cores)
        # shows progress, holds one batch in memory, and an interrupted run keeps what it embedded.
        # Embedding is outside the lock (it is the slow part); a passage removed meanwhile is not written back.
        write, start = get_stream_writer(), time.perf_counter()
        for first in range(0, len(todo), EMBED_BATCH):
            if STOP.is_set():
                raise PlacecellError(f"interrupted after embedding {first} of {len(todo)} passages (they are stored)", 130)
            batch = todo[first:first + EMBED_BATCH]
            vecs = backends.get_embedder().embed([p.text for p in batch])
            with documents_changing(backends):
                still = set(registry.ids())
                keep = [n for n, p in enumerate(batch) if p.id in still]
                if keep:
                    kept = [batch[n] for n in keep]
                    vectors.upsert([p.id for p in kept], [p.text for p in kept],
                                   [{"title": p.title, "source": p.source} for p in kept], vecs[keep])
            if len(todo) > EMBED_BATCH:
                done = first + len(batch)
                write({"event": "embed", "done": done, "total": len(todo),
                       "passages_per_s": done / max(time.perf_counter() - start, 1e-9)})
        return {}

    def extract(state: IngestState, runtime: Runtime[IngestContext]) -> dict:
        if not _ctx(runtime).extract:
            return {"extracted": 0, "cached": 0, "extraction_failed": 0}
        llm = backends.get_llm()
        with _one_ingest_at_a_time(backends.extraction_cache_path(llm.model_id, SCHEMA_VERSION)):
            # opened under the lock, so it holds whatever another ingest finished meanwhile
            return _extract(llm, backends.extraction_cache(llm.model_id, SCHEMA_VERSION))

    def _extract(llm, cache) -> dict:
        passages = backends.get_registry().all()
        todo = [p for p in passages if p.id not in cache]
        write = get_stream_writer()
        start, done, failed = time.perf_counter(), 0, 0
        write({"event": "extract_start", "total": len(todo), "cached": len(passages) - len(todo)})

        def work(p):
            return p, extract_passage(llm, p.text)

        # A remote endpoint serves several requests at once; one in-process model serves one.
        workers = max(1, backends.settings.llm_concurrency) if backends.settings.llm_backend == "openai" else 1
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(work, p) for p in todo]
            # Each result is stored the moment it arrives, so a killed run keeps every finished one;
            # one worker keeps passage order (committed eval caches stay diff-stable).
            for future in (as_completed(futures) if workers > 1 else futures):
                if STOP.is_set():  # Ctrl-C: keep what is stored, start nothing new
                    raise PlacecellError(f"interrupted after {done} of {len(todo)} extractions (they are cached)", 130)
                p, result = future.result()
                cache.put(p.id, result)
                done += 1
                failed += int(result["failed"])
                rate = done / max(time.perf_counter() - start, 1e-9)
                write({"event": "extract", "done": done, "total": len(todo), "passages_per_s": rate,
                       "title": p.title})
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on an error or Ctrl-C: start nothing new
        return {"extracted": done, "cached": len(passages) - len(todo), "extraction_failed": failed}

    def build_kg(state: IngestState, runtime: Runtime[IngestContext]) -> dict:
        ctx = _ctx(runtime)
        # Every model's graph loses the passages the registry no longer has, with or without
        # extraction (this model's graph is then rebuilt whole below).
        with documents_changing(backends):
            sync_knowledge_graphs(backends, set(backends.get_registry().ids()))
        if not ctx.extract:
            return {"kg": {}}
        llm = backends.get_llm()
        with _one_ingest_at_a_time(backends.extraction_cache_path(llm.model_id, SCHEMA_VERSION)):
            return _build_kg(ctx, llm, backends.extraction_cache(llm.model_id, SCHEMA_VERSION))

    def _build_kg(ctx: IngestContext, llm, cache) -> dict:
        # The KG is derived from durable records (registry + extraction cache) and rebuilt
        # whole, then saved atomically: a crash at any point cannot leave it half-merged.
        kg = KnowledgeGraph()
        for p in backends.get_registry().all():
            rec = cache.get(p.id)
            if rec:
                kg.add_passage(p.id, rec["triples"])
        aliases = kg.add_aliases(backends.get_embedder().embed, threshold=ctx.alias_threshold)
        if ctx.alias_containment:
            aliases += kg.add_containment_aliases()
        with documents_changing(backends):  # a passage removed while the graph was built stays removed
            kg = kg.without_passages(set(backends.get_registry().ids()))
            kg.save(backends.kg_path(llm.model_id))
        backends.forget_kg()
        warnings = []
        if kg.n_triples() == 0 and len(backends.get_registry()):
            warnings.append("the model extracted no triples: questions will fall back to dense retrieval")
        return {"kg": {"entities": len(kg.entities()), "triples": kg.n_triples(), "aliases": aliases},
                "warnings": warnings}

    return {"load": load, "embed": embed, "extract": extract, "build_kg": build_kg}
