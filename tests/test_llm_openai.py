"""The OpenAI-compatible backend against a real `python -m llama_cpp.server` on 127.0.0.1."""

from __future__ import annotations

import sys

import pytest
from pydantic import BaseModel, Field

from placecell.tools.llm import usage_scope
from placecell.tools.llm.openai_compat import OpenAICompatLLM


@pytest.fixture(scope="module")
def server(small_model, local_server):
    base = local_server([sys.executable, "-m", "llama_cpp.server", "--model", str(small_model), "--host", "127.0.0.1",
                         "--port", "{port}", "--n_ctx", "2048", "--model_alias", "smol"], "/v1/models")
    return base + "/v1"


class Pet(BaseModel):
    name: str = Field(max_length=30)
    legs: int


def test_chat_stream_and_usage(server):
    llm = OpenAICompatLLM(server, model="smol", schema_format="json_object")
    with usage_scope() as u:
        r = llm.chat([{"role": "user", "content": "Say hello."}], max_tokens=8, node="remote")
        pieces = list(llm.stream([{"role": "user", "content": "Say hello."}], max_tokens=8, node="remote"))
    assert r.text and r.completion_tokens > 0 and r.prompt_tokens > 0
    assert "".join(pieces) == r.text
    assert u.snapshot()["remote"]["calls"] == 2


def test_structured_output_with_the_servers_schema_format(server):
    llm = OpenAICompatLLM(server, model="smol", schema_format="json_object")
    pet = llm.structured([{"role": "user", "content": "Describe a pet as JSON."}], Pet,
                         fallback=Pet(name="none", legs=0), node="pet", max_tokens=60)
    assert isinstance(pet, Pet)
    assert llm.response_format({"type": "object"}) == {"type": "json_object", "schema": {"type": "object"}}
    other = OpenAICompatLLM(server, schema_format="json_schema")
    assert other.response_format({"type": "object"})["json_schema"]["schema"] == {"type": "object"}


def test_next_token_probs_fall_back_without_logprobs(server):
    llm = OpenAICompatLLM(server, model="smol", schema_format="json_object")
    probs = llm.next_token_probs([{"role": "user", "content": "Is fire hot? Answer yes or no."}], ["yes", "no"])
    assert abs(sum(probs.values()) - 1) < 1e-6


def test_unreachable_endpoint_is_one_line():
    from placecell.errors import PlacecellError

    with pytest.raises(PlacecellError, match="unreachable"):
        OpenAICompatLLM("http://127.0.0.1:9/v1").chat([{"role": "user", "content": "x"}])


def test_the_served_model_is_part_of_the_id_when_the_name_is_not(server):
    """llama-cpp-python's server answers to any model name: with the id made of URL and name alone, a
    GGUF swapped behind them reused the old model's extractions and knowledge graph."""
    assert OpenAICompatLLM(server, model="smol").model_id == f"openai:{server}:smol"  # the listed name
    assert OpenAICompatLLM(server, model="local").model_id == f"openai:{server}:local@smol"
