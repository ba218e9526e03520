"""Evidence selection from noisy web pages: an MP-Head *analog*, outside the LLM.

WebRec (arXiv 2511.14182) adds a message-passing attention head *inside* the LLM so that distant
tokens of relevant evidence reinforce each other. llama.cpp gives no access to the model's heads,
so this module does the same thing one level up, at context selection, in numpy:

1. `split_spans`: pages -> spans of a few sentences.
2. `span_graph`: spans are nodes; two spans are linked when they share an entity (capitalised
   run, e.g. "Anne Frank") or at least two content keywords, across pages as well as within one.
3. relevance r_i = cos(span_i, z), with z the task vector (embedding of the user profile and
   the queries: the paper's task feature, here not learned).
4. one round of message passing: alpha_ij = softmax_j(cos(v_i, v_j) / tau + log w_ij) over the
   neighbours of i (w_ij = link strength), message m_i = sum_j alpha_ij * r_j
   (= z . sum_j alpha_ij W v_j with W = I, i.e. untrained), score_i = r_i + lambda * m_i.
   A span whose linked spans elsewhere are relevant rises; an isolated match does not.
5. keep the top spans, at most `per_page` from one page.

Untrusted content: spans that read as instructions to a model, and every span of a page the
fetcher flagged (visible or hidden instructions), are removed before any of this.

`item_evidence` turns the selected spans into the per-item *evidence feature*: how strongly the
selected evidence supports each catalog item (semantic support plus explicit title mentions).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from placecell.tools.web.text import content_words, entities, normalise_title, words
from placecell.tools.web.untrusted import instruction_like


@dataclass(frozen=True)
class Span:
    url: str
    index: int  # position in its page
    text: str
    keywords: frozenset[str]
    entities: frozenset[str]


@dataclass(frozen=True)
class ScoredSpan:
    span: Span
    relevance: float  # cos(span, task)
    message: float  # neighbour relevance received in the message-passing round
    score: float


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def split_spans(text: str, url: str, max_chars: int = 320, min_chars: int = 30) -> list[Span]:
    """Sentences packed greedily into spans of at most `max_chars` (a longer sentence is its own span)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    packed: list[str] = []
    current = ""
    for sentence in sentences:
        if current and len(current) + 1 + len(sentence) > max_chars:
            packed.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        packed.append(current)
    spans = []
    for text_ in packed:
        if len(text_) < min_chars:
            continue
        spans.append(Span(url, len(spans), text_[: max_chars * 2], frozenset(content_words(text_)), frozenset(entities(text_))))
    return spans


def usable_spans(pages: list, max_spans_per_page: int = 12) -> tuple[list[Span], list[str]]:
    """Spans of pages (objects with url, title, text, flags), minus untrusted ones and exact
    repeats. Returns (spans, urls of pages dropped as instruction-carrying)."""
    spans: list[Span] = []
    dropped: list[str] = []
    seen_text: set[str] = set()
    for page in pages:
        if getattr(page, "flags", ()):
            dropped.append(page.url)
            continue
        page_spans = split_spans(page.text, page.url)[:max_spans_per_page]
        if any(instruction_like(s.text) for s in page_spans):
            dropped.append(page.url)
            continue
        for span in page_spans:
            key = " ".join(words(span.text))
            if key not in seen_text:
                seen_text.add(key)
                spans.append(span)
    return spans, dropped


