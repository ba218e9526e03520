"""Single-step passage retrievers over the ingested registry and KG: the baselines NeuroPath is
measured against, and the fallbacks the QA graph uses.

Every retriever is `fn(question, backends, k, **kw) -> [(passage id, score), ...]`, best first:
- `dense`: exact cosine between the MiniLM query vector and every stored passage vector;
- `bm25`: rank-bm25 `BM25Okapi` with its defaults over lowercase word tokens, accents on Latin
  letters folded (`textnorm.fold`);
- `hybrid`: reciprocal rank fusion (k=60) of the full dense and BM25 rankings;
- `ppr`: HippoRAG v1 personalized PageRank over the entity graph, seeded from the question's
  entities; passage score = sum of the PageRank mass of the passage's entities. Falls back to
  dense when the question yields no seeds (no entities, or a KG without triples).

Indexes (the passage matrix, the BM25 index, the title index, the entity graph) are cached per
registry or KG state, so a run of many questions builds each once.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from typing import Callable

import numpy as np

from placecell.tools.textnorm import fold

Ranking = list[tuple[str, float]]
RRF_K = 60
PPR_DAMPING = 0.1  # HippoRAG v1's default (probability of following an edge)

_TOKEN = re.compile(r"\w+")
_cache_lock = threading.Lock()
_index_cache: dict[tuple, object] = {}
_graph_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tokenize(text: str) -> list[str]:
    """BM25's words: lower case, accents on Latin letters folded (a question typed "Tekeze" finds
    "Tekezé")."""
    return _TOKEN.findall(fold(text).lower())


def _registry_state(registry) -> str:
    """Changes whenever a passage is added, so cached indexes never go stale."""
    ids = registry.ids()
    digest = hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]
    return f"{getattr(registry, 'path', id(registry))}:{len(ids)}:{digest}"


def _cached(kind: str, registry, build: Callable[[], object]):
    key = (kind, _registry_state(registry))
    with _cache_lock:
        if key in _index_cache:
            return _index_cache[key]
    value = build()
    with _cache_lock:
        # Keep a few states only: an eval run holds one corpus at a time.
        stale = [k for k in _index_cache if k[0] == kind]
        for k in stale[:-3]:
            del _index_cache[k]
        _index_cache[key] = value
    return value


def _top(ids: list[str], scores: np.ndarray, k: int | None) -> Ranking:
    order = np.argsort(-scores, kind="stable")
    if k is not None:
        order = order[:k]
    return [(ids[i], float(scores[i])) for i in order]


# -- dense ------------------------------------------------------------------------------
def _passage_matrix(backends) -> tuple[list[str], np.ndarray]:
    """All passage vectors from the vector store; passages it lacks are embedded here."""
    registry = backends.get_registry()

    def build():
        ids, vecs = backends.get_vectors().all_vectors()
        stored = registry.ids()
        wanted = set(stored)
        if any(pid not in wanted for pid in ids):  # vectors of deleted passages (a cut-short removal)
            rows = [i for i, pid in enumerate(ids) if pid in wanted]
            ids, vecs = [ids[i] for i in rows], np.asarray(vecs)[rows]
        known = set(ids)
        missing = [pid for pid in stored if pid not in known]
        if missing:
            rows = registry.get_many(missing)
            extra = backends.get_embedder().embed([rows[pid].text for pid in missing])
            vecs = np.vstack([vecs, extra]) if len(ids) else extra
            ids = list(ids) + missing
        return list(ids), np.asarray(vecs, dtype=np.float32)

    return _cached("dense", registry, build)


def dense_scores(text: str, backends) -> tuple[list[str], np.ndarray]:
    ids, mat = _passage_matrix(backends)
    if not ids:
        return [], np.zeros(0)
    query = backends.get_embedder().embed([text])[0]
    return ids, mat @ query


def dense(question: str, backends, k: int = 10, **_) -> Ranking:
    ids, scores = dense_scores(question, backends)
    return _top(ids, scores, k)


# -- bm25 -------------------------------------------------------------------------------
def _bm25_index(backends):
    from rank_bm25 import BM25Okapi

    registry = backends.get_registry()

    def build():
        passages = registry.all()
        if not passages:
            return [], None
        return [p.id for p in passages], BM25Okapi([tokenize(p.text) for p in passages])

    return _cached("bm25", registry, build)


def bm25(question: str, backends, k: int = 10, **_) -> Ranking:
    ids, index = _bm25_index(backends)
    if index is None:
        return []
    return _top(ids, np.asarray(index.get_scores(tokenize(question)), dtype=float), k)


# -- titles -----------------------------------------------------------------------------
_QUALIFIER = re.compile(r"\s*\([^)]*\)\s*$")


def title_key(title: str) -> str:
    """A title the way another passage would name it: a trailing "(... album)" qualifier dropped,
    then NeuroPath's entity normalisation."""
    from placecell.tools.stores.kg import normalize_entity

    return normalize_entity(_QUALIFIER.sub("", str(title)))


