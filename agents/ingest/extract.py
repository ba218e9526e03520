"""NeuroPath's OpenIE: one LLM call per passage for joint named entities + triples.

The schema bounds every array (`maxItems`): without it a small model repeats itself until the
token limit. Triples are compact 3-string arrays, not objects, to keep the model's own tokens
(nearly all of the cost) down. Results are cached by passage hash, in a file per model sha256 +
prompt/schema version, so unchanged input never costs an LLM call twice.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from placecell import prompts

Phrase = Annotated[str, StringConstraints(max_length=80)]


class Extraction(BaseModel):
    entities: list[Phrase] = Field(default_factory=list, max_length=12)
    triples: list[Annotated[list[Phrase], Field(min_length=3, max_length=3)]] = Field(
        default_factory=list, max_length=12)


SCHEMA_VERSION = prompts.version(
    "extract_system", "extract_user", extra=json.dumps(Extraction.model_json_schema(), sort_keys=True))
MAX_PASSAGE_CHARS = 2400  # ~600 tokens: longer file chunks are cut for extraction only


def extraction_messages(passage_text: str) -> list[dict]:
    # The fixed instructions come first so llama.cpp reuses their KV cache between passages.
    return [
        {"role": "system", "content": prompts.load("extract_system")},
        {"role": "user", "content": prompts.load("extract_user").format(passage=passage_text[:MAX_PASSAGE_CHARS])},
    ]


def extract_passage(llm, passage_text: str) -> dict:
    """{"entities": [...], "triples": [[h, r, t], ...], "failed": bool}."""
    failed = Extraction(entities=[], triples=[])
    result = llm.structured(extraction_messages(passage_text), Extraction, fallback=failed, node="extract",
                            max_tokens=400)
    return {"entities": list(result.entities), "triples": [list(t) for t in result.triples],
            "failed": result is failed}
