"""placecell: local-first LangGraph agentic RAG.

Public API, for apps that embed placecell's agents. Graph builders take their backends as
arguments and return compiled LangGraph graphs without a checkpointer (pass `checkpointer=`;
`open_checkpointer()` gives the configured one: SQLite, or Postgres with PLACECELL_CHECKPOINT_URL):

    from placecell import Backends, QAContext, build_qa_graph
    graph = build_qa_graph(Backends())
    out = graph.invoke({"question": "..."}, context=QAContext(top_k=3))

Names load on first use (module `__getattr__`), so `import placecell` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Backends": "placecell.agents.backends",
    "Settings": "placecell.settings",
    "build_ingest_graph": "placecell.graphs.ingest",
    "IngestContext": "placecell.agents.ingest.state",
    "IngestInput": "placecell.agents.ingest.state",
    "IngestOutput": "placecell.agents.ingest.state",
    "build_qa_graph": "placecell.graphs.qa",
    "QAContext": "placecell.agents.qa.state",
    "QAInput": "placecell.agents.qa.state",
    "QAOutput": "placecell.agents.qa.state",
    "build_recommend_graph": "placecell.graphs.recommend",
    "RecommendContext": "placecell.agents.recommend.state",
    "RecommendInput": "placecell.agents.recommend.state",
    "RecommendOutput": "placecell.agents.recommend.state",
    "build_chat_graph": "placecell.graphs.chat",
    "ChatContext": "placecell.agents.chat.state",
    "ChatInput": "placecell.agents.chat.state",
    "ChatOutput": "placecell.agents.chat.state",
    "open_checkpointer": "placecell.tools.stores.checkpoints",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'placecell' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
