"""Query generation from the LLM's preference reasoning, as WebRec scores tokens:
s_i = s_attention_i * s_entropy_i, top keywords -> a few web queries.

- s_entropy: the entropy (nats) of the model's next-token distribution at the step that produced
  the word's first token (read from the logits during generation, no `logits_all`), divided by
  the largest entropy in the reasoning. A word the model was unsure about marks information
  the model lacks: what the web should supply.
- s_attention is a **proxy** (`attention_proxy`): llama.cpp exposes no attention weights. The
  paper's s_attention_i is the largest attention token i receives from any later token. The
  proxy computes a one-head causal attention over *static* word vectors (MiniLM embeddings of
  each word on its own, no context): a_ji = softmax_{i<=j}(cos(e_j, e_i) / tau), and takes
  s_attention_i = max_{j>i} a_ji * (j + 1) (times the row length, so early words are not
  favoured merely for competing with fewer words). It runs over content words only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from placecell.tools.web.text import STOPWORDS, content_words

_WORD_CHARS = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")


@dataclass(frozen=True)
class Keyword:
    word: str
    position: int  # index of the first occurrence among content words
    s_attention: float
    s_entropy: float
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def words_with_entropy(tokens: list[str], entropies: list[float]) -> list[tuple[str, float]]:
    """Merge sub-word tokens into words; a word keeps the entropy of its first token (the step
    where the model chose the word; later pieces are near-certain)."""
    merged: list[tuple[str, float]] = []
    current, current_h = "", 0.0
    for token, h in zip(tokens, entropies):
        starts_new = not current or token[:1].isspace() or not token.strip()[:1].isalnum()
        piece = token.strip()
        if starts_new:
            if current:
                merged.append((current, current_h))
            current, current_h = "", h
        for ch in piece:
            if ch.isalnum() or ch in "'-":
                current += ch
            else:  # punctuation inside a token ends the word
                if current:
                    merged.append((current, current_h))
                current, current_h = "", h
    if current:
        merged.append((current, current_h))
    return merged


def attention_proxy(vectors: np.ndarray, tau: float = 0.1) -> np.ndarray:
    """s_attention proxy for a sequence of L2-normalised word vectors (see module docstring)."""
    n = len(vectors)
    if n < 2:
        return np.ones(n, dtype=np.float32)
    logits = vectors @ vectors.T / tau
    received = np.zeros(n, dtype=np.float32)
    for j in range(1, n):  # row j attends over positions 0..j (causal, self included)
        row = np.exp(logits[j, : j + 1] - logits[j, : j + 1].max())
        row /= row.sum()
        received[:j] = np.maximum(received[:j], row[:j] * (j + 1))
    return received


def score_keywords(tokens: list[str], entropies: list[float], embedder, top_k: int = 9) -> list[Keyword]:
    """The reasoning's top keywords by s = s_attention_proxy * s_entropy."""
    seq = [(w.lower(), h) for w, h in words_with_entropy(tokens, entropies)
           if _WORD_CHARS.match(w) and len(w) >= 3 and w.lower() not in STOPWORDS]
    if not seq:
        return []
    vocab = sorted({w for w, _ in seq})
    vecs = embedder.embed(vocab)
    index = {w: k for k, w in enumerate(vocab)}
    s_att = attention_proxy(vecs[[index[w] for w, _ in seq]])
    h = np.array([max(0.0, e) for _, e in seq], dtype=np.float32)
    s_ent = (h + 1e-3) / (h.max() + 1e-3)
    best: dict[str, Keyword] = {}
    for pos, ((word, _), att, ent) in enumerate(zip(seq, s_att, s_ent)):
        kw = Keyword(word, pos, round(float(att), 6), round(float(ent), 6), round(float(att * ent), 6))
        if word not in best or kw.score > best[word].score:
            best[word] = Keyword(word, best[word].position if word in best else pos, kw.s_attention, kw.s_entropy, kw.score)
    ranked = sorted(best.values(), key=lambda k: (-k.score, k.position))
    return ranked[:top_k]


def queries_from_keywords(keywords: list[Keyword], n_queries: int = 3, suffix: str = "") -> list[str]:
    """Interleave the ranked keywords into n queries (q1 = k1, k4, k7; q2 = k2, k5, k8; ...), so
    each query leads with a strong keyword."""
    words = [k.word for k in keywords]
    groups = [words[q::n_queries] for q in range(n_queries)]
    return [" ".join(g + ([suffix] if suffix else [])) for g in groups if g]


def direct_queries(history_titles: list[str], n_queries: int = 3, suffix: str = "") -> list[str]:
    """The baseline without reasoning: the titles of the most recent history items as queries."""
    recent = list(dict.fromkeys(reversed(history_titles)))[:n_queries]
    return [f"{title} {suffix}".strip() for title in recent]


def fallback_keywords(text: str, top_k: int = 9) -> list[Keyword]:
    """When no trace is available (a backend without entropies): most frequent content words."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for pos, word in enumerate(content_words(text)):
        counts[word] = counts.get(word, 0) + 1
        first.setdefault(word, pos)
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))[:top_k]
    return [Keyword(w, first[w], 1.0, 1.0, float(counts[w])) for w in ranked]
