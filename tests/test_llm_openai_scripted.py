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

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = type(self).reply
        if "raw" in reply:
            data = reply["raw"].encode()
            self.send_response(reply.get("status", 200))
            self.send_header("Content-Type", "application/json")
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
        if body.get("logprobs"):
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
