"""The one LLM interface both backends implement."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str = "stop"


@dataclass
class GenerationTrace(ChatResult):
    """A generation with the entropy (nats) of the next-token distribution at each step."""

    tokens: list[str] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)


def entropy_from_logits(logits) -> float:
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max()
    p = np.exp(x)
    p /= p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def entropy_from_logprobs(logprobs: list[float]) -> float:
    """Entropy over the returned top alternatives (a lower bound of the full entropy)."""
    ps = [math.exp(lp) for lp in logprobs]
    total = sum(ps) or 1.0
    return -sum((p / total) * math.log(p / total) for p in ps if p > 0)


class LLM(ABC):
    """Chat, streaming, JSON-schema constrained output, next-token probabilities."""

    model_id: str  # stable id used in cache keys (a GGUF's sha256, or backend+model name)
    n_ctx: int = 4096
    strip_thinking: bool = True  # reasoning models' <think> blocks are not the answer (tools/llm/thinking.py)

    @abstractmethod
    def chat(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
             stop: list[str] | None = None, node: str = "chat") -> ChatResult: ...

    @abstractmethod
    def stream(self, messages: list[Message], *, max_tokens: int = 512, temperature: float = 0.0,
               stop: list[str] | None = None, node: str = "chat") -> Iterator[str]: ...

    @abstractmethod
    def chat_json(self, messages: list[Message], schema: dict, *, max_tokens: int = 512,
                  node: str = "json") -> ChatResult:
        """A completion constrained to `schema` (JSON Schema)."""

    @abstractmethod
    def next_token_probs(self, messages: list[Message], candidates: list[str], *,
                         prefix: str = "", node: str = "probe") -> dict[str, float]:
        """P(first token of each candidate) after the assistant turn starts with `prefix`,
        renormalised over the candidates. One forward pass, no generated text."""

    @abstractmethod
    def generate_with_entropy(self, messages: list[Message], *, max_tokens: int = 256,
                              node: str = "generate") -> GenerationTrace: ...

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def structured(self, messages, schema_cls, fallback, *, node: str = "json", max_tokens: int = 512,
                   retries: int = 1):
        from placecell.tools.llm.structured import structured_call

        return structured_call(self, messages, schema_cls, fallback, node=node, max_tokens=max_tokens,
                               retries=retries)

    @property
    def usage(self):
        from placecell.tools.llm.usage import GLOBAL_USAGE

        return GLOBAL_USAGE
