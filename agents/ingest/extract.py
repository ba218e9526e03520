"""NeuroPath's OpenIE: one LLM call per passage, named entities + triples.

What was measured on qwen2.5-coder-0.5b (2 cores) and chosen for it:
- An example inside the instructions is copied verbatim by small models (facts of the example
  passage turned up in unrelated passages). The example is given as a separate earlier chat
  turn about a clearly different topic instead: no copying seen, cleaner relations.
- The model writes triples only; the entities are their heads and tails. NeuroPath uses the NER
  list only for statistics (its graph nodes are the triple ends), and dropping it cuts the
  model's own tokens, nearly all of the extraction cost, by about 40 %.
- Every array has `maxItems` (without it a small model repeats until the token limit); strings
  have `maxLength`. Triples are compact 3-string arrays, not objects.
- The fixed instructions and example come first, so llama.cpp reuses their KV cache between
  passages and evaluates only the new passage.
Results are cached by passage hash, in a file per model sha256 + prompt/schema version, so
unchanged input never costs an LLM call twice.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from placecell import prompts

Phrase = Annotated[str, StringConstraints(max_length=50)]


class Extraction(BaseModel):
    triples: list[Annotated[list[Phrase], Field(min_length=3, max_length=3)]] = Field(
        default_factory=list, max_length=10)


PROMPTS = ("extract_system", "extract_example_user", "extract_example_assistant", "extract_user")
SCHEMA_VERSION = prompts.version(*PROMPTS, extra=json.dumps(Extraction.model_json_schema(), sort_keys=True))
MAX_PASSAGE_CHARS = 2400  # ~600 tokens: longer file chunks are cut for extraction only


def extraction_messages(passage_text: str) -> list[dict]:
    return [
        {"role": "system", "content": prompts.load("extract_system")},
        {"role": "user", "content": prompts.load("extract_example_user").strip()},
        {"role": "assistant", "content": prompts.load("extract_example_assistant").strip()},
        {"role": "user", "content": prompts.load("extract_user").format(passage=passage_text[:MAX_PASSAGE_CHARS])},
    ]


def extract_passage(llm, passage_text: str) -> dict:
    """{"entities": [...], "triples": [[h, r, t], ...], "failed": bool}."""
    failed = Extraction()
    result = llm.structured(extraction_messages(passage_text), Extraction, fallback=failed, node="extract",
                            max_tokens=360)
    triples = [[part.strip() for part in t] for t in result.triples]
    entities = list(dict.fromkeys(e for h, _, t in triples for e in (h, t) if e))
    return {"entities": entities, "triples": triples, "failed": result is failed}
