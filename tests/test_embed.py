"""MiniLM int8 embeddings: shape, normalisation, meaning, caching, Chroma and LangChain faces."""

from __future__ import annotations

import numpy as np

from placecell.tools.embed import ChromaEmbedding, Embedder, langchain_embeddings


def test_vectors_are_normalised_and_meaningful(tmp_path):
    emb = Embedder(cache_path=tmp_path / "e.sqlite")
    v = emb.embed(["The cat sat on the mat.", "A cat is sitting on a rug.", "Stock markets fell sharply."])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]
    # Padding within a batch must not change a vector.
    alone = emb._encode(["The cat sat on the mat."])[0]
    assert np.allclose(alone, v[0], atol=1e-5)


def test_cache_avoids_recomputation(tmp_path, monkeypatch):
    emb = Embedder(cache_path=tmp_path / "e.sqlite")
    first = emb.embed(["alpha", "beta", "alpha"])
    calls = []
    original = emb._encode
    monkeypatch.setattr(emb, "_encode", lambda texts: calls.append(texts) or original(texts))
    again = Embedder(cache_path=tmp_path / "e.sqlite")
    monkeypatch.setattr(again, "_encode", lambda texts: calls.append(texts) or original(texts))
    assert np.allclose(again.embed(["beta", "alpha"]), first[[1, 0]])
    assert calls == []
    again.embed(["gamma", "alpha"])
    assert calls == [["gamma"]]


def test_chroma_and_langchain_interfaces(tmp_path):
    import chromadb

    emb = Embedder()
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    col = client.get_or_create_collection("test", embedding_function=ChromaEmbedding(emb), metadata={"hnsw:space": "cosine"})
    col.add(ids=["a", "b"], documents=["Paris is the capital of France.", "Bananas are yellow fruit."])
    res = col.query(query_texts=["What is France's capital?"], n_results=1)
    assert res["ids"][0] == ["a"]
    lc = langchain_embeddings(emb)
    assert len(lc.embed_query("hello")) == 384
    assert len(lc.embed_documents(["a", "b"])) == 2
