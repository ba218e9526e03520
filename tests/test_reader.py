"""Parsing the reader's answer and the passages it sees."""

from __future__ import annotations

import pytest

from placecell.agents.qa.reader import format_passages, parse_answer
from placecell.tools.stores.passages import Passage


@pytest.mark.parametrize("text,answer", [
    ("Thought: A leads to B.\nAnswer: Viscount Weymouth", "Viscount Weymouth"),
    ("Answer: 1) 1924 Winter Olympics", "1924 Winter Olympics"),
    ("The answer is: Dijon.", "Dijon"),
    ('Answer: "Malcolm X".', "Malcolm X"),
    ("Capitol Records", "Capitol Records"),
    ("Answer: [1]", ""),
])
def test_parse_answer(text, answer):
    assert parse_answer(text) == answer


def test_passages_are_numbered_and_budgeted():
    ps = [Passage(str(i), f"T{i}", f"T{i}\n" + "x" * 500) for i in range(5)]
    text = format_passages(ps, max_chars=1200)
    assert text.startswith("[1] T0") and "[3] T2" in text and "[4]" not in text
