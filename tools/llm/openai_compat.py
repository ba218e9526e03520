"""Any OpenAI-compatible chat endpoint (llama.cpp server, llama-cpp-python's server, vLLM, OpenAI).

Servers disagree on how a JSON schema is requested: OpenAI, vLLM and llama.cpp's `llama-server`
take `{"type": "json_schema", "json_schema": {...}}`; llama-cpp-python's server takes
`{"type": "json_object", "schema": {...}}`. `schema_format` says which one to send.
Next-token probabilities come from `logprobs`/`top_logprobs` where the server offers them.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Iterator

import httpx

from placecell.errors import PlacecellError
from placecell.tools.llm.base import LLM, ChatResult, GenerationTrace, entropy_from_logprobs
from placecell.tools.llm.control_tokens import defuse_messages
from placecell.tools.llm.thinking import answer_tokens, strip_stream, strip_thinking
from placecell.tools.llm.usage import record
from placecell.tools.web.transport import Watchdog


RETRIES = 2
MAX_WAIT = 30.0


class EndpointError(PlacecellError):
    """The endpoint failed a request; `retry` says whether asking again can help."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = False, retry_after: str | None = None):
        super().__init__(message)
        self.status, self.retry, self.retry_after = status, retry, retry_after

    def wait_seconds(self, default: float) -> float:
        try:
            wait = float(self.retry_after) if self.retry_after else default
        except ValueError:  # an HTTP date: not worth parsing for a local server
            wait = default
        return min(max(wait, 0.0), MAX_WAIT) if math.isfinite(wait) else default


class _StreamPieces(Exception):
    """Ends a stream that has sent `n` pieces (they cannot be taken back, so no retry), with `error` or None."""

    def __init__(self, n: int, error: PlacecellError | None):
        super().__init__(n)
        self.n, self.error = n, error


def _without_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _params_refused(exc: EndpointError) -> bool:
    """A server that rejects the logprobs parameters answers 400/422; anything else is a failure."""
    return exc.status in (400, 422)


