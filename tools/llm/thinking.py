"""Reasoning models (Qwen3, DeepSeek-R1 distills, QwQ) write their thinking between `<think>` and
`</think>` before the answer. It is not the answer: shown to the user it buries the reply, and
parsed as JSON its braces are taken for the output. Some chat templates open the block in the
prompt, so the output holds only the closing tag. `PLACECELL_LLM_STRIP_THINKING` (on by default)
removes both forms from every completion, streamed or not."""

from __future__ import annotations

from typing import Iterator

OPEN, CLOSE = "<think>", "</think>"


def answer_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) character ranges of `text` outside thinking blocks and their tags. An unclosed
    block (cut at max_tokens) runs to the end; a closing tag with no opening one ends a block the
    prompt opened."""
    spans, pos = [], 0
    close, open_ = text.find(CLOSE), text.find(OPEN)
    if close >= 0 and (open_ < 0 or close < open_):
        pos = close + len(CLOSE)
    while True:
        i = text.find(OPEN, pos)
        if i < 0:
            spans.append((pos, len(text)))
            break
        spans.append((pos, i))
        j = text.find(CLOSE, i + len(OPEN))
        if j < 0:
            break
        pos = j + len(CLOSE)
    return [(a, b) for a, b in spans if b > a]


def strip_thinking(text: str) -> str:
    """The text without its thinking blocks."""
    if OPEN not in text and CLOSE not in text:
        return text
    return "".join(text[a:b] for a, b in answer_spans(text)).strip()


def answer_tokens(tokens: list[str], values: list) -> tuple[list[str], list]:
    """The generated tokens (and a per-token value, such as its entropy) outside thinking blocks:
    a token is kept when all of its characters are."""
    text = "".join(tokens)
    if OPEN not in text and CLOSE not in text:
        return tokens, values
    spans = answer_spans(text)
    kept_tokens, kept_values, pos = [], [], 0
    for token, value in zip(tokens, values):
        end = pos + len(token)
        if any(a <= pos and end <= b for a, b in spans):
            kept_tokens.append(token)
            kept_values.append(value)
        pos = end
    return kept_tokens, kept_values


def _partial_tag_at_end(text: str, tag: str) -> int:
    """Length of the longest end of `text` that starts `tag` (a tag split across stream chunks)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkingFilter:
    """`strip_thinking` for a stream: feed chunks, get what can be shown so far. Text before a
    closing tag that had no opening one has already been shown by then; only the tag is dropped."""

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self._shown_any = False

    def feed(self, piece: str) -> str:
        self._buffer += piece
        shown: list[str] = []
        while True:
            if self._inside:
                j = self._buffer.find(CLOSE)
                if j < 0:
                    keep = _partial_tag_at_end(self._buffer, CLOSE)
                    self._buffer = self._buffer[len(self._buffer) - keep:] if keep else ""
                    break
                self._buffer = self._buffer[j + len(CLOSE):]
                self._inside = False
                if not (self._shown_any or "".join(shown).strip()):  # the answer starts after the block
                    self._buffer = self._buffer.lstrip()
                continue
            i, j = self._buffer.find(OPEN), self._buffer.find(CLOSE)
            if j >= 0 and (i < 0 or j < i):  # a block the prompt opened
                shown.append(self._buffer[:j])
                self._buffer = self._buffer[j + len(CLOSE):]
                continue
            if i >= 0:
                shown.append(self._buffer[:i])
                self._buffer = self._buffer[i + len(OPEN):]
                self._inside = True
                continue
            keep = max(_partial_tag_at_end(self._buffer, OPEN), _partial_tag_at_end(self._buffer, CLOSE))
            shown.append(self._buffer[: len(self._buffer) - keep])
            self._buffer = self._buffer[len(self._buffer) - keep:]
            break
        text = "".join(shown)
        if not self._shown_any:
            text = text.lstrip()
        self._shown_any = self._shown_any or bool(text)
        return text

    def flush(self) -> str:
        """What is left at the end of the stream (nothing when it ended inside a block)."""
        rest, self._buffer = ("" if self._inside else self._buffer), ""
        return rest if self._shown_any else rest.lstrip()


def strip_stream(pieces: Iterator[str], enabled: bool = True) -> Iterator[str]:
    """Yield the chunks of `pieces` with thinking removed. Closing this generator (Ctrl-C, a
    consumer that stops early) closes `pieces` at once, so a backend's own clean-up (usage
    accounting, releasing the model lock) runs then, not whenever it is garbage-collected."""
    flt = ThinkingFilter() if enabled else None
    try:
        for piece in pieces:
            shown = flt.feed(piece) if flt is not None else piece
            if shown:
                yield shown
        tail = flt.flush() if flt is not None else ""
        if tail:
            yield tail
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