def span_graph(spans: list[Span], min_shared_keywords: int = 2) -> list[dict[int, float]]:
    """Adjacency: neighbours[i] = {j: link strength}; strength = 2 * shared entities + shared keywords."""
    by_entity: dict[str, list[int]] = defaultdict(list)
    by_keyword: dict[str, list[int]] = defaultdict(list)
    for i, span in enumerate(spans):
        for ent in span.entities:
            by_entity[ent].append(i)
        for kw in span.keywords:
            by_keyword[kw].append(i)
    shared: list[dict[int, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in spans]
    for members in by_entity.values():
        for i in members:
            for j in members:
                if i != j:
                    shared[i][j][0] += 1
    for members in by_keyword.values():
        if len(members) > max(8, len(spans) // 4):
            continue  # a keyword on a quarter of all spans links everything and says nothing
        for i in members:
            for j in members:
                if i != j:
                    shared[i][j][1] += 1
    return [
        {j: 2.0 * ents + kws for j, (ents, kws) in links.items() if ents >= 1 or kws >= min_shared_keywords}
        for links in shared
    ]


def message_passing(
    span_vecs: np.ndarray, relevance: np.ndarray, neighbours: list[dict[int, float]], tau: float = 0.1
) -> np.ndarray:
    """One round: m_i = sum_j alpha_ij r_j, alpha_ij = softmax_j(cos(v_i, v_j)/tau + log w_ij)."""
    messages = np.zeros(len(relevance), dtype=np.float32)
    for i, links in enumerate(neighbours):
        if not links:
            continue
        js = np.fromiter(links.keys(), dtype=np.int64)
        strength = np.fromiter(links.values(), dtype=np.float32)
        logits = span_vecs[js] @ span_vecs[i] / tau + np.log(strength)
        alpha = np.exp(logits - logits.max())
        alpha /= alpha.sum()
        messages[i] = float(alpha @ relevance[js])
    return messages


def select_evidence(
    spans: list[Span],
    span_vecs: np.ndarray,
    task_vec: np.ndarray,
    *,
    top_k: int = 12,
    per_page: int = 3,
    mp_weight: float = 0.5,
    use_message_passing: bool = True,
) -> list[ScoredSpan]:
    """The top spans by r_i (+ mp_weight * m_i when message passing is on), at most `per_page`
    per page. Ties break by (url, index) so selection is deterministic."""
    if not spans:
        return []
    relevance = span_vecs @ task_vec
    messages = (
        message_passing(span_vecs, relevance, span_graph(spans)) if use_message_passing
        else np.zeros_like(relevance)
    )
    scores = relevance + mp_weight * messages
    order = sorted(range(len(spans)), key=lambda i: (-scores[i], spans[i].url, spans[i].index))
    kept: list[ScoredSpan] = []
    per_url: dict[str, int] = defaultdict(int)
    for i in order:
        if len(kept) >= top_k:
            break
        if per_url[spans[i].url] >= per_page:
            continue
        per_url[spans[i].url] += 1
        kept.append(ScoredSpan(spans[i], float(relevance[i]), float(messages[i]), float(scores[i])))
    return kept


@dataclass(frozen=True)
class ItemEvidence:
    score: float  # the evidence feature, in [0, 1]
    semantic: float  # weighted similarity of the item to the selected spans
    mentioned: bool  # a selected span names the item's title
    urls: tuple[str, ...]  # pages of the spans that support it most


def _mentions(span_text: str, title_norm: str) -> bool:
    # Very short titles ("It", "Us") would match everywhere: require two words or 6 characters.
    if len(title_norm) < 6 and " " not in title_norm:
        return False
    return f" {title_norm} " in f" {' '.join(words(span_text))} "


def item_evidence(
    selected: list[ScoredSpan],
    selected_vecs: np.ndarray,
    item_ids: list[str],
    item_titles: list[str],
    item_vecs: np.ndarray,
    *,
    mention_weight: float = 0.5,
    max_urls: int = 3,
) -> dict[str, ItemEvidence]:
    """The evidence feature per item: (1 - mention_weight) * semantic + mention_weight * mentioned.

    semantic = sum_s w_s * max(0, cos(item, span_s)), w = softmax of span scores (sums to 1),
    so it is a similarity in [0, 1]. A page can support an item at most through its own spans,
    and repeated text was removed upstream, so repetition cannot inflate support."""
    if not selected:
        return {iid: ItemEvidence(0.0, 0.0, False, ()) for iid in item_ids}
    span_scores = np.array([s.score for s in selected], dtype=np.float32)
    weights = np.exp((span_scores - span_scores.max()) / 0.05)
    weights /= weights.sum()
    sims = np.clip(item_vecs @ selected_vecs.T, 0.0, None)  # (items, spans)
    semantic = sims @ weights
    out = {}
    for row, (iid, title) in enumerate(zip(item_ids, item_titles)):
        title_norm = normalise_title(title)
        mentioned = [k for k, s in enumerate(selected) if _mentions(s.span.text, title_norm)]
        # Cite by the item's own similarity to each span, not by its weighted contribution: the
        # span weights are peaked (temperature 0.05), so ranking by contribution made every item
        # cite the same top page (the goodbooks eval's pages: 15 items, 1 URL).
        best = mentioned + [int(k) for k in np.argsort(-sims[row], kind="stable") if k not in mentioned]
        urls = tuple(dict.fromkeys(selected[k].span.url for k in best))[:max_urls]
        value = (1 - mention_weight) * float(semantic[row]) + mention_weight * (1.0 if mentioned else 0.0)
        out[iid] = ItemEvidence(round(value, 6), round(float(semantic[row]), 6), bool(mentioned), urls)
    return out
