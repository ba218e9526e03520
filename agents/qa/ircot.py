"""IRCoT-style iterative retrieval, the iterative baseline of the NeuroPath paper.

As NeuroPath runs it (`src/baselines/ircot_246.py`, `--max_steps 3`): retrieve with the question,
then alternate "the LLM writes the next chain-of-thought sentence from the passages so far" and
"retrieve with that sentence", until a sentence says "answer is" or the step budget is spent.
Step i retrieves `step_ks[i]` passages (2, 4, 6: the "246"); a passage found again keeps its best
score, and the merged pool is ranked by score, so a second-hop passage can overtake first-hop
ones. Slots the pool leaves empty are filled by the question's own ranking, so the output is
always `k` long. Every reasoning call is counted under `node="ircot"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from placecell import prompts
from placecell.tools.retrievers import Ranking, dense

STEP_KS = (2, 4, 6)
ANSWER_MARK = "answer is"
PASSAGE_CHARS = 800   # the reasoner reads at most this much of each passage
THOUGHT_TOKENS = 64
_LEAD = re.compile(r"^(next step|thought)\s*:\s*", re.I)


@dataclass
class IrcotResult:
    ranking: Ranking
    thoughts: list[str] = field(default_factory=list)
    steps: int = 1  # retrieval steps run


def passages_block(passages) -> str:
    return "\n".join(f"Wikipedia Title: {p.text[:PASSAGE_CHARS]}" for p in passages)


def parse_thought(text: str) -> str:
    """The first line of the generation that is a sentence: without a repeated "Next step:"
    label, and not a passage header the model copied from the prompt."""
    for line in text.strip().splitlines():
        line = _LEAD.sub("", line.strip()).strip()
        if line and not line.lower().startswith("wikipedia title:"):
            return line[:300]
    return ""


def fit_passages(llm, question: str, passages: list, thoughts: list[str]) -> list[dict]:
    """The reasoning prompt; the lowest-ranked passages are dropped until it fits the context."""
    passages = list(passages)
    while True:
        prompt = prompts.load("ircot_step").format(
            passages=passages_block(passages) or "(none)", question=question, thoughts=" ".join(thoughts) or "(none)")
        messages = [{"role": "user", "content": prompt}]
        if not passages or llm.count_tokens(prompt) + THOUGHT_TOKENS + 64 <= getattr(llm, "n_ctx", 4096):
            return messages
        passages.pop()


def next_thought(llm, question: str, passages: list, thoughts: list[str]) -> str:
    messages = fit_passages(llm, question, passages, thoughts)
    return parse_thought(llm.chat(messages, max_tokens=THOUGHT_TOKENS, stop=["\n\n"], node="ircot").text)


def merge_best(pool: dict[str, float], found: Ranking) -> None:
    for pid, score in found:
        pool[pid] = max(pool.get(pid, score), score)


def ranked(pool: dict[str, float]) -> Ranking:
    return sorted(pool.items(), key=lambda item: -item[1])


def run_ircot(question: str, backends, k: int = 10, *, step_ks: tuple[int, ...] = STEP_KS, retrieve=dense,
              llm=None) -> IrcotResult:
    llm = llm or backends.get_llm()
    registry = backends.get_registry()
    pool: dict[str, float] = {}
    merge_best(pool, retrieve(question, backends, step_ks[0]))
    thoughts: list[str] = []
    steps = 1
    for step_k in step_ks[1:]:
        order = [pid for pid, _ in ranked(pool)]
        rows = registry.get_many(order)
        thought = next_thought(llm, question, [rows[pid] for pid in order if pid in rows], thoughts)
        if not thought:
            break
        thoughts.append(thought)
        if ANSWER_MARK in thought.lower():
            break
        merge_best(pool, retrieve(thought, backends, step_k))
        steps += 1
    ranking = ranked(pool)[:k]
    if len(ranking) < k:
        taken = set(pool)
        ranking += [(pid, s) for pid, s in retrieve(question, backends, k + len(taken)) if pid not in taken]
    return IrcotResult(ranking=ranking[:k], thoughts=thoughts, steps=steps)


def ircot_retrieve(question: str, backends, k: int = 10, **kw) -> Ranking:
    """The retriever interface (`fn(question, backends, k) -> [(id, score)]`)."""
    return run_ircot(question, backends, k, **kw).ranking
