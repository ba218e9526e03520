"""In-process GGUF backend on llama-cpp-python.

One `Llama` per process, guarded by a lock (one instance is not safe for two concurrent
completions). Prompts are rendered with the model's own chat template and sent through
`create_completion`, which reuses the KV cache of the longest common token prefix with the
previous call: keeping fixed instructions first makes repeated calls (extraction over many
passages) evaluate only the new part. Next-token distributions are read through a logits
processor (it sees the last logits row) so `logits_all` stays off (see MODELS.md).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from placecell.errors import ModelError, PlacecellError
from placecell.tools.llm.base import LLM, ChatResult, GenerationTrace, Message, entropy_from_logits
from placecell.tools.llm.control_tokens import defuse_messages
from placecell.tools.llm.thinking import answer_tokens, strip_stream, strip_thinking
from placecell.tools.llm.usage import record


class MachineLock:
    """One llama.cpp computation at a time on this machine, across processes, taking turns.

    llama.cpp's worker threads spin at their barriers: two processes each running 2 threads on
    a 2-core machine slow each other down several-fold (measured: ~40 s instead of ~5 s per
    extraction). Taking turns per call is faster for both. Threads of one process already take
    turns through the instance lock. Off with PLACECELL_LLM_MACHINE_LOCK=0.

    A plain flock is not fair: the process that just released it is still running and can take it
    back before a sleeping waiter wakes (measured on an idle machine: up to 4 calls in a row while
    another process queued; a CLI test once waited 600 s beside an eval). A second flock, the gate, is held from the
    moment a process queues until it owns the main lock: a releaser that comes back finds the
    gate held by the waiter and queues behind it. Both are flocks, so a crashed holder releases
    them with its file descriptors.
    """

    def __init__(self, enabled: bool = True, path: Path | None = None):
        import os
        import tempfile

        self.enabled = enabled and os.environ.get("PLACECELL_LLM_MACHINE_LOCK", "1") != "0"
        self.path = path or Path(tempfile.gettempdir()) / "placecell-llamacpp.lock"
        self.gate_path = self.path.with_name(self.path.name + ".gate")
        self._fh = None

    def __enter__(self):
        if self.enabled:
            import fcntl

            with open(self.gate_path, "a") as gate:
                fcntl.flock(gate, fcntl.LOCK_EX)
                self._fh = open(self.path, "a")
                fcntl.flock(self._fh, fcntl.LOCK_EX)
            # leaving the with-block closes the gate: the next waiter may queue on the main lock
        return self

    def __exit__(self, *exc):
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def usable_cores() -> int:
    """The cores this process may run on (`taskset` and container limits), as `nproc` says."""
    import os

    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@cache  # the build and the CPU do not change within a process
def llama_system_info() -> dict[str, bool]:
    """The CPU features this llama.cpp build uses ("CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | ...")."""
    import llama_cpp

    text = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    features = {}
    for part in text.replace("CPU :", "|").split("|"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            features[name.strip()] = value.strip() == "1"
    return features


def build_has_amx() -> bool:
    """Whether this llama.cpp build runs matrix products in AMX tiles (compiled in, CPU has them)."""
    return llama_system_info().get("AMX_INT8", False)


def extra_buffers_enabled(setting: str = "auto") -> bool:
    """`auto`: off where the build uses AMX. llama.cpp's AMX matmul segfaults on the first prompt
    longer than one token on an AMX Xeon VM here (llama-cpp-python 0.3.36; the open upstream
    report is ggml-org/llama.cpp#20824); without extra buffer types the weights stay in plain CPU
    buffers. That also turns off the CPU repack, which bought nothing measurable: qwen2.5-coder-0.5b
    Q4_K_M, 501-token prompt + 64 tokens, 2 threads on that Xeon, 4.5-4.7 s with or without it."""
    if setting not in ("auto", "on", "off"):
        raise PlacecellError(f"llama extra buffers must be auto, on or off, not {setting!r}")
    return setting == "on" or (setting == "auto" and not build_has_amx())


_PARAMS_LOCK = threading.Lock()


@contextmanager
def _model_params(*, extra_buffers: bool):
    """`Llama()` takes no argument for `llama_model_params.use_extra_bufts`: it starts from
    `llama_model_default_params()`, so that function is wrapped while one model loads (every load
    takes the lock, so a load that wants the default never sees the wrapper)."""
    import llama_cpp.llama_cpp as lib

    with _PARAMS_LOCK:
        if extra_buffers:
            yield
            return
        default = lib.llama_model_default_params

        def without_extra_buffers():
            params = default()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = without_extra_buffers
        try:
            yield
        finally:
            lib.llama_model_default_params = default


_open_models: "weakref.WeakSet[LlamaCppLLM]" = weakref.WeakSet()


@atexit.register
def _close_open_models() -> None:
    """Free the models still loaded at exit while llama_cpp's C bindings exist.

    Left to the garbage collector at interpreter teardown, `Llama.__del__` finds those bindings
    already set to None and prints a TypeError traceback (seen at the end of every test run). A model
    still busy in another thread after 5 s is left alone rather than freed under it; a closed one
    keeps its lock, so a daemon thread still running cannot start a completion on freed memory.
    """
    for inst in list(_open_models):
        if inst.lock.acquire(timeout=5):
            try:
                inst.llm.close()
            except Exception:  # exiting anyway: never turn a clean exit into an error
                pass


class LlamaCppLLM(LLM):
    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int = 0, model_id: str | None = None,
                 seed: int = 0, argmax_first_grammar: bool = True, extra_buffers: str = "auto"):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from placecell.tools.llm.grammar_sampling import llama_class

        path = Path(model_path)
        # llama-cpp-python's default is half the cores for generation (all of them only for the
        # prompt); on 2 cores that was 1 thread: 14 instead of 22 tokens/s measured. An explicit
        # count applies to the prompt too, so a process pinned to fewer cores never oversubscribes.
        threads = n_threads or usable_cores()
        self.extra_buffers = extra_buffers_enabled(extra_buffers)
        try:
            with _model_params(extra_buffers=self.extra_buffers):
                self.llm = llama_class(argmax_first_grammar)(
                    model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512,
                    logits_all=False, verbose=False, seed=seed)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"could not load model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        self.path = path
        self.n_ctx = n_ctx
        self.model_id = model_id or path.name
        meta = self.llm.metadata or {}
        eos = self._token_text(self.llm.token_eos())
        bos = self._token_text(self.llm.token_bos())
        template = meta.get("tokenizer.chat_template") or CHATML
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos,
                                             add_generation_prompt=True)
        self.stop = [s for s in {eos, "<|im_end|>", "<|endoftext|>"} if s]
        self.lock = threading.RLock()
        _open_models.add(self)

    def _token_text(self, token_id: int) -> str:
        if token_id is None or token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore")

    # -- prompt handling ---------------------------------------------------------------
    @cached_property
    def special_token_texts(self) -> tuple[str, ...]:
        """The texts of this model's control and user-defined tokens (~0.1 s over a 150k vocabulary, once)."""
        import llama_cpp

        mask = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        texts = {self._token_text(i) for i in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(vocab, i) & mask}
        return tuple(sorted((t for t in texts if len(t) > 1), key=len, reverse=True))

    def render(self, messages: list[Message], prefix: str = "") -> str:
        # message text is data: none of it may tokenize as a turn marker (control_tokens.py)
        safe = defuse_messages(messages, self.special_token_texts)
        return self.formatter(messages=safe).prompt + prefix

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _budget(self, prompt: str, max_tokens: int) -> tuple[int, int]:
        n_prompt = self.count_tokens(prompt) + 1
        room = self.n_ctx - n_prompt
        if room < 8:
            raise PlacecellError(
                f"prompt of {n_prompt} tokens does not fit the model context of {self.n_ctx} tokens "
                "(raise PLACECELL_N_CTX or lower top_k)"
            )
        return n_prompt, min(max_tokens, room)

    def _complete(self, prompt: str, *, max_tokens: int, temperature: float, stop, grammar=None,
                  logits_processor=None, node: str, keep_thinking: bool = False) -> ChatResult:
        n_prompt, max_tokens = self._budget(prompt, max_tokens)
        asked = time.perf_counter()
        with self.lock, MachineLock():
            start = time.perf_counter()  # after the locks: waiting for a turn is not model time
            out = self.llm.create_completion(
                prompt, max_tokens=max_tokens, temperature=temperature, top_k=1 if temperature == 0 else 40,
                stop=list(stop or []) + self.stop, grammar=grammar, logits_processor=logits_processor,
            )
        seconds = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        text = choice["text"] if keep_thinking or not self.strip_thinking else strip_thinking(choice["text"])
        result = ChatResult(
            text=text, prompt_tokens=usage.get("prompt_tokens", n_prompt),
            completion_tokens=usage.get("completion_tokens", 0), seconds=seconds,
            finish_reason=choice.get("finish_reason") or "stop",
        )
        record(node, result.prompt_tokens, result.completion_tokens, seconds, wait_seconds=start - asked)
        return result

    # -- the interface -----------------------------------------------------------------
    def chat(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> ChatResult:
        return self._complete(self.render(messages), max_tokens=max_tokens, temperature=temperature, stop=stop,
                              node=node)

    def stream(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> Iterator[str]:
        return strip_stream(self._stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop, node=node),
                            self.strip_thinking)

    def _stream(self, messages, *, max_tokens, temperature, stop, node) -> Iterator[str]:
        prompt = self.render(messages)
        n_prompt, max_tokens = self._budget(prompt, max_tokens)
        n_out = 0
        asked = time.perf_counter()
        with self.lock, MachineLock():
            start = time.perf_counter()
            try:
                for chunk in self.llm.create_completion(
                    prompt, max_tokens=max_tokens, temperature=temperature, top_k=1 if temperature == 0 else 40,
                    stop=list(stop or []) + self.stop, stream=True,
                ):
                    piece = chunk["choices"][0]["text"]
                    n_out += 1
                    if piece:
                        yield piece
            finally:
                # Runs on normal end, on an early close (Ctrl-C) and on errors alike.
                record(node, n_prompt, n_out, time.perf_counter() - start, wait_seconds=start - asked)

    def chat_json(self, messages, schema: dict, *, max_tokens=512, node="json") -> ChatResult:
        from llama_cpp import LlamaGrammar
        import json

        grammar = _grammar_cache(json.dumps(schema, sort_keys=True), LlamaGrammar)
        return self._complete(self.render(messages), max_tokens=max_tokens, temperature=0.0, stop=None,
                              grammar=grammar, node=node)

    def next_token_probs(self, messages, candidates, *, prefix="", node="probe") -> dict[str, float]:
        captured: list[np.ndarray] = []

        def capture(input_ids, scores):
            if not captured:
                captured.append(np.array(scores, dtype=np.float64))
            return scores

        self._complete(self.render(messages, prefix), max_tokens=1, temperature=0.0, stop=None,
                       logits_processor=[capture], node=node)
        logits = captured[0]
        logits = logits - logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        out: dict[str, float] = {}
        for cand in candidates:
            # Take the more probable of the bare and the space-prefixed first token.
            ids = {self._first_token(cand), self._first_token(" " + cand)}
            out[cand] = float(max(probs[i] for i in ids))
        total = sum(out.values()) or 1.0
        return {k: v / total for k, v in out.items()}

    def _first_token(self, text: str) -> int:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)[0]

    def generate_with_entropy(self, messages, *, max_tokens=256, node="generate") -> GenerationTrace:
        entropies: list[float] = []

        def track(input_ids, scores):
            entropies.append(entropy_from_logits(scores))
            return scores

        result = self._complete(self.render(messages), max_tokens=max_tokens, temperature=0.0, stop=None,
                                logits_processor=[track], node=node, keep_thinking=True)
        token_ids = self.llm.tokenize(result.text.encode("utf-8"), add_bos=False, special=False)
        tokens = [self._token_text(t) for t in token_ids]
        # Re-tokenising the text can differ from the generated ids by a token at the edges;
        # align the entropy list to the token list so callers can zip them.
        ents = (entropies + [entropies[-1] if entropies else 0.0] * len(tokens))[: len(tokens)]
        text = result.text
        if self.strip_thinking:  # entropies were read over the whole generation; keep the answer's
            tokens, ents = answer_tokens(tokens, ents)
            text = strip_thinking(text)
        return GenerationTrace(text=text, prompt_tokens=result.prompt_tokens,
                               completion_tokens=result.completion_tokens, seconds=result.seconds,
                               finish_reason=result.finish_reason, tokens=tokens, entropies=ents)


_grammars: dict[str, object] = {}
_grammar_lock = threading.Lock()


def _grammar_cache(schema_json: str, grammar_cls):
    # Converting a schema to a grammar costs milliseconds but happens for every passage.
    with _grammar_lock:
        if schema_json not in _grammars:
            _grammars[schema_json] = grammar_cls.from_json_schema(schema_json, verbose=False)
        return _grammars[schema_json]
