"""Mermaid diagrams of placecell's graphs, generated as text from the compiled graphs.

`python -m placecell.graphs.mermaid` prints the README's "## Graphs" section (regenerate it with
this after changing a graph; tests/test_mermaid.py fails while they differ). Nothing is loaded:
the graphs are compiled over lazy backends (the recommender loads its small catalog).
"""

from __future__ import annotations

GRAPHS = ("ingest", "qa", "recommend", "chat")
INTRO = ("Each graph's shape, generated from the compiled graph (`python -m placecell.graphs.mermaid`); "
         "dotted edges are conditional.")


def build_graphs() -> dict:
    from placecell.agents.backends import Backends
    from placecell.graphs.chat import build_chat_graph
    from placecell.graphs.ingest import build_ingest_graph
    from placecell.graphs.qa import build_qa_graph
    from placecell.graphs.recommend import build_recommend_graph

    backends = Backends()
    return {"ingest": build_ingest_graph(backends), "qa": build_qa_graph(backends),
            "recommend": build_recommend_graph(),
            "chat": build_chat_graph(backends, recommend_graph=lambda: None)}


def diagrams() -> dict[str, str]:
    return {name: graph.get_graph().draw_mermaid().strip() for name, graph in build_graphs().items()}


def readme_section() -> str:
    parts = ["## Graphs", "", INTRO, ""]
    for name, text in diagrams().items():
        parts += [f"### {name}", "", "```mermaid", text, "```", ""]
    return "\n".join(parts)


def readme_diagrams(readme: str) -> dict[str, str]:
    """The diagrams in a README's "## Graphs" section, by graph name."""
    import re

    section = readme.split("\n## Graphs\n", 1)[1] if "\n## Graphs\n" in readme else ""
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^### (\w+)\n\n```mermaid\n(.*?)\n```", section, re.S | re.M)}


if __name__ == "__main__":
    print(readme_section())
