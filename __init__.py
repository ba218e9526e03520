"""placecell: local-first LangGraph agentic RAG.

Public API (graph builders take their backends as arguments) is exported here as it lands.
"""

__version__ = "0.1.0"