class OpenAICompatLLM(LLM):
    def __init__(self, base_url: str, *, model: str = "local", api_key: str = "not-needed",
                 schema_format: str = "json_schema", timeout: float = 300.0, n_ctx: int = 8192):
        if not base_url:
            raise PlacecellError("PLACECELL_LLM_BASE_URL is empty: set the OpenAI-compatible endpoint URL")
        self.base_url = base_url.strip().rstrip("/")
        if not self.base_url.lower().startswith(("http://", "https://")):
            raise PlacecellError(f"PLACECELL_LLM_BASE_URL {base_url!r} must start with http:// or https://")
        # What messages, model ids and caches show: the URL without a user:password part.
        self.shown_url = _without_credentials(self.base_url)
        self.model = model
        self.schema_format = schema_format
        self.n_ctx = n_ctx
        self.timeout = timeout
        self._model_id: str | None = None
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})

    @property
    def model_id(self) -> str:
        """`openai:URL:NAME`, plus `@SERVED` when the server lists one model under another id.

        The id keys the extraction cache and the knowledge graph. llama-cpp-python's server answers
        to any name and lists the file it serves: a GGUF swapped behind the same URL and name then
        gets its own caches instead of reusing the old model's extractions. A server that lists the
        configured name (vLLM, Ollama, OpenAI) is keyed by that name alone."""
        if self._model_id is None:
            self._model_id = f"openai:{self.shown_url}:{self.model}{self._served_suffix()}"
        return self._model_id

    @model_id.setter
    def model_id(self, value: str) -> None:
        self._model_id = value

    def _served_suffix(self) -> str:
        try:
            resp = self.client.get(f"{self.base_url}/models", timeout=min(self.timeout, 30.0))
        except httpx.HTTPError as exc:  # the chat calls would fail the same way: say so now, not with another key
            raise EndpointError(f"LLM endpoint {self.shown_url} unreachable: {type(exc).__name__}") from None
        if resp.status_code >= 400:  # no model listing here: the configured name is all there is
            return ""
        try:
            ids = [str(m["id"]) for m in resp.json().get("data", []) if isinstance(m, dict) and "id" in m]
        except (ValueError, AttributeError, TypeError):
            return ""
        return f"@{ids[0]}" if len(ids) == 1 and ids[0] != self.model else ""

    def _timed_out(self) -> "EndpointError":
        return EndpointError(f"LLM endpoint {self.shown_url} timed out after {self.timeout:g} s (PLACECELL_LLM_TIMEOUT)")

    def _post_once(self, payload: dict) -> dict:
        deadline = time.monotonic() + self.timeout
        try:
            with self.client.stream("POST", f"{self.base_url}/chat/completions",
                                    json={"model": self.model, **payload}) as resp:
                # httpx's timeout is per read: a server that trickles a byte at a time never trips
                # it, so the whole answer gets PLACECELL_LLM_TIMEOUT, cut by the socket watchdog
                watchdog = Watchdog(resp, deadline)
                try:
                    body = resp.read()
                except httpx.HTTPError:
                    if watchdog.fired:
                        raise self._timed_out() from None
                    raise
                finally:
                    watchdog.cancel()
                if watchdog.fired:  # a body without a length, cut by the watchdog, looks complete
                    raise self._timed_out()
        except httpx.TimeoutException:
            raise self._timed_out() from None
        except httpx.HTTPError as exc:
            raise EndpointError(f"LLM endpoint {self.shown_url} unreachable: {type(exc).__name__}",
                                retry=isinstance(exc, httpx.ConnectError)) from None
        if resp.status_code >= 400:
            text = body.decode("utf-8", "replace")
            hint = ""
            if resp.status_code >= 500 and "response_format" in payload and self.schema_format == "json_schema":
                hint = " (llama-cpp-python's server needs PLACECELL_LLM_SCHEMA_FORMAT=json_object)"
            raise EndpointError(f"LLM endpoint {self.shown_url} answered {resp.status_code}: "
                                f"{' '.join(text.split())[:200]}{hint}", status=resp.status_code,
                                retry=resp.status_code == 429 or resp.status_code >= 500,
                                retry_after=resp.headers.get("retry-after"))
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            if not isinstance(choice, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):  # ValueError covers JSON and Unicode errors
            raise EndpointError(f"LLM endpoint {self.shown_url} answered something that is not a chat completion: "
                                f"{' '.join(body.decode('utf-8', 'replace').split())[:120]!r}", retry=False) from None
        return data

    def _post(self, payload: dict) -> dict:
        """One request, with up to RETRIES more for a busy or failing server (429, 5xx, refused
        connection), waiting as its Retry-After says (at most MAX_WAIT s) or 1, 2 s."""
        for attempt in range(RETRIES + 1):
            try:
                return self._post_once(payload)
            except EndpointError as exc:
                if not exc.retry or attempt == RETRIES:
                    raise
                time.sleep(exc.wait_seconds(default=float(2 ** attempt)))
        raise AssertionError("unreachable")

    def _call(self, messages, *, node: str, **payload) -> tuple[ChatResult, dict]:
        start = time.perf_counter()
        data = self._post({"messages": defuse_messages(messages), **payload})
        seconds = time.perf_counter() - start
        choice = data["choices"][0]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        text = message.get("content") if isinstance(message.get("content"), str) else ""
        if self.strip_thinking:  # servers that split reasoning out (reasoning_content) leave none here
            text = strip_thinking(text)
        result = ChatResult(text=text, prompt_tokens=usage.get("prompt_tokens", 0),
                            completion_tokens=usage.get("completion_tokens", 0), seconds=seconds,
                            finish_reason=choice.get("finish_reason") or "stop")
        record(node, result.prompt_tokens, result.completion_tokens, seconds)
        return result, choice

    def chat(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> ChatResult:
        payload = {"max_tokens": max_tokens, "temperature": temperature}
        if stop:
            payload["stop"] = stop
        return self._call(messages, node=node, **payload)[0]

    def stream(self, messages, *, max_tokens=512, temperature=0.0, stop=None, node="chat") -> Iterator[str]:
        return strip_stream(self._stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop, node=node),
                            self.strip_thinking)

    def _stream(self, messages, *, max_tokens, temperature, stop, node) -> Iterator[str]:
        """The answer's pieces as the server sends them. Opening the stream is retried as `_post` is
        (429, 5xx, refused connection); once a piece is out, a failure ends the answer with an error."""
        payload = {"model": self.model, "messages": defuse_messages(messages), "max_tokens": max_tokens,
                   "temperature": temperature, "stream": True}
        if stop:
            payload["stop"] = stop
        start = time.perf_counter()
        n_out = 0
        try:
            for attempt in range(RETRIES + 1):
                try:
                    yield from self._stream_once(payload)
                    return
                except _StreamPieces as done:  # pieces went out: no retry
                    n_out = done.n
                    if done.error is not None:
                        raise done.error from None
                    return
                except EndpointError as exc:
                    if not exc.retry or attempt == RETRIES:
                        raise
                    time.sleep(exc.wait_seconds(default=float(2 ** attempt)))
        finally:
            n_prompt = sum(self.count_tokens(m.get("content", "")) for m in messages)
            record(node, n_prompt, n_out, time.perf_counter() - start)

    def _stream_once(self, payload: dict) -> Iterator[str]:
        n_out, finished = 0, False
        try:
            with self.client.stream("POST", f"{self.base_url}/chat/completions", json=payload) as resp:
                if resp.status_code >= 400:
                    text = " ".join(resp.read().decode("utf-8", "replace").split())[:200]
                    raise EndpointError(f"LLM endpoint {self.shown_url} answered {resp.status_code}: {text}",
                                        status=resp.status_code,
                                        retry=resp.status_code == 429 or resp.status_code >= 500,
                                        retry_after=resp.headers.get("retry-after"))
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    body = line[5:].strip()
                    if body == "[DONE]":
                        finished = True
                        break
                    try:
                        choice = (json.loads(body)["choices"] or [{}])[0]
                        delta = choice.get("delta") or {}
                        piece = delta.get("content") or ""
                        if not isinstance(piece, str):
                            raise TypeError
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        raise _StreamPieces(n_out, EndpointError(
                            f"LLM endpoint {self.shown_url} sent a stream event that is not a "
                            f"chat completion chunk: {body[:80]!r}")) from None
                    finished = finished or bool(choice.get("finish_reason"))
                    if piece:
                        n_out += 1
                        yield piece
        except httpx.TimeoutException:
            error = self._timed_out()
        except httpx.HTTPError as exc:
            error = EndpointError(f"LLM endpoint {self.shown_url} unreachable: {type(exc).__name__}",
                                  retry=isinstance(exc, httpx.ConnectError))
        else:
            if finished:
                raise _StreamPieces(n_out, None)
            # A server stopped mid-answer closes the stream without its end: not a complete answer.
            error = EndpointError(f"LLM endpoint {self.shown_url} closed the stream before the answer ended")
        if n_out:
            raise _StreamPieces(n_out, error)
        raise error

    def response_format(self, schema: dict) -> dict:
        if self.schema_format == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": False}}

    def chat_json(self, messages, schema, *, max_tokens=512, node="json") -> ChatResult:
        return self._call(messages, node=node, max_tokens=max_tokens, temperature=0.0,
                          response_format=self.response_format(schema))[0]

    def next_token_probs(self, messages, candidates, *, prefix="", node="probe") -> dict[str, float]:
        msgs = list(messages)
        if prefix:
            msgs = msgs + [{"role": "assistant", "content": prefix}]
        try:
            _, choice = self._call(msgs, node=node, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)
            top = choice["logprobs"]["content"][0]["top_logprobs"]
            table = {t["token"].strip().lower(): math.exp(t["logprob"]) for t in top}
        except (EndpointError, KeyError, IndexError, TypeError) as exc:
            if isinstance(exc, EndpointError) and not _params_refused(exc):
                raise  # the endpoint failed: asking again without logprobs would only double the wait
            # No logprobs on this server: one constrained pick instead, as a hard 0/1 vote.
            result, _ = self._call(msgs, node=node, max_tokens=4, temperature=0.0)
            said = result.text.strip().lower()
            table = {c.lower(): float(said.startswith(c.lower())) for c in candidates}
        out = {c: table.get(c.lower(), 0.0) for c in candidates}
        total = sum(out.values())
        if total <= 0:
            return {c: 1.0 / len(candidates) for c in candidates}
        return {k: v / total for k, v in out.items()}

    def generate_with_entropy(self, messages, *, max_tokens=256, node="generate") -> GenerationTrace:
        try:
            result, choice = self._call(messages, node=node, max_tokens=max_tokens, temperature=0.0,
                                        logprobs=True, top_logprobs=20)
        except EndpointError as exc:
            if not _params_refused(exc):
                raise  # the endpoint failed: asking again without logprobs would only double the wait
            result, choice = self._call(messages, node=node, max_tokens=max_tokens, temperature=0.0)
        try:
            content = choice["logprobs"]["content"]
            tokens = [c["token"] for c in content]
            ents = [entropy_from_logprobs([t["logprob"] for t in c["top_logprobs"]]) for c in content]
            if self.strip_thinking:
                tokens, ents = answer_tokens(tokens, ents)
        except (KeyError, TypeError):
            # No logprobs in the answer: its text is still good. Tokens keep their leading space, as
            # a tokenizer's do, so words are not glued together; no distribution: uniform uncertainty.
            tokens = re.findall(r"\s*\S+", result.text)
            ents = [1.0] * len(tokens)
        return GenerationTrace(text=result.text, prompt_tokens=result.prompt_tokens,
                               completion_tokens=result.completion_tokens, seconds=result.seconds,
                               tokens=tokens, entropies=ents)
