"""Metrics of the multi-hop eval, as NeuroPath / HippoRAG v1 compute them.

Recall@k (per question, then averaged): `|{g in gold : g in retrieved[:k]}| / |gold|` where, at
the passage level, gold = the exact `title + "\n" + text` strings of `supporting_passages` and
retrieved = the ranked passage strings; at the title level, gold = `supporting_titles` and
retrieved = the titles of the ranked passages.

EM / F1: SQuAD answer normalisation (lowercase, drop punctuation and articles, squash spaces),
the max over `[answer] + answer_aliases`. HotpotQA's and 2Wiki's official F1 gives 0 when either
side is yes / no / noanswer and they differ; applied everywhere, as it only matters for those.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

KS = (1, 2, 5, 10)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_SPECIAL = {"yes", "no", "noanswer"}
_ANSWER_LINE = re.compile(r"answer(?:\s+is)?\s*:\s*(.+)", re.I | re.S)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def best_em_f1(prediction: str, answers: list[str]) -> tuple[float, float]:
    """EM and F1 against the best-matching accepted answer (each maximised on its own)."""
    answers = [a for a in answers if str(a).strip()] or [""]
    return max(exact_match(prediction, a) for a in answers), max(f1_score(prediction, a) for a in answers)


def prediction_text(answer: str | None) -> str:
    """The reader's short answer: the text after the last "Answer:" (NeuroPath's reader
    convention) or "answer is:" when the output has one, else the whole output; first line only."""
    text = str(answer or "").strip()
    matches = list(_ANSWER_LINE.finditer(text))
    if matches:
        text = matches[-1].group(1)
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def passage_string(title: str, text: str) -> str:
    """A corpus record's passage string, exactly as the loader stores it."""
    title, text = str(title).strip(), str(text).strip()
    return f"{title}\n{text}" if title else text


def recall_at_k(retrieved: list[str], gold: set[str], k: int) -> float:
    if not gold:
        return 0.0
    top = set(retrieved[:k])
    return sum(1 for g in gold if g in top) / len(gold)


def gold_items(question: dict, level: str) -> set[str]:
    if level == "title":
        return {str(t) for t in question.get("supporting_titles", [])}
    return {passage_string(p["title"], p["text"]) for p in question.get("supporting_passages", [])}


def retrieved_items(ranking: list[str], passages: dict, level: str) -> list[str]:
    """Passage ids -> the strings recall compares (unknown ids compare as themselves)."""
    out = []
    for pid in ranking:
        p = passages.get(pid)
        out.append(pid if p is None else (p.title if level == "title" else p.text))
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def summarise(records: list[dict], questions: dict[str, dict], passages: dict, level: str) -> dict:
    """One method's metrics over its per-question records (see `evals/multihop.py`)."""
    n = len(records)
    out: dict = {}
    for k in KS:
        values = [recall_at_k(retrieved_items(r["ranking"], passages, level), gold_items(questions[r["id"]], level), k)
                  for r in records]
        out[f"recall@{k}"] = round(float(np.mean(values)), 4) if n else 0.0
    answered = [r for r in records if r.get("answer") is not None]
    scores = [best_em_f1(prediction_text(r["answer"]), [questions[r["id"]]["answer"],
                                                        *questions[r["id"]].get("answer_aliases", [])])
              for r in answered]
    out["em"] = round(float(np.mean([s[0] for s in scores])), 4) if scores else None
    out["f1"] = round(float(np.mean([s[1] for s in scores])), 4) if scores else None
    out.update(usage_summary(records))
    out["questions"] = n
    return out


READER_NODE = "read"  # the QA graph's reader node, as the usage meter names it


def usage_summary(records: list[dict]) -> dict:
    """Tokens, calls and times per question. Seconds are wall time minus the time spent waiting
    for the model's turn while another process (a background extraction, another eval) was using
    it: what the question costs on a machine it has to itself. The raw wall times are kept."""
    n = max(1, len(records))
    usage = [r.get("usage", {}) for r in records]
    raw = [float(r.get("seconds", 0.0)) for r in records]
    wall = [max(0.0, w - float(u.get("wait_seconds", 0.0))) for w, u in zip(raw, usage)]
    llm_seconds = sum(float(u.get("seconds", 0.0)) for u in usage)
    prompt = sum(int(u.get("prompt_tokens", 0)) for u in usage)
    completion = sum(int(u.get("completion_tokens", 0)) for u in usage)
    # The reader's call is the same for every method; the rest is what the retriever itself costs.
    reader = sum(int(n.get("prompt_tokens", 0)) + int(n.get("completion_tokens", 0))
                 for r in records for node, n in (r.get("usage_by_node") or {}).items() if node == READER_NODE)
    return {
        "tokens_per_question": round((prompt + completion) / n, 1),
        "prompt_tokens_per_question": round(prompt / n, 1),
        "completion_tokens_per_question": round(completion / n, 1),
        "retrieval_tokens_per_question": round((prompt + completion - reader) / n, 1),
        "llm_calls_per_question": round(sum(int(u.get("llm_calls", 0)) for u in usage) / n, 2),
        "p50_seconds": round(percentile(wall, 50), 3),
        "p95_seconds": round(percentile(wall, 95), 3),
        "llm_time_share": round(llm_seconds / sum(wall), 4) if sum(wall) > 0 else 0.0,
        "p50_wall_seconds": round(percentile(raw, 50), 3),
        "wait_share": round(1 - sum(wall) / sum(raw), 4) if sum(raw) > 0 else 0.0,
    }
