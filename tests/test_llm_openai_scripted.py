"""The OpenAI-compatible backend against a scripted endpoint on 127.0.0.1: replies a real server
gives only for some models (a reasoning model's <think> blocks) or when it misbehaves."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import BaseModel

from placecell.tools.llm.openai_compat import OpenAICompatLLM

THOUGHT = "<think>\nThe user wants {\"not\": \"this\"}. Hmm.\n</think>\n\n"


class Scripted(BaseHTTPRequestHandler):
    reply: dict = {}  # set per test: {"content": ..., "status": ..., "raw": ...}

    def log_message(self, *args):
        pass

    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        reply = type(self).reply
        if "queue" in reply and reply["queue"]:  # one scripted reply per request, then the default
            reply = reply["queue"].pop(0)
        if "trickle" in reply:  # headers, then a byte every `trickle` seconds, never finishing
            import time

            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(reply["trickle"])
            except OSError:
                pass
            return
        if "raw" in reply:
            data = reply["raw"].encode()
            self.send_response(reply.get("status", 200))
            self.send_header("Content-Type", "text/event-stream" if body.get("stream") else "application/json")
            for key, value in reply.get("headers", {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        content = reply["content"]
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i in range(0, len(content), 3):  # tags split across events
                event = {"choices": [{"delta": {"content": content[i:i + 3]}}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        choice = {"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        if body.get("logprobs") and not reply.get("no_logprobs"):
            # tokens as a tokenizer makes them: each tag is one (special) token
            parts = re.split(r"(</?think>)", content)
            pieces = [p for part in parts for p in ([part] if part in ("<think>", "</think>")
                                                    else [part[i:i + 4] for i in range(0, len(part), 4)])]
            choice["logprobs"] = {"content": [{"token": p, "logprob": -0.1,
                                               "top_logprobs": [{"token": p, "logprob": -0.1},
                                                                {"token": "x", "logprob": -2.5}]} for p in pieces]}
        data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


class Answer(BaseModel):
    answer: str


def test_a_reasoning_models_thinking_is_not_the_answer(endpoint):
    Scripted.reply = {"content": THOUGHT + '{"answer": "Paris"}'}
    llm = OpenAICompatLLM(endpoint)
    messages = [{"role": "user", "content": "Capital of France?"}]
    assert llm.chat(messages).text == '{"answer": "Paris"}'
    assert "".join(llm.stream(messages)) == '{"answer": "Paris"}'
    # the structured helper used to parse the braces inside the thinking
    assert llm.structured(messages, Answer, fallback=Answer(answer="?")).answer == "Paris"
    trace = llm.generate_with_entropy(messages)
    assert "think" not in "".join(trace.tokens) and "".join(trace.tokens).strip().startswith('{"answer"')
    assert len(trace.tokens) == len(trace.entropies)
    llm.strip_thinking = False  # PLACECELL_LLM_STRIP_THINKING=0
    assert llm.chat(messages).text.startswith("<think>")
    assert "".join(llm.stream(messages)).startswith("<think>")


def test_the_setting_reaches_the_backend(monkeypatch, endpoint):
    from placecell.settings import Settings
    from placecell.tools.llm import make_llm

    on = make_llm(Settings(llm_backend="openai", llm_base_url=endpoint))
    off = make_llm(Settings(llm_backend="openai", llm_base_url=endpoint, llm_strip_thinking=False))
    assert on.strip_thinking and not off.strip_thinking


@pytest.mark.parametrize("reply, message", [
    ({"raw": "<html>oops</html>"}, "answered something that is not a chat completion"),
    ({"raw": '{"choices": []}'}, "answered something that is not a chat completion"),
    ({"raw": "upstream broke", "status": 500}, "answered 500: upstream broke"),
])
def test_broken_answers_are_one_line_errors(endpoint, reply, message):
    from placecell.errors import PlacecellError

    Scripted.reply = reply
    with pytest.raises(PlacecellError, match=message):  # were JSONDecodeError / IndexError tracebacks
        OpenAICompatLLM(endpoint).chat([{"role": "user", "content": "hi"}])


def test_a_broken_stream_event_is_one_line(endpoint):
    from placecell.errors import PlacecellError

    Scripted.reply = {"raw": 'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\ndata: {broken json\n\n'}
    with pytest.raises(PlacecellError, match="not a chat completion chunk"):
        list(OpenAICompatLLM(endpoint).stream([{"role": "user", "content": "hi"}]))


def test_a_busy_server_is_asked_again_as_its_retry_after_says(endpoint):
    busy = {"raw": "slow down", "status": 429, "headers": {"Retry-After": "0"}}
    Scripted.reply = {"queue": [dict(busy), dict(busy)], "content": "Paris."}
    Scripted.requests = []
    assert OpenAICompatLLM(endpoint).chat([{"role": "user", "content": "hi"}]).text == "Paris."
    assert len(Scripted.requests) == 3
    Scripted.reply = {"raw": "no such model", "status": 404}
    Scripted.requests = []
    with pytest.raises(Exception, match="answered 404"):
        OpenAICompatLLM(endpoint).chat([{"role": "user", "content": "hi"}])
    assert len(Scripted.requests) == 1  # a 404 is not asked again


def test_the_timeout_bounds_a_trickling_answer(endpoint):
    import time

    from placecell.errors import PlacecellError

    Scripted.reply = {"trickle": 0.3}
    start = time.monotonic()
    with pytest.raises(PlacecellError, match=r"timed out after 1\.5 s \(PLACECELL_LLM_TIMEOUT\)"):
        OpenAICompatLLM(endpoint, timeout=1.5).chat([{"role": "user", "content": "hi"}])
    assert time.monotonic() - start < 10  # each byte came within the per-read timeout: it never ended before


def test_without_logprobs_the_answer_is_used_once_and_words_stay_apart(endpoint):
    Scripted.reply = {"content": "I like Dune because it is a classic.", "no_logprobs": True}
    Scripted.requests = []
    trace = OpenAICompatLLM(endpoint).generate_with_entropy([{"role": "user", "content": "Why?"}])
    assert len(Scripted.requests) == 1  # the text of the first answer is kept, not asked for again
    assert "".join(trace.tokens) == trace.text and trace.tokens[1] == " like"


def test_a_base_url_without_scheme_is_a_setting_error():
    from placecell.errors import PlacecellError

    with pytest.raises(PlacecellError, match="must start with http:// or https://"):
        OpenAICompatLLM("127.0.0.1:8765/v1")
    assert OpenAICompatLLM(" http://127.0.0.1:8765/v1/ ").base_url == "http://127.0.0.1:8765/v1"


def test_a_stream_is_asked_again_before_its_first_piece_and_an_early_end_is_an_error(endpoint):
    """Streams were never asked again (the README says a 5xx is), their error dropped the server's
    message, and a server stopped mid-answer ended the stream quietly: chat then died in LangChain with
    "No generations found in stream"."""
    from placecell.errors import PlacecellError

    messages = [{"role": "user", "content": "hi"}]
    busy = {"raw": "busy, try later", "status": 503, "headers": {"Retry-After": "0"}}
    Scripted.reply = {"queue": [dict(busy)], "content": "Paris."}
    Scripted.requests = []
    assert "".join(OpenAICompatLLM(endpoint).stream(messages)) == "Paris."
    assert len(Scripted.requests) == 2
    Scripted.reply = {"raw": "no such model", "status": 404}
    with pytest.raises(PlacecellError, match="answered 404: no such model"):
        list(OpenAICompatLLM(endpoint).stream(messages))
    Scripted.reply = {"raw": 'data: {"choices": [{"delta": {"content": "Once upon"}}]}\n\n'}  # then the server is gone
    got = []
    with pytest.raises(PlacecellError, match="closed the stream before the answer ended"):
        for piece in OpenAICompatLLM(endpoint).stream(messages):
            got.append(piece)
    assert got == ["Once upon"]
    Scripted.reply = {"raw": 'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n'}  # an empty answer
    assert list(OpenAICompatLLM(endpoint).stream(messages)) == []


def test_a_password_in_the_base_url_is_not_shown(endpoint):
    from placecell.errors import PlacecellError

    llm = OpenAICompatLLM(endpoint.replace("http://", "http://user:hunter2@"))
    assert "hunter2" not in llm.model_id and llm.model_id.startswith("openai:http://***@127.0.0.1:")
    Scripted.reply = {"raw": "upstream broke", "status": 500}
    with pytest.raises(PlacecellError) as exc:
        llm.chat([{"role": "user", "content": "hi"}])
    assert "hunter2" not in str(exc.value) and "***@127.0.0.1" in str(exc.value)


def test_an_empty_streamed_reply_reaches_langchain_as_an_empty_message(endpoint):
    from langchain_core.messages import HumanMessage

    from placecell.tools.llm.langchain import PlacecellChatModel

    Scripted.reply = {"raw": 'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'}
    model = PlacecellChatModel(llm=OpenAICompatLLM(endpoint))
    assert list(model.stream([HumanMessage("hi")]))[-1].content == ""  # was "No generations found in stream"
