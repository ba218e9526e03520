"""The knowledge graph: entity nodes, triple edges that remember their passage, alias edges.

A networkx MultiDiGraph. Triple edges carry `kind="triple"`, `relation` and `passage`; alias
edges (pseudo-coreference, NeuroPath §1.3: cosine >= 0.8, at most 5 per node) carry
`kind="alias"` and `score`. Saved atomically as node-link JSON.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np

from placecell.tools.stores.atomic import write_json_atomic
from placecell.tools.textnorm import fold

# Anything but a letter or digit of any script (ASCII text normalises exactly as before).
_NON_ALNUM = re.compile(r"[\W_]")
_SPACES = re.compile(r"\s+")


def normalize_entity(text: str) -> str:
    """NeuroPath's normalisation: lowercase, non-alphanumerics to spaces, collapse, strip; accents
    on Latin letters folded first (`textnorm.fold`: "Aschenbrödel" -> "aschenbrodel", not
    "aschenbr del")."""
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", fold(str(text)).lower())).strip()


Triple = tuple[str, str, str]


# 2: entity names fold accents (normalize_entity). A version-1 file keeps names normalised the old
# way ("aschenbr del"); `placecell ingest` rebuilds it from the cached extractions, no LLM call.
KG_VERSION = 2


def restrict_to_passages(data: dict, keep: set[str]) -> dict:
    """A saved graph (`to_json` form) without the triples of passages outside `keep`, and without
    the alias edges of entity names no remaining triple has. The names are kept as they were
    stored (the version says how they were normalised), so no embedding or LLM call is needed."""
    passages = {pid: ts for pid, ts in data.get("passages", {}).items() if pid in keep}
    names = {name for ts in passages.values() for t in ts if len(t) == 3 for name in (t[0], t[2])}
    aliases = [a for a in data.get("aliases", []) if len(a) == 3 and a[0] in names and a[1] in names]
    return {**data, "passages": passages, "aliases": aliases}


class KnowledgeGraph:
    def __init__(self) -> None:
        self.version = KG_VERSION  # the normalisation the stored names were made with
        self.g = nx.MultiDiGraph()
        self.passage_triples: dict[str, list[Triple]] = defaultdict(list)
        self.entity_passages: dict[str, set[str]] = defaultdict(set)

    # -- building ----------------------------------------------------------------------
    def add_passage(self, passage_id: str, triples: list[list[str]]) -> int:
        """Add a passage's triples (normalised, de-duplicated). Returns how many were new."""
        added = 0
        seen = set(self.passage_triples.get(passage_id, []))
        for triple in triples:
            if len(triple) != 3:
                continue
            h, r, t = normalize_entity(triple[0]), str(triple[1]).strip().lower(), normalize_entity(triple[2])
            if not h or not t or not r or h == t or (h, r, t) in seen:
                continue
            seen.add((h, r, t))
            self.g.add_edge(h, t, key=f"{passage_id}|{r}", kind="triple", relation=r, passage=passage_id)
            self.passage_triples[passage_id].append((h, r, t))
            self.entity_passages[h].add(passage_id)
            self.entity_passages[t].add(passage_id)
            added += 1
        return added

    def add_aliases(self, embed, threshold: float = 0.8, per_node: int = 5) -> int:
        """Alias edges between entity names whose embeddings have cosine >= threshold."""
        for u, v, k in [(u, v, k) for u, v, k, d in self.g.edges(keys=True, data=True) if d["kind"] == "alias"]:
            self.g.remove_edge(u, v, k)
        names = self.entities()
        if len(names) < 2:
            return 0
        vecs = embed(names)
        added = 0
        for start in range(0, len(names), 1024):
            sims = vecs[start : start + 1024] @ vecs.T
            for row, i in enumerate(range(start, min(start + 1024, len(names)))):
                sims[row, i] = -1.0
                top = np.argpartition(-sims[row], min(per_node, len(names) - 1))[:per_node]
                for j in top:
                    if sims[row, j] >= threshold:
                        self.g.add_edge(names[i], names[j], key="alias", kind="alias", score=float(sims[row, j]))
                        added += 1
        return added

    def add_containment_aliases(self, per_node: int = 2, max_containers: int = 20) -> int:
        """Alias edges from an entity name to shorter entity names it contains as whole words
        ("r b singer lou rawls" -> "lou rawls", "nigeria s minister of transportation" -> "nigeria").

        Why: a small extractor names one entity with its descriptors in one passage and without
        them in the next, which breaks the chain between the two passages; embedding similarity
        joins few of these (a long descriptor moves the vector). Numbers and names contained in
        more than `max_containers` other names (generic words such as "album") get no edges; each
        name links to its `per_node` longest contained names."""
        names = set(self.entities())
        containers: dict[str, list[str]] = defaultdict(list)
        for name in names:
            words = name.split()
            for i in range(len(words)):
                for j in range(i + 1, len(words) + 1):
                    part = " ".join(words[i:j])
                    if j - i < len(words) and part in names and len(part) >= 4 and not part.replace(" ", "").isdigit():
                        containers[part].append(name)
        contained: dict[str, list[str]] = defaultdict(list)
        for part, holders in containers.items():
            if len(holders) <= max_containers:
                for holder in holders:
                    contained[holder].append(part)
        added = 0
        for holder, parts in contained.items():
            for part in sorted(set(parts), key=lambda s: (-len(s), s))[:per_node]:
                if not self.g.has_edge(holder, part, key="alias"):
                    added += 1
                self.g.add_edge(holder, part, key="alias", kind="alias", score=1.0)
        return added

    # -- reading -----------------------------------------------------------------------
    def entities(self) -> list[str]:
        return sorted(self.entity_passages)

    def triples(self) -> list[tuple[str, str, str, str]]:
        return [(h, r, t, pid) for pid, ts in self.passage_triples.items() for h, r, t in ts]

    def n_triples(self) -> int:
        return sum(len(ts) for ts in self.passage_triples.values())

    def n_aliases(self) -> int:
        return sum(1 for _, _, d in self.g.edges(data=True) if d["kind"] == "alias")

    def aliases(self, entity: str) -> list[str]:
        if entity not in self.g:
            return []
        return sorted({v for _, v, d in self.g.out_edges(entity, data=True) if d["kind"] == "alias"})

    def triples_with(self, entity: str) -> list[tuple[str, str, str, str]]:
        """Every triple containing `entity`, in every passage that contains it: (h, r, t, passage)."""
        out = []
        for pid in sorted(self.entity_passages.get(entity, ())):
            for h, r, t in self.passage_triples[pid]:
                if entity in (h, t):
                    out.append((h, r, t, pid))
        return out

    # -- persistence -------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"version": KG_VERSION, "passages": {pid: [list(t) for t in ts] for pid, ts in self.passage_triples.items()},
                "aliases": [[u, v, d["score"]] for u, v, d in self.g.edges(data=True) if d["kind"] == "alias"]}

    @classmethod
    def from_json(cls, data: dict) -> "KnowledgeGraph":
        kg = cls()
        kg.version = int(data.get("version", 1))
        for pid, ts in data.get("passages", {}).items():
            kg.add_passage(pid, ts)
        for u, v, score in data.get("aliases", []):
            kg.g.add_edge(u, v, key="alias", kind="alias", score=score)
        return kg

    def without_passages(self, keep: set[str]) -> "KnowledgeGraph":
        """This graph restricted to the passages in `keep` (self when it has no other)."""
        if set(self.passage_triples) <= keep:
            return self
        kg = KnowledgeGraph.from_json(restrict_to_passages(self.to_json(), keep))
        kg.version = self.version
        return kg

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "KnowledgeGraph":
        p = Path(path)
        if not p.exists():
            return cls()
        try:
            return cls.from_json(json.loads(p.read_bytes().decode("utf-8")))
        except (ValueError, AttributeError, TypeError) as exc:  # ValueError: bad JSON or bytes
            from placecell.errors import NoDataError

            # the KG is derived data: the extraction cache rebuilds it without LLM calls
            raise NoDataError(f"knowledge graph file {p} is damaged ({type(exc).__name__}); rerun `placecell ingest` "
                              "on your files to rebuild it from the cached extractions") from None
