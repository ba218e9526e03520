"""Helpers behind the search, fetch and evidence nodes (nodes stay short; logic lives here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placecell.tools.evidence import ScoredSpan, Span, item_evidence, select_evidence, usable_spans
from placecell.tools.web.fetch import FetchedPage
from placecell.tools.web.search import canonical_url


def run_searches(web, queries: list[str], per_query: int) -> tuple[list[dict], list[str]]:
    """Every query's hits in rank order (dicts with title, url, snippet, query, rank), and one
    error line per failed query. Each query asks for twice `per_query` hits: pages dropped later
    (unfetchable, or carrying instructions) must not shrink the evidence."""
    hits: list[dict] = []
    errors: list[str] = []
    for query in queries:
        results = web.search(query, 2 * per_query)
        if results.error:
            errors.append(f"search {query!r}: {results.error}")
        hits += [{"title": h.title, "url": h.url, "snippet": h.snippet, "query": query, "rank": r}
                 for r, h in enumerate(results)]
    return hits, errors


@dataclass
class FetchOutcome:
    pages: list[dict]  # kept pages: url, title, text
    errors: list[dict]  # url, reason
    dropped: list[str]  # pages that carry instructions to a model (never used as evidence)


def fetch_pages(web, hits: list[dict], per_query: int, max_pages: int, deepen_rounds: int = 2) -> FetchOutcome:
    """Fetch every distinct hit once. Per query, keep its first `per_query` good pages that carry
    no instructions; then interleave the queries by rank and keep `max_pages`. Bad and
    instruction-carrying pages are removed *before* ranks are counted, and a query left short of
    good pages is searched deeper (twice as many hits, at most `deepen_rounds` times), so pages
    planted to crowd a result list cannot push a genuine page out or reorder the kept ones."""
    queries = list(dict.fromkeys(h["query"] for h in hits))
    by_query = {q: [h for h in hits if h["query"] == q] for q in queries}
    depth = {q: 2 * per_query for q in queries}  # what run_searches asked for
    fetched: dict[str, object] = {}
    first_url: dict[str, str] = {}
    deadline = web.fetch_deadline()  # one time budget for every round
    for round_no in range(deepen_rounds + 1):
        for h in (h for q in queries for h in by_query[q]):
            first_url.setdefault(canonical_url(h["url"]), h["url"])
        todo = [u for u in first_url if u not in fetched]
        fetched.update(zip(todo, web.fetch_many([first_url[u] for u in todo], deadline=deadline)))
        good = {q: _good_pages(by_query[q], fetched, per_query) for q in queries}
        # A full result list that still gave too few good pages: the engine has more to show.
        short = [q for q in queries if len(good[q]) < per_query and len(by_query[q]) >= depth[q] > 0]
        if not short or round_no == deepen_rounds:
            break
        for q in short:
            depth[q] *= 2
            results = web.search(q, depth[q])
            if not results.error and len(results) > len(by_query[q]):
                by_query[q] = [{"title": h.title, "url": h.url, "snippet": h.snippet, "query": q, "rank": r}
                               for r, h in enumerate(results)]
            else:
                depth[q] = 0  # nothing deeper to get
    errors = [{"url": first_url[u], "reason": getattr(r, "reason", str(r))} for u, r in fetched.items()
              if not isinstance(r, FetchedPage)]
    dropped = [r.url for r in fetched.values() if isinstance(r, FetchedPage) and r.flags]
    kept: list[FetchedPage] = []
    seen: set[str] = set()
    lists = list(good.values()) if queries else []
    for rank in range(max((len(p) for p in lists), default=0)):
        for pages in lists:
            if rank < len(pages) and canonical_url(pages[rank].url) not in seen and len(kept) < max_pages:
                seen.add(canonical_url(pages[rank].url))
                kept.append(pages[rank])
    return FetchOutcome([{"url": p.url, "title": p.title, "text": p.text} for p in kept], errors, dropped)


def _good_pages(hits: list[dict], fetched: dict, per_query: int) -> list[FetchedPage]:
    good: list[FetchedPage] = []
    for hit in hits:  # rank order
        page = fetched.get(canonical_url(hit["url"]))
        if isinstance(page, FetchedPage) and not page.flags and len(good) < per_query:
            good.append(page)
    return good


@dataclass
class _PageView:
    url: str
    title: str
    text: str
    flags: tuple[str, ...] = ()


def choose_evidence(pages: list[dict], embedder, task_text: str, *, top_k: int, per_page: int,
                    message_passing: bool) -> tuple[list[dict], list[str]]:
    """Selected evidence spans (dicts) and the URLs of pages dropped for instruction-like text."""
    spans, dropped = usable_spans([_PageView(p["url"], p.get("title", ""), p["text"]) for p in pages])
    if not spans:
        return [], dropped
    vecs = embedder.embed([s.text for s in spans])
    task = embedder.embed([task_text])[0]
    chosen = select_evidence(spans, vecs, task, top_k=top_k, per_page=per_page, use_message_passing=message_passing)
    return [
        {"url": s.span.url, "index": s.span.index, "text": s.span.text, "relevance": round(s.relevance, 5),
         "message": round(s.message, 5), "score": round(s.score, 5)}
        for s in chosen
    ], dropped


class ItemVectors:
    """Item-metadata embeddings, computed once per item per process."""

    def __init__(self, embedder, text_of):
        self.embedder = embedder
        self.text_of = text_of
        self._vecs: dict[str, np.ndarray] = {}

    def get(self, item_ids: list[str]) -> np.ndarray:
        todo = [i for i in dict.fromkeys(item_ids) if i not in self._vecs]
        if todo:
            for iid, vec in zip(todo, self.embedder.embed([self.text_of(i) for i in todo])):
                self._vecs[iid] = vec
        return np.stack([self._vecs[i] for i in item_ids]) if item_ids else np.zeros((0, 1), dtype=np.float32)


def evidence_features(evidence: list[dict], embedder, item_vectors: ItemVectors, item_ids: list[str],
                      titles: list[str]) -> dict:
    """The per-item evidence feature (tools.evidence.item_evidence) for the candidates."""
    if not item_ids or not evidence:
        return {}  # no evidence: every item's feature is 0 (callers treat a missing entry so)
    selected = [ScoredSpan(Span(e["url"], e["index"], e["text"], frozenset(), frozenset()),
                           e["relevance"], e["message"], e["score"]) for e in evidence]
    span_vecs = embedder.embed([e["text"] for e in evidence])
    return item_evidence(selected, span_vecs, item_ids, titles, item_vectors.get(item_ids))


def open_web_client(mode: str, web_dir: str | None, allow_host: list[str], settings, recsys, *, noisy: bool = True):
    """A WebClient for the mode (not entered). Local mode builds the local web from the catalog."""
    from placecell.agents.recommend.catalog import web_items
    from placecell.tools.web.client import FetchOptions, WebClient
    from placecell.tools.web.localweb import build_local_web, default_injection_count

    pages = None
    if mode == "local":
        items = web_items(recsys.catalog)
        pages = build_local_web(items, injections=default_injection_count(len(items)) if noisy else 0)
    options = FetchOptions(timeout=settings.fetch_timeout, max_bytes=settings.fetch_max_bytes,
                           allow_hosts=tuple(settings.allow_hosts) + tuple(allow_host), budget=settings.fetch_budget)
    return WebClient(mode, web_dir=Path(web_dir) if web_dir else None, cache_dir=Path(settings.data_dir) / "cache",
                     local_pages=pages, options=options)
