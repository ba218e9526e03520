"""Passage vectors in Chroma: embedded `PersistentClient` by default, `HttpClient` when a URL
is configured. Chroma always gets our embedding function (its default downloads a model),
and we pass precomputed vectors so the embedding cache is ours."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from placecell.errors import PlacecellError
from placecell.tools.embed import ChromaEmbedding, Embedder


class VectorStore:
    def __init__(self, embedder: Embedder, *, path: str | Path | None = None, url: str = "",
                 collection: str = "passages"):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True)
        self.embedder = embedder
        try:
            if url:
                u = urlparse(url)
                self.client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                                  ssl=u.scheme == "https", settings=chroma_settings)
            else:
                self.client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            # The collection name carries the embedding model: vectors of two models never mix.
            self.collection = self.client.get_or_create_collection(
                name=f"{collection}-{embedder.model_id.lower()}"[:60],
                embedding_function=ChromaEmbedding(embedder),
                metadata={"hnsw:space": "cosine"},
            )
        except Exception as exc:  # chromadb raises many types for an unreachable server
            where = url or str(path)
            text = str(exc).splitlines()[0][:200]
            # The vectors are derived data: passages.sqlite holds every passage, and the ingest's
            # embed step re-embeds whatever the store lacks.
            fix = ("; move that folder aside and rerun `placecell ingest` (with any input): every stored passage is "
                   "embedded again" if not url and ("malformed" in text or "not a database" in text) else "")
            raise PlacecellError(f"vector store at {where} unavailable: {text}{fix}") from None

    def ids(self) -> set[str]:
        found: set[str] = set()
        offset = 0
        while True:  # in pages: a Chroma server caps the rows of one answer
            page = self.collection.get(include=[], limit=5000, offset=offset)["ids"]
            found.update(page)
            if len(page) < 5000:
                return found
            offset += len(page)

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), 500):
            self.collection.delete(ids=ids[i : i + 500])

    def upsert(self, ids: list[str], texts: list[str], metadatas: list[dict], vectors: np.ndarray) -> None:
        for i in range(0, len(ids), 256):
            self.collection.upsert(
                ids=ids[i : i + 256], documents=texts[i : i + 256], metadatas=metadatas[i : i + 256],
                embeddings=[v.tolist() for v in vectors[i : i + 256]],
            )

    def count(self) -> int:
        return self.collection.count()

    def query(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(passage id, cosine similarity), best first."""
        n = self.count()
        if n == 0:
            return []
        res = self.collection.query(query_embeddings=[vector.tolist()], n_results=min(k, n), include=["distances"])
        return [(pid, 1.0 - float(d)) for pid, d in zip(res["ids"][0], res["distances"][0])]

    def all_vectors(self) -> tuple[list[str], np.ndarray]:
        res = self.collection.get(include=["embeddings"])
        vecs = np.asarray(res["embeddings"], dtype=np.float32) if len(res["ids"]) else np.zeros((0, 384), np.float32)
        return list(res["ids"]), vecs
