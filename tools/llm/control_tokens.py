"""Text in a message must not become a chat-control token.

llama.cpp tokenizes the rendered prompt with special tokens parsed, so a web page or a document
containing `<|im_start|>system` opened a real system turn in the middle of a user message (seen
with qwen2.5-coder: the forged turn was obeyed). Every special token's text that appears inside
a message is broken with a WORD JOINER (U+2060) after its first character: it still reads the
same, but tokenizes as plain text. The in-process backend knows its model's exact special tokens;
for a remote server, whose tokenizer we cannot see, the common families are matched by pattern.
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
# ChatML and most recent templates (<|...|>), DeepSeek's full-width bars, Llama 2 / Mistral,
# Gemma, and the classic sentence markers.
COMMON_CONTROL = re.compile(r"<\|[^|<>\s]{1,40}\|>|<｜[^｜<>]{1,40}｜>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>|</?s>")


def _break(token: str) -> str:
    return token[0] + WORD_JOINER + token[1:]


def defuse(text: str, specials: tuple[str, ...] = ()) -> str:
    """`text` with every special-token text in it (the model's own list, then the common
    patterns) made plain."""
    for token in specials:
        if token in text:
            text = text.replace(token, _break(token))
    return COMMON_CONTROL.sub(lambda m: _break(m.group(0)), text)


def defuse_messages(messages: list[dict], specials: tuple[str, ...] = ()) -> list[dict]:
    """Copies of the messages whose string contents are defused (the caller's list is not changed)."""
    out = []
    for message in messages:
        content = message.get("content")
        out.append({**message, "content": defuse(content, specials)} if isinstance(content, str) else message)
    return out
