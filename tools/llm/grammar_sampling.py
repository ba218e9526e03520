"""Greedy decoding under a grammar that checks the argmax first.

llama-cpp-python puts the grammar sampler in its chain before `greedy`, so every generated
token runs the grammar over the whole vocabulary (151k tokens for Qwen2.5). Measured on
qwen2.5-coder-0.5b, 2 cores: a third of an extraction call's time was in that sampler.
llama.cpp's own `common_sampler` avoids it (`grammar_first = false`): take the unconstrained
choice, ask the grammar about that one token, and constrain the whole vocabulary only when the
grammar rejects it. For greedy decoding the result is the same token either way: the argmax of
the masked logits is the unmasked argmax whenever the grammar allows it (ties resolve to the
lowest id in both, as llama.cpp's greedy sampler does).

Used only where that equivalence holds: temperature 0, no logits processor, no penalties.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np


class GreedyGrammarSampler:
    """Duck-types `llama_cpp._internals.LlamaSampler` for `Llama.sample` (`.sample(ctx, idx)`)."""

    def __init__(self, model, grammar, n_vocab: int):
        import llama_cpp

        self._lib = llama_cpp
        self.n_vocab = n_vocab
        self.sampler = llama_cpp.llama_sampler_init_grammar(
            model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not self.sampler:
            raise ValueError("llama.cpp rejected the grammar")
        self._one = (llama_cpp.llama_token_data * 1)()
        self._full = (llama_cpp.llama_token_data * n_vocab)()
        self._full_view = np.ctypeslib.as_array(self._full)  # structured view: id, logit, p
        self._full_view["id"] = np.arange(n_vocab, dtype=np.int32)
        self.tokens = 0
        self.full_passes = 0  # tokens where the argmax was rejected and the vocabulary was masked

    def _apply(self, data, size: int) -> None:
        array = self._lib.llama_token_data_array(data=data, size=size, selected=-1, sorted=False)
        self._lib.llama_sampler_apply(self.sampler, ctypes.byref(array))

    def sample(self, ctx, idx: int = -1) -> int:
        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        token = int(np.argmax(logits))
        one = self._one[0]
        one.id, one.logit, one.p = token, float(logits[token]), 0.0
        self._apply(self._one, 1)
        if not np.isfinite(self._one[0].logit):
            self.full_passes += 1
            view = self._full_view
            view["logit"] = logits
            view["p"] = 0.0
            self._apply(self._full, self.n_vocab)
            token = int(np.argmax(view["logit"]))
            if not np.isfinite(view["logit"][token]):
                raise RuntimeError("the grammar allows no token here")
        lib.llama_sampler_accept(self.sampler, token)
        self.tokens += 1
        return token

    def close(self) -> None:
        if self.sampler is not None:
            self._lib.llama_sampler_free(self.sampler)
            self.sampler = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


@cache  # one subclass per process, not one per model instance
def llama_class(argmax_first: bool = True):
    """`Llama` whose greedy grammar-constrained completions use `GreedyGrammarSampler`
    (the stock class with `argmax_first=False`, for comparisons)."""
    from llama_cpp import Llama

    if not argmax_first:
        return Llama

    class GrammarFastLlama(Llama):
        def _init_sampler(self, **kwargs):
            grammar = kwargs.get("grammar")
            plain = (kwargs.get("temp") == 0.0 and kwargs.get("logits_processor") is None
                     and kwargs.get("repeat_penalty", 1.0) == 1.0 and kwargs.get("frequency_penalty", 0.0) == 0.0
                     and kwargs.get("presence_penalty", 0.0) == 0.0 and kwargs.get("mirostat_mode", 0) == 0)
            if grammar is not None and plain:
                return GreedyGrammarSampler(self._model, grammar, self.n_vocab())
            return super()._init_sampler(**kwargs)

    return GrammarFastLlama
