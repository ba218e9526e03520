"""Query generation: token merging, the s_attention proxy, s = s_att * s_ent, query forming;
and one real-model run (smollm2-135m) of reasoning -> keywords."""

from __future__ import annotations

import numpy as np
import pytest

from placecell.agents.recommend.fakes import HashingEmbedder
from placecell.agents.recommend.queries import (
    Keyword,
    attention_proxy,
    direct_queries,
    queries_from_keywords,
    score_keywords,
    words_with_entropy,
)


def test_subword_tokens_merge_into_words_keeping_the_first_entropy():
    tokens = ["This", " reader", " loves", " mount", "aine", "ering", ",", " war", " mem", "oirs", "."]
    ents = [0.1, 0.2, 0.3, 2.0, 0.01, 0.01, 0.0, 1.5, 1.2, 0.02, 0.0]
    assert words_with_entropy(tokens, ents) == [
        ("This", 0.1), ("reader", 0.2), ("loves", 0.3), ("mountaineering", 2.0), ("war", 1.5), ("memoirs", 1.2)]


def test_attention_proxy_rewards_words_attended_by_later_words():
    # word 0 and word 3 are the same direction; word 1 and 2 are unrelated
    v = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    s = attention_proxy(v)
    assert s[0] > s[1] and s[0] > s[2]
    assert s[3] == 0.0  # nothing comes after the last word


def test_score_is_the_product_and_uncertain_related_words_win():
    text = "This reader loves mountaineering memoirs and more mountaineering adventure"
    tokens = [" " + w for w in text.split()]
    ents = [0.1, 0.1, 0.1, 2.0, 1.0, 0.0, 0.1, 2.0, 0.5]
    kws = score_keywords(tokens, ents, HashingEmbedder(), top_k=3)
    assert kws[0].word == "mountaineering"
    for k in kws:
        assert abs(k.score - round(k.s_attention * k.s_entropy, 6)) < 1e-5
    assert "reader" not in {k.word for k in kws}  # stop words never become keywords


def test_queries_interleave_keywords_and_direct_queries_use_recent_titles():
    kws = [Keyword(w, i, 1.0, 1.0, 1.0 - i / 10) for i, w in enumerate("a1 b1 c1 a2 b2 c2 a3".split())]
    assert queries_from_keywords(kws, 3, "books") == ["a1 a2 a3 books", "b1 b2 books", "c1 c2 books"]
    assert direct_queries(["Old", "Mid", "New"], 2) == ["New", "Mid"]


def _smollm():
    from placecell.errors import ModelError
    from placecell.settings import get_settings
    from placecell.tools import models

    try:
        path = models.resolve("smollm2-135m", get_settings().models_dir)
    except (ModelError, ImportError) as exc:
        pytest.skip(f"smollm2-135m is not installed ({exc}); install it with: placecell models pull smollm2-135m")
    from placecell.tools.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM(path, n_ctx=1024, n_threads=2, model_id=models.model_id(path))


def test_real_model_reasoning_gives_entropies_and_keywords():
    from placecell.agents.recommend.prompting import reason_messages
    from placecell.tools.recsys_data import load_catalog

    llm = _smollm()
    catalog = load_catalog("goodbooks_399")
    liked = [i for i in catalog.items.values() if "memoir" in i.tags][:3]
    trace = llm.generate_with_entropy(reason_messages(liked, "", "books"), max_tokens=16, node="reason")
    assert trace.tokens and len(trace.tokens) == len(trace.entropies)
    assert all(h >= 0.0 for h in trace.entropies) and max(trace.entropies) > 0.0
    kws = score_keywords(trace.tokens, trace.entropies, HashingEmbedder(), top_k=5)
    assert kws and all(0.0 <= k.s_entropy <= 1.0 + 1e-6 for k in kws)
