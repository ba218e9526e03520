"""The README's Mermaid diagrams match the compiled graphs (regenerate: python -m placecell.graphs.mermaid)."""

from __future__ import annotations

from pathlib import Path

import placecell
from placecell.graphs.mermaid import GRAPHS, diagrams, readme_diagrams

README = Path(placecell.__file__).parent / "README.md"


def test_readme_diagrams_match_the_graphs():
    documented = readme_diagrams(README.read_text(encoding="utf-8"))
    generated = diagrams()
    assert set(generated) == set(GRAPHS)
    for name in GRAPHS:
        assert documented.get(name) == generated[name], (
            f"README's {name} diagram drifted from the graph; regenerate the '## Graphs' section with "
            "python -m placecell.graphs.mermaid")


def test_a_drifted_diagram_is_caught():
    generated = diagrams()
    readme = README.read_text(encoding="utf-8").replace("route -.-> reply;", "route --> reply;")
    assert readme_diagrams(readme)["chat"] != generated["chat"]
