"""The reader: answer from the top passages; citations are built in code from the passage ids
given to the model, never asked of it."""

from __future__ import annotations

import re

from placecell import prompts

_ANSWER = re.compile(r"answer(?:\s+is)?\s*:?\s*(.+)", re.I)
_LIST_MARK = re.compile(r"^\s*(?:\[\d+\]|\(?\d+[.)]|[-*•])\s*")


def format_passages(passages, max_chars: int) -> str:
    blocks, used = [], 0
    for i, p in enumerate(passages, 1):
        text = p.text[: max(200, max_chars - used)]
        used += len(text)
        blocks.append(f"[{i}] {text}")
        if used >= max_chars:
            break
    return "\n\n".join(blocks)


def reader_messages(question: str, passages, max_chars: int = 6000) -> list[dict]:
    return [{"role": "system", "content": prompts.load("reader_system")},
            {"role": "user", "content": prompts.load("reader_user").format(
                passages=format_passages(passages, max_chars), question=question)}]


def parse_answer(text: str) -> str:
    """The text after the last 'Answer:'; else the first line. Trailing punctuation removed."""
    matches = _ANSWER.findall(text)
    answer = matches[-1] if matches else (text.strip().splitlines() or [""])[0]
    answer = _LIST_MARK.sub("", answer.strip().strip("*").strip())
    return answer.strip().rstrip(".").strip().strip('"').strip()
