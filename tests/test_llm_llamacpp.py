"""The in-process llama.cpp backend on the smallest real model (smollm2-135m)."""

from __future__ import annotations

import threading

import pytest
from pydantic import BaseModel, Field, field_validator

from placecell.tools.llm import usage_scope
from placecell.tools.llm.structured import first_json_object


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)


def test_chat_counts_tokens_and_time(small_llm):
    with usage_scope() as u:
        r = small_llm.chat([{"role": "user", "content": "Say hello."}], max_tokens=8, node="greet")
    assert r.text and 0 < r.completion_tokens <= 8 and r.prompt_tokens > 5
    node = u.snapshot()["greet"]
    assert node["calls"] == 1 and node["completion_tokens"] == r.completion_tokens and node["seconds"] > 0


def test_stream_yields_pieces_that_join_to_the_text(small_llm):
    msgs = [{"role": "user", "content": "List three colours."}]
    pieces = list(small_llm.stream(msgs, max_tokens=12))
    assert len(pieces) > 1
    assert "".join(pieces) == small_llm.chat(msgs, max_tokens=12).text


def test_json_schema_constrained_output(small_llm):
    r = small_llm.chat_json([{"role": "user", "content": "Give a city and its country as JSON."}],
                            City.model_json_schema(), max_tokens=60)
    City.model_validate(first_json_object(r.text))  # the grammar makes this valid


def test_structured_helper_falls_back_after_one_retry(small_llm):
    class Impossible(BaseModel):
        word: str = Field(max_length=10)

        @field_validator("word")
        @classmethod
        def never(cls, v):
            raise ValueError("never valid")

    fallback = Impossible.model_construct(word="fallback")
    with usage_scope() as u:
        out = small_llm.structured([{"role": "user", "content": "A word."}], Impossible, fallback, node="imp",
                                   max_tokens=20)
    assert out is fallback
    assert u.snapshot()["imp"]["calls"] == 2 and u.snapshot()["imp"]["fallbacks"] == 1


def test_next_token_probabilities_without_logits_all(small_llm):
    assert small_llm.llm._logits_all is False  # the scores matrix stays n_batch x vocab, not n_ctx x vocab
    probs = small_llm.next_token_probs([{"role": "user", "content": "Is water wet? Answer yes or no."}], ["yes", "no"])
    assert set(probs) == {"yes", "no"} and abs(sum(probs.values()) - 1) < 1e-6
    assert all(0 <= p <= 1 for p in probs.values())


def test_entropy_per_generated_token(small_llm):
    g = small_llm.generate_with_entropy([{"role": "user", "content": "Name a fruit."}], max_tokens=10)
    assert g.tokens and len(g.tokens) == len(g.entropies)
    assert all(e >= 0 for e in g.entropies) and max(g.entropies) > 0


def test_two_threads_share_one_model(small_llm):
    results = []

    def ask(q):
        results.append(small_llm.chat([{"role": "user", "content": q}], max_tokens=6).text)

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("Say one.", "Say two.")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and all(isinstance(r, str) for r in results)


def test_context_overflow_is_an_error_not_a_truncation(small_llm):
    from placecell.errors import PlacecellError

    with pytest.raises(PlacecellError, match="does not fit"):
        small_llm.chat([{"role": "user", "content": "word " * 5000}], max_tokens=10)


def test_langgraph_messages_mode_sees_tokens(small_llm):
    from langgraph.graph import START, StateGraph
    from typing_extensions import TypedDict

    from placecell.tools.llm.langchain import PlacecellChatModel

    class S(TypedDict):
        q: str
        a: str

    model = PlacecellChatModel(llm=small_llm, node="read", max_tokens=10)

    def read(state: S) -> dict:
        return {"a": model.invoke([("user", state["q"])]).content}

    graph = StateGraph(S).add_node("read", read).add_edge(START, "read").compile()
    chunks = [c for c, meta in graph.stream({"q": "Say hi."}, stream_mode="messages") if meta["langgraph_node"] == "read"]
    assert len(chunks) > 1
    assert "".join(c.content for c in chunks).strip()


@pytest.fixture(scope="module")
def stock_llm(small_model):
    """The same model on llama-cpp-python's own sampler chain (grammar over the whole vocabulary)."""
    from placecell.tools.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM(small_model, n_ctx=2048, n_threads=2, argmax_first_grammar=False)


