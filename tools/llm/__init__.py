"""One LLM interface, two backends (in-process llama.cpp, OpenAI-compatible HTTP), chosen by
configuration. `get_llm()` returns the process-wide instance for the current settings."""

from __future__ import annotations

import threading

from placecell.tools.llm.base import LLM, ChatResult, GenerationTrace
from placecell.tools.llm.usage import GLOBAL_USAGE, Usage, usage_scope

__all__ = ["LLM", "ChatResult", "GenerationTrace", "Usage", "usage_scope", "get_llm", "make_llm", "GLOBAL_USAGE"]

_instances: dict[tuple, LLM] = {}
_lock = threading.Lock()


def make_llm(settings=None, *, model: str | None = None, auto_pull: bool = False) -> LLM:
    """Build a backend from settings (no caching)."""
    from placecell.settings import get_settings

    s = settings or get_settings()
    if s.llm_backend == "openai":
        from placecell.tools.llm.openai_compat import OpenAICompatLLM

        llm: LLM = OpenAICompatLLM(s.llm_base_url, model=s.llm_model, api_key=s.llm_api_key,
                                   schema_format=s.llm_schema_format, timeout=s.llm_timeout, n_ctx=s.n_ctx)
    else:
        from placecell.tools import models
        from placecell.tools.llm.llamacpp import LlamaCppLLM

        path = models.resolve(model or s.model, s.models_dir, auto_pull=auto_pull)
        llm = LlamaCppLLM(path, n_ctx=s.n_ctx, n_threads=s.n_threads, model_id=models.model_id(path, s.models_dir / "ids"),
                          extra_buffers=s.llama_extra_buffers)
    llm.strip_thinking = s.llm_strip_thinking
    return llm


def get_llm(settings=None, *, model: str | None = None) -> LLM:
    """One model instance per process and configuration (loading a GGUF takes seconds and RAM)."""
    from placecell.settings import get_settings

    s = settings or get_settings()
    key = (s.llm_backend, model or s.model, s.llm_base_url, s.llm_model, s.n_ctx, s.llama_extra_buffers,
           s.llm_strip_thinking)
    with _lock:
        if key not in _instances:
            _instances[key] = make_llm(s, model=model)
        return _instances[key]