def title_index(backends) -> dict[str, list[str]]:
    """title key -> ids of the passages with that title (bare numbers are left out: a year is not a
    name worth following)."""
    registry = backends.get_registry()

    def build():
        index: dict[str, list[str]] = {}
        for passage in registry.all():
            key = title_key(passage.title)
            if key and not key.isdigit():
                index.setdefault(key, []).append(passage.id)
        return index

    return _cached("titles", registry, build)


# -- hybrid -----------------------------------------------------------------------------
def rrf(rankings: list[Ranking], k: int | None = None, rrf_k: int = RRF_K) -> Ranking:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (rrf_k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, (pid, _) in enumerate(ranking, 1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (rrf_k + rank)
    ids = list(fused)
    return _top(ids, np.array([fused[i] for i in ids]), k)


def hybrid(question: str, backends, k: int = 10, **_) -> Ranking:
    return rrf([dense(question, backends, None), bm25(question, backends, None)], k)


# -- personalized PageRank (HippoRAG v1) -------------------------------------------------
def entity_graph(kg):
    """Undirected weighted entity graph: each triple adds 1 to its pair (HippoRAG v1 counts
    co-occurrences); each stored alias direction adds its cosine, so a mutual alias pair weighs
    2 x cosine, as HippoRAG's synonym edges do when its directed edge list is run undirected."""
    import networkx as nx

    with _cache_lock:
        cached = _graph_cache.get(kg)
        if cached is not None and cached[0] == kg.n_triples():
            return cached[1], cached[2]
    g = nx.Graph()
    g.add_nodes_from(kg.entities())
    for u, v, data in kg.g.edges(data=True):
        if u == v:
            continue
        weight = 1.0 if data.get("kind") == "triple" else float(data.get("score", 1.0))
        if g.has_edge(u, v):
            g[u][v]["weight"] += weight
        else:
            g.add_edge(u, v, weight=weight)
    passage_entities = {pid: sorted({e for h, _, t in ts for e in (h, t)}) for pid, ts in kg.passage_triples.items()}
    with _cache_lock:
        _graph_cache[kg] = (kg.n_triples(), g, passage_entities)
    return g, passage_entities


def seed_weights(kg, seeds: list[str]) -> dict[str, float]:
    """HippoRAG's node specificity: a seed found in many passages says less, weight 1/#passages."""
    return {s: 1.0 / max(1, len(kg.entity_passages.get(s, ()))) for s in seeds}


def ppr_scores(kg, seeds: list[str], damping: float = PPR_DAMPING) -> dict[str, float]:
    """Passage id -> sum of the PageRank mass of its entities (HippoRAG v1 docs-to-phrases)."""
    import networkx as nx

    graph, passage_entities = entity_graph(kg)
    personalization = {s: w for s, w in seed_weights(kg, seeds).items() if s in graph}
    if not personalization:
        return {}
    # Starting the iteration on the seeds keeps nodes they cannot reach at exactly 0 (from a
    # uniform start they would keep a residue of the tolerance and outrank the dense fill-in).
    mass = nx.pagerank(graph, alpha=damping, personalization=personalization, nstart=personalization,
                       weight="weight")
    return {pid: float(sum(mass.get(e, 0.0) for e in ents)) for pid, ents in passage_entities.items()}


def _default_ner(llm, question: str) -> list[str]:
    from placecell.agents.qa.neuropath import query_entities

    return query_entities(llm, question)


def ppr(question: str, backends, k: int = 10, *, entities: list[str] | None = None, ner=None, kg=None,
        damping: float = PPR_DAMPING, **_) -> Ranking:
    """`entities`: the question's entities when already known (else `ner(llm, question)`, by
    default the QA graph's query NER). Passages PageRank does not reach are ranked by dense."""
    from placecell.agents.qa.neuropath import link_seeds

    kg = kg if kg is not None else backends.load_kg()
    if entities is None and kg.n_triples():
        entities = (ner or _default_ner)(backends.get_llm(), question)
    seeds = link_seeds(kg, backends.get_embedder().embed, entities or []) if kg.n_triples() else []
    scores = ppr_scores(kg, seeds, damping) if seeds else {}
    reached = [(pid, s) for pid, s in sorted(scores.items(), key=lambda x: -x[1]) if s > 0]
    if not reached:
        return dense(question, backends, k)
    taken = {pid for pid, _ in reached}
    rest = [(pid, 0.0) for pid, _ in dense(question, backends, None) if pid not in taken]
    return (reached + rest)[:k]


RETRIEVERS: dict[str, Callable[..., Ranking]] = {"dense": dense, "bm25": bm25, "hybrid": hybrid, "ppr": ppr}
