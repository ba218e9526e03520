"""Settings: CLI flags > environment variables > `.env` > defaults.

Every field has an environment variable `PLACECELL_<NAME>` (listed in `.env.example`).
`PLACECELL_HOME` is where all data and caches live (XDG data dir by default).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "placecell"


def _xdg_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "placecell"


def _dotenv_value(name: str) -> str:
    """A variable as `.env` in the working directory sets it ('' when unset): a home set there must
    move the models as an exported PLACECELL_HOME does."""
    from dotenv import dotenv_values

    return (dotenv_values(".env").get(name) or "") if Path(".env").is_file() else ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLACECELL_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_ignore_empty=True,
    )

    home: Path = Field(default_factory=_xdg_home, description="where data and caches live")
    model_cache: Path | None = Field(
        default=None, description="where GGUF models are joined and kept (default: XDG cache)"
    )
    model: str = Field(default="qwen2.5-coder-0.5b", description="preset name, GGUF path or hf:REPO/FILE")
    llm_backend: Literal["llamacpp", "openai"] = "llamacpp"
    llm_base_url: str = Field(default="", description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    llm_api_key: str = Field(default="not-needed", description="API key for the OpenAI-compatible endpoint")
    llm_model: str = Field(default="local", description="model name sent to the OpenAI-compatible endpoint")
    llm_schema_format: Literal["json_schema", "json_object"] = Field(
        default="json_schema",
        description="how the endpoint takes a JSON schema: OpenAI/vLLM/llama-server use json_schema, "
        "llama-cpp-python's server uses json_object+schema",
    )
    llm_timeout: float = Field(default=300.0, gt=0, allow_inf_nan=False,
                               description="seconds for one answer of the OpenAI-compatible endpoint")
    llm_strip_thinking: bool = Field(default=True, description="remove <think>...</think> blocks of reasoning "
                                     "models from every completion (streamed or not)")
    llm_concurrency: int = Field(default=4, ge=1, description="parallel extraction calls against a remote LLM")
    n_ctx: int = Field(default=4096, description="llama.cpp context size (tokens)")
    n_threads: int = Field(default=0, description="llama.cpp threads (0: all cores)")
    llama_extra_buffers: Literal["auto", "on", "off"] = Field(
        default="auto", description="llama.cpp extra weight buffers (AMX, CPU repack); auto: off where the "
        "build uses AMX, whose matmul crashes on some AMX Xeons",
    )
    chroma_url: str = Field(default="", description="Chroma server URL; empty: embedded PersistentClient")
    collection: str = Field(default="passages", description="Chroma collection name")
    top_k: int = 5
    chunk_chars: int = 1200
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 5_000_000
    fetch_budget: float = Field(default=60.0, description="seconds for all the page fetches of one recommendation")
    allow_hosts: list[str] = Field(default_factory=list, description="hosts fetches may reach though private/loopback")
    checkpoint_url: str = Field(default="", description="postgres://... for a Postgres checkpointer; empty: SQLite")

    @cached_property
    def data_dir(self) -> Path:
        return Path(self.home).expanduser()

    @cached_property
    def models_dir(self) -> Path:
        if self.model_cache:
            return Path(self.model_cache).expanduser()
        if os.environ.get("PLACECELL_HOME") or _dotenv_value("PLACECELL_HOME"):
            return self.data_dir / "models"
        # Settings(home=...) from Python (tests, apps with several homes) share one model cache
        return _xdg_cache() / "models"


def get_settings(**overrides) -> Settings:
    """Settings from env/.env with explicit (CLI) overrides that are not None.

    A bad value (`PLACECELL_N_THREADS=abc`) is an `InputError` naming the variable, not a
    pydantic traceback."""
    from pydantic import ValidationError

    from placecell.errors import InputError

    from pydantic_settings import SettingsError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:  # PLACECELL_ALLOW_HOSTS=127.0.0.1:8000: a list must be written as JSON
        raise InputError(f"cannot read a setting from the environment or .env ({exc}); a list setting is "
                         "JSON, e.g. PLACECELL_ALLOW_HOSTS='[\"127.0.0.1:8000\"]'") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "?"
        raise InputError(f"bad setting PLACECELL_{name.upper()}={first.get('input')!r}: {first['msg']}") from None
