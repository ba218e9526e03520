"""The one structured-output helper every LLM decision goes through.

1. constrained decoding against the pydantic model's JSON schema,
2. lenient parse (first JSON object in the text) + pydantic validation,
3. one bounded retry that shows the model its validation error,
4. then a typed fallback (a model instance, or a callable returning one), counted as such.
Token, call and time accounting happens in the backends; fallbacks are counted here.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Callable, TypeVar

from pydantic import BaseModel, ValidationError

from placecell.tools.llm.usage import record_fallback

T = TypeVar("T", bound=BaseModel)
log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def first_json_object(text: str):
    """Parse the first JSON object in `text` (fences, prose around it and a truncated tail
    are tolerated where possible). Raises ValueError when there is none."""
    text = text.strip()
    m = _FENCE.search(text)
    if m:
        text = m.group(1).strip()
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the model's output")
    decoder = json.JSONDecoder()
    try:
        obj, _ = decoder.raw_decode(text[start:])
        return obj
    except json.JSONDecodeError:
        pass
    # A generation cut at max_tokens: close the open brackets and try once more.
    closed = _close_brackets(text[start:])
    return json.loads(closed)


def _close_brackets(fragment: str) -> str:
    stack, in_str, esc = [], False, False
    for ch in fragment:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = fragment.rstrip().rstrip(",")
    if in_str:
        tail += '"'
    return tail + "".join(reversed(stack))


def schema_for(schema_cls: type[BaseModel]) -> dict:
    schema = schema_cls.model_json_schema()
    schema.pop("title", None)
    return schema


def structured_call(llm, messages: list[dict], schema_cls: type[T], fallback: T | Callable[[], T], *,
                    node: str, max_tokens: int = 512, retries: int = 1) -> T:
    schema = schema_for(schema_cls)
    attempt_messages = list(messages)
    for attempt in range(retries + 1):
        result = llm.chat_json(attempt_messages, schema, max_tokens=max_tokens, node=node)
        try:
            return schema_cls.model_validate(first_json_object(result.text))
        except (ValueError, ValidationError) as exc:
            problem = str(exc).splitlines()[0][:300]
            log.info("%s: invalid structured output (attempt %d): %s", node, attempt + 1, problem)
            attempt_messages = list(messages) + [
                {"role": "assistant", "content": result.text[:2000]},
                {"role": "user", "content": f"That was not valid ({problem}). Answer again with JSON only, "
                 "following the schema."},
            ]
    record_fallback(node)
    return fallback() if callable(fallback) else fallback
