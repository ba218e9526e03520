"""The graphs `langgraph.json` serves (`langgraph dev`, LangGraph Server, Studio).

The server reads each graph as a module variable (`module.__dict__`, so the lazy `graph`
attribute of graphs/qa.py & co. is invisible to it); this module builds all four when it is
loaded, over one `Backends` from settings (PLACECELL_HOME, PLACECELL_MODEL, ...): one passage
store and one model for every graph, and the KG the QA graph reads is re-read after an ingest.
Nothing heavy loads here: models and stores open on the first run that needs them (the
recommender reads its small catalog now).
"""

from __future__ import annotations

from placecell.agents.backends import Backends
from placecell.graphs.chat import build_chat_graph
from placecell.graphs.ingest import build_ingest_graph
from placecell.graphs.qa import build_qa_graph
from placecell.graphs.recommend import build_recommend_graph

backends = Backends()
ingest = build_ingest_graph(backends)
qa = build_qa_graph(backends)
recommend = build_recommend_graph()  # the shipped catalog, no web; llm/embedder: the process-wide ones
chat = build_chat_graph(backends, qa_graph=qa, ingest_graph=ingest, recommend_graph=recommend)