@pytest.mark.parametrize("prompt", [
    "Give a city and its country as JSON.",
    "Write a poem about the sea.",  # the model wants prose: the grammar has to reject its choices
])
def test_argmax_first_grammar_sampling_matches_the_stock_sampler(small_llm, stock_llm, prompt):
    from placecell.tools.llm.grammar_sampling import GreedyGrammarSampler

    messages = [{"role": "user", "content": prompt}]
    schema = City.model_json_schema()
    # Both start from an empty KV cache: re-evaluating a cached prompt's last token alone gives
    # slightly different logits than evaluating it in the prompt's batch, enough to flip a near-tie.
    small_llm.llm.reset()
    fast = small_llm.chat_json(messages, schema, max_tokens=60)
    sampler = small_llm.llm._sampler
    # every generated token went through it (plus the end-of-generation token, not counted as output)
    assert isinstance(sampler, GreedyGrammarSampler) and sampler.tokens == fast.completion_tokens + 1
    assert sampler.full_passes > 0  # at least the opening brace is forced
    stock_llm.llm.reset()
    stock = stock_llm.chat_json(messages, schema, max_tokens=60)
    assert not isinstance(stock_llm.llm._sampler, GreedyGrammarSampler)
    assert fast.text == stock.text


def test_sampling_with_temperature_keeps_the_stock_chain(small_llm):
    """Argmax-first is only the same as masking first for greedy decoding."""
    import json

    from llama_cpp import LlamaGrammar

    from placecell.tools.llm.grammar_sampling import GreedyGrammarSampler

    grammar = LlamaGrammar.from_json_schema(json.dumps(City.model_json_schema()), verbose=False)
    prompt = small_llm.render([{"role": "user", "content": "A city as JSON."}])
    small_llm._complete(prompt, max_tokens=4, temperature=0.7, stop=None, grammar=grammar, node="t")
    assert not isinstance(small_llm.llm._sampler, GreedyGrammarSampler)
    small_llm._complete(prompt, max_tokens=4, temperature=0.0, stop=None, grammar=grammar, node="t")
    assert isinstance(small_llm.llm._sampler, GreedyGrammarSampler)


def test_generation_uses_every_core_by_default(small_model):
    import os

    from placecell.tools.llm.llamacpp import LlamaCppLLM

    llm = LlamaCppLLM(small_model, n_ctx=256)
    assert llm.llm.n_threads == llm.llm.n_threads_batch == len(os.sched_getaffinity(0))


def test_speed_benchmark_reports_both_samplers_with_the_same_text(small_model, tmp_path, write_jsonl):
    import json

    from placecell.evals import llm_speed

    corpus = write_jsonl(tmp_path / "c.jsonl", [
        {"title": "Ada Lovelace", "text": "Ada Lovelace was an English mathematician who worked with Charles Babbage."},
        {"title": "Tartu", "text": "Tartu is a city in Estonia on the Emajõgi river."}])
    out = tmp_path / "speed"
    assert llm_speed.main(["--model", str(small_model), "--corpus", str(corpus), "--passages", "2", "--offset", "0",
                           "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert {r["sampler"] for r in result["runs"]} == {"stock", "argmax_first"}
    assert all(r["same_text_as_stock"] and r["passages"] == 2 and r["completion_tokens"] > 0 for r in result["runs"])
    assert "machine:" in (out / "report.md").read_text()


def test_extra_buffer_setting():
    from placecell.errors import PlacecellError
    from placecell.tools.llm.llamacpp import build_has_amx, extra_buffers_enabled

    assert extra_buffers_enabled("on") is True and extra_buffers_enabled("off") is False
    assert extra_buffers_enabled("auto") is (not build_has_amx())
    with pytest.raises(PlacecellError, match="auto, on or off"):
        extra_buffers_enabled("maybe")


def test_model_loads_without_extra_buffers_and_reads_a_long_prompt(small_model):
    """The setting reaches llama.cpp's model params, only for that load, and a prompt evaluated
    in one batch (where AMX crashed) completes."""
    import llama_cpp.llama_cpp as lib

    from placecell.tools.llm.llamacpp import LlamaCppLLM

    llm = LlamaCppLLM(small_model, n_ctx=1024, extra_buffers="off")
    assert llm.extra_buffers is False and llm.llm.model_params.use_extra_bufts is False
    assert lib.llama_model_default_params().use_extra_bufts is True  # the wrapper is gone
    prompt = "The river runs past the old mill and under the stone bridge. " * 20
    r = llm.chat([{"role": "user", "content": prompt + "Where does the river run?"}], max_tokens=8)
    assert r.prompt_tokens > 200 and r.completion_tokens > 0
