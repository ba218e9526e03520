"""Reasoning models' <think> blocks are removed from completions, streamed or not."""

from __future__ import annotations

import random

import pytest

from placecell.tools.llm.thinking import ThinkingFilter, answer_tokens, strip_stream, strip_thinking

CASES = [
    ("Paris.", "Paris."),
    ("<think>The user asks about France.</think>\n\nParis.", "Paris."),
    ("<think>\nhmm {\"not\": \"this\"}\n</think>{\"answer\": \"Paris\"}", "{\"answer\": \"Paris\"}"),
    ("The template opened it. </think>\nParis.", "Paris."),  # Qwen3 / R1 templates put <think> in the prompt
    ("<think>cut at max_tokens, never closed", ""),
    ("A <think>aside</think>B<think>again</think> C", "A B C"),
    ("a < b and c > d", "a < b and c > d"),  # angle brackets that are no tag stay
]


@pytest.mark.parametrize("text, expected", CASES)
def test_strip_thinking(text, expected):
    assert strip_thinking(text) == expected


@pytest.mark.parametrize("text, expected", [c for c in CASES if "</think>" not in c[0].split("<think>")[0]])
def test_the_stream_filter_agrees_however_the_text_is_chunked(text, expected):
    rng = random.Random(0)
    for _ in range(50):  # tags split across chunk boundaries at every place
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 8))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        assert "".join(strip_stream(pieces)) == expected
    assert "".join(strip_stream([text], enabled=False)) == text


def test_a_stream_drops_a_lone_closing_tag():
    # what came before it was already shown; only the tag itself can still be dropped
    flt = ThinkingFilter()
    shown = flt.feed("thinking aloud </th") + flt.feed("ink>Paris.") + flt.flush()
    assert shown == "thinking aloud Paris."


def test_generated_tokens_inside_a_block_are_dropped_with_their_values():
    tokens = ["<think>", "user", " likes", "</think>", "\n", "sea", " stories"]
    kept, values = answer_tokens(tokens, list(range(len(tokens))))
    assert kept == ["\n", "sea", " stories"] and values == [4, 5, 6]
    assert answer_tokens(["sea", " stories"], [1.0, 2.0]) == (["sea", " stories"], [1.0, 2.0])
