"""placecell's LLM as a LangChain chat model, so LangGraph's `messages` stream mode sees tokens."""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from placecell.tools.llm.base import LLM

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}


def content_text(content) -> str:
    """A message's text: a string, or the text of LangChain content blocks (an image block has none;
    its repr, base64 data and all, was sent to the model)."""
    if isinstance(content, str):
        return content
    parts = [c if isinstance(c, str) else c.get("text", "") if isinstance(c, dict) and c.get("type") == "text" else ""
             for c in content]
    return " ".join(p for p in parts if p)


def to_dicts(messages: list[BaseMessage]) -> list[dict]:
    return [{"role": _ROLES.get(m.type, "user"), "content": content_text(m.content)} for m in messages]


class PlacecellChatModel(BaseChatModel):
    """Wraps any placecell `LLM` backend. `node` names the caller in usage accounting."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    llm: Any
    node: str = "chat"
    max_tokens: int = 512
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "placecell"

    @property
    def _identifying_params(self) -> dict:
        return {"model_id": getattr(self.llm, "model_id", "?"), "node": self.node}

    def _generate(self, messages, stop=None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs):
        backend: LLM = self.llm
        result = backend.chat(to_dicts(messages), max_tokens=kwargs.get("max_tokens", self.max_tokens),
                              temperature=self.temperature, stop=stop, node=self.node)
        usage = {"input_tokens": result.prompt_tokens, "output_tokens": result.completion_tokens,
                 "total_tokens": result.prompt_tokens + result.completion_tokens}
        msg = AIMessage(content=result.text, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _stream(self, messages, stop=None, run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs) -> Iterator[ChatGenerationChunk]:
        backend: LLM = self.llm
        pieces = 0
        for piece in backend.stream(to_dicts(messages), max_tokens=kwargs.get("max_tokens", self.max_tokens),
                                    temperature=self.temperature, stop=stop, node=self.node):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            pieces += 1
            yield chunk
        if not pieces:  # an empty reply is a reply; LangChain raises "No generations found in stream" for none
            yield ChatGenerationChunk(message=AIMessageChunk(content=""))
