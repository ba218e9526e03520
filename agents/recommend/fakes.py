"""Deterministic stand-ins for the LLM and the embedder, for offline tests (not used by the product).

`ScriptedLLM` answers each node from a function of the messages (default: a fixed preference
note built from the history lines of the prompt) and reports made-up but deterministic
entropies; it records usage like a real backend. `HashingEmbedder` is a bag-of-words feature
hashing embedder (L2-normalised), the same vector for the same text on every machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Callable, Iterator

import numpy as np

from placecell.tools.llm.base import LLM, ChatResult, GenerationTrace
from placecell.tools.llm.usage import record
from placecell.tools.web.text import content_words


def _stable_unit(text: str) -> float:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def history_echo(messages: list[dict]) -> str:
    """A preference note naming the tags listed in the prompt's history lines ("- title | tags: ...")."""
    tags: list[str] = []
    for line in messages[-1]["content"].splitlines():
        match = re.search(r"tags:\s*(.+)$", line)
        if match:
            tags += [t.strip() for t in match.group(1).split(",") if t.strip()]
    top = list(dict.fromkeys(tags))[:6] or ["classics"]
    return (f"This reader enjoys {', '.join(top)}. They would like more {top[0]} with {top[-1]} themes, "
            f"for example well reviewed {top[0]} titles.")


def numbered_reasons(messages: list[dict]) -> str:
    """JSON reasons for the numbered item lines ("3. Title | tags: a, b") of an explain prompt."""
    reasons = []
    for line in messages[-1]["content"].splitlines():
        match = re.match(r"(\d+)\. (.+?)(?: \| tags: (.+))?$", line)
        if match:
            about = match.group(3) or match.group(2)
            reasons.append({"n": int(match.group(1)), "reason": f"Fits your taste for {about}."})
    return json.dumps({"reasons": reasons})


def default_script(messages: list[dict], node: str) -> str:
    return numbered_reasons(messages) if node == "explain" else history_echo(messages)


class ScriptedLLM(LLM):
    model_id = "scripted"

    def __init__(self, respond: Callable[[list[dict], str], str] = default_script):
        self.respond = respond

    def _result(self, messages, text: str, node: str) -> ChatResult:
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        completion_tokens = max(1, len(text) // 4)
        record(node, prompt_tokens, completion_tokens, 0.0)
        return ChatResult(text, prompt_tokens, completion_tokens, 0.0)

    def chat(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> ChatResult:
        return self._result(messages, self.respond(messages, node), node)

    def stream(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> Iterator[str]:
        yield self.chat(messages, node=node).text

    def chat_json(self, messages, schema, *, max_tokens=512, node="json") -> ChatResult:
        return self._result(messages, self.respond(messages, node), node)

    def next_token_probs(self, messages, candidates, *, prefix="", node="probe") -> dict[str, float]:
        return {c: 1.0 / len(candidates) for c in candidates}

    def generate_with_entropy(self, messages, *, max_tokens=256, node="generate") -> GenerationTrace:
        result = self.chat(messages, node=node)
        tokens = re.findall(r"\s*\S+", result.text)
        entropies = [round(3.0 * _stable_unit(t.strip().lower()), 4) for t in tokens]
        return GenerationTrace(result.text, result.prompt_tokens, result.completion_tokens, 0.0,
                               tokens=tokens, entropies=entropies)


class HashingEmbedder:
    """Feature-hashed bag of content words, L2-normalised. Deterministic, no model."""

    model_id = "hashing-256"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in content_words(text, min_len=2) or text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
