"""NeuroPath's dynamic path tracking, as plain functions the QA nodes call.

Faithful to KennyCaty/NeuroPath (see the notes): seeds are each query entity's nearest KG
entity plus its aliases; hop 1 turns every triple containing a seed into a one-triple path
whose other end is its frontier; later hops extend chosen paths from their frontier (+ aliases);
each round's new paths are pruned to `width` by embedding similarity to the question (round 1)
or the LLM's last `expansion_requirements` (later rounds).

Two judges decide which paths are valid and which to expand:
- `track_faithful`: the paper's single JSON call (valid_ids best first, need_expand_ids, ...).
- `score_paths` + `reason_over_paths` (mode "scored", the default for small models): small models
  over-select and copy examples when asked for id lists, so each path gets a score fused from
  embedding similarity and path structure, plus the model's yes-probability when probes are on
  (`path_probe`: "each" | "list"; off by default since the slice evals, where the probes tripled
  the tokens for a few points of recall either way); the model still writes the reasoning chain
  and what is missing (once, after hop 1, by default), which steers the next hop and drives
  post-retrieval completion.

After completion (and the BM25 fusion) the scored mode puts first the pair of top passages that
mention the most question entities (`cover_entities_first`), can put after them the passages
whose titles they name (`follow_title_links`), and keeps the question's nearest passage by
embedding among the passages the reader sees (`keep_nearest`); the faithful mode ranks as
published.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, Field

from placecell import prompts
from placecell.agents.qa.state import PROBES
from placecell.tools.stores.kg import KnowledgeGraph, normalize_entity
from placecell.tools.textnorm import fold


class QueryEntities(BaseModel):
    named_entities: list[str] = Field(default_factory=list, max_length=6)


_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was",
                   "were", "did", "does", "do", "in", "the", "a", "an", "of", "and", "or", "both"}
_CAPITALISED = re.compile(r"[A-Z0-9][\w'’.-]*(?:\s+(?:of|the|de|la|von|van|for|in|on|&)?\s*[A-Z0-9][\w'’.-]*)*")
_QUOTED = re.compile(r'"([^"]{2,80})"')


def surface_entities(question: str) -> list[str]:
    """Capitalised spans and quoted titles of the question: a deterministic complement to the
    model's NER (the 0.5B model returned only "politician" for a question naming a park)."""
    found = [m.strip() for m in _QUOTED.findall(question)]
    for m in _CAPITALISED.finditer(question):
        words = m.group(0).split()
        while words and re.sub(r"['’]s$", "", words[0].lower()) in _QUESTION_WORDS:
            words = words[1:]
        span = re.sub(r"['’]s$", "", " ".join(words).strip(" .,?"))
        if span and span.lower() not in _QUESTION_WORDS and (len(span) > 2 or span.isdigit()):
            found.append(span)
    return found


def query_entities(llm, question: str) -> list[str]:
    msgs = [{"role": "system", "content": prompts.load("qa_ner")}, {"role": "user", "content": question}]
    out = llm.structured(msgs, QueryEntities, fallback=QueryEntities(), node="ner", max_tokens=120)
    seen, names = set(), []
    for name in [*surface_entities(question), *out.named_entities]:
        norm = normalize_entity(name)
        if norm and norm not in seen:
            seen.add(norm)
            names.append(name.strip())
    return names


_DIGITS = re.compile(r"\d+")


def link_seeds(kg: KnowledgeGraph, embed, entities: list[str]) -> list[str]:
    """Each query entity -> its nearest KG entity (cosine), then add aliases. Ordered, unique.
    An entity with numbers in it links only to an entity sharing one of them, or to nothing."""
    names = kg.entities()
    if not names or not entities:
        return []
    # Entity vectors are computed once per loaded KG, not once per question.
    cached = getattr(kg, "_entity_vecs", None)
    if cached is None or cached[0] != len(names):
        kg._entity_vecs = cached = (len(names), embed(names))
    ent_vecs = cached[1]
    q_vecs = embed([normalize_entity(e) or e for e in entities])
    seeds: list[str] = []
    for entity, row in zip(entities, q_vecs @ ent_vecs.T):
        numbers = set(_DIGITS.findall(entity))
        if numbers:
            # The embedder puts any two dates or numbers close (the demo linked "1946-92" to
            # "1964 05 17"): an entity with numbers links only to one that shares a number.
            shares = np.array([bool(numbers.intersection(_DIGITS.findall(n))) for n in names])
            if not shares.any():
                continue
            row = np.where(shares, row, -np.inf)
        best = names[int(np.argmax(row))]
        for s in [best, *kg.aliases(best)]:
            if s not in seeds:
                seeds.append(s)
    return seeds


def path_text(path: dict) -> str:
    return "; ".join(f"{h} -> {r} -> {t}" for h, r, t in path["triples"])


def _path_key(path: dict) -> str:
    return path_text(path)


def hop1_paths(kg: KnowledgeGraph, seeds: list[str]) -> list[dict]:
    paths, seen = [], set()
    for seed in seeds:
        for h, r, t, pid in kg.triples_with(seed):
            p = {"triples": [[h, r, t]], "passage_ids": [pid], "frontier": t if h == seed else h, "score": 0.0}
            if _path_key(p) not in seen:
                seen.add(_path_key(p))
                paths.append(p)
    return paths


def expand_paths(kg: KnowledgeGraph, paths: list[dict], known: set[str]) -> list[dict]:
    """Extend each path by one triple from its frontier (+ aliases), skipping triples on it."""
    out = []
    for path in paths:
        on_path = {tuple(t) for t in path["triples"]}
        frontier = path["frontier"]
        for node in [frontier, *kg.aliases(frontier)]:
            for h, r, t, pid in kg.triples_with(node):
                if (h, r, t) in on_path:
                    continue
                new = {"triples": path["triples"] + [[h, r, t]], "passage_ids": path["passage_ids"] + [pid],
                       "frontier": t if h == node else h, "score": 0.0}
                key = _path_key(new)
                if key not in known:
                    known.add(key)
                    out.append(new)
    return out


def similarity(embed, paths: list[dict], query: str) -> np.ndarray:
    if not paths:
        return np.zeros(0)
    # NeuroPath embeds a path as its text with "->" replaced by spaces.
    vecs = embed([path_text(p).replace(" -> ", " ") for p in paths])
    return vecs @ embed([query])[0]


def prune(embed, paths: list[dict], query: str, width: int) -> list[dict]:
    """Keep the `width` paths most similar to `query` (all of them when there are fewer)."""
    if len(paths) <= width:
        return paths
    sims = similarity(embed, paths, query)
    return [paths[i] for i in np.argsort(-sims, kind="stable")[:width]]


# -- faithful judge ---------------------------------------------------------------------
class PathTracking(BaseModel):
    current_chain: str = Field(default="", max_length=600)
    valid_ids: list[int] = Field(default_factory=list, max_length=10)
    expansion_requirements: str = Field(default="", max_length=300)
    need_expand_ids: list[int] = Field(default_factory=list, max_length=10)
    continue_: int = Field(default=0, ge=0, le=1, alias="continue")

    model_config = {"populate_by_name": True}


def numbered_paths(paths: list[dict], expandable: set[int]) -> str:
    lines = []
    for i, p in enumerate(paths, 1):
        tag = f" <expandable: {p['frontier']}>" if i - 1 in expandable else ""
        lines.append(f"{i}. {path_text(p)}{tag}")
    return "\n".join(lines)


def track_faithful(llm, question: str, paths: list[dict], expandable: set[int]) -> PathTracking:
    msgs = [{"role": "system", "content": prompts.load("path_track_system")},
            {"role": "user", "content": prompts.load("path_track_user").format(
                question=question, paths=numbered_paths(paths, expandable))}]
    # The paper stops with no paths on a parse error; we do the same through the typed fallback.
    return llm.structured(msgs, PathTracking, fallback=PathTracking(), node="path_track", max_tokens=300)


def valid_ids(ids: list[int], n: int) -> list[int]:
    """1-based ids from the model -> 0-based indexes in range, ordered, unique."""
    out = []
    for i in ids:
        if 1 <= i <= n and i - 1 not in out:
            out.append(i - 1)
    return out


# -- scored judge -----------------------------------------------------------------------
def yes_probability(llm, question: str, path: dict) -> float:
    msgs = [{"role": "user", "content": prompts.load("path_probe").format(question=question, path=path_text(path))}]
    probs = llm.next_token_probs(msgs, ["yes", "no"], node="path_probe")
    return probs["yes"]


def structure_score(path: dict, seeds: set[str], query_entities: set[str]) -> float:
    """Paths that touch several query entities (a bridge) or end on one score higher; long
    paths that wander away score lower."""
    nodes = {e for h, _, t in path["triples"] for e in (h, t)}
    touched = len(nodes & (seeds | query_entities))
    return 0.5 * min(touched, 3) - 0.1 * (len(path["triples"]) - 1)


def _rank01(x: np.ndarray) -> np.ndarray:
    """Scores -> ranks scaled to [0, 1] (robust to the scale of each signal)."""
    if len(x) <= 1:
        return np.ones_like(x, dtype=float)
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return order / (len(x) - 1)


def pick_probabilities(llm, question: str, paths: list[dict], order: list[int]) -> dict[int, float]:
    """One forward pass for several paths: list them numbered 1..n (n <= 9, one digit token each)
    and read the next-token distribution over the numbers. Each path is scored relative to the
    others, for the price of one prompt instead of one per path."""
    order = order[:9]
    listing = "\n".join(f"{n}. {path_text(paths[i])}" for n, i in enumerate(order, 1))
    msgs = [{"role": "user", "content": prompts.load("path_pick").format(question=question, listing=listing)}]
    probs = llm.next_token_probs(msgs, [str(n) for n in range(1, len(order) + 1)], node="path_pick")
    return {i: probs[str(n)] for n, i in enumerate(order, 1)}


def llm_path_scores(llm, question: str, paths: list[dict], probe_ids: list[int], probe: str) -> dict[int, float]:
    """`each`: P(yes) per path, one call each. `list`: the probed paths in one numbered listing,
    read twice (similarity order and reversed) and averaged, because a small model favours the
    first and last numbers; two short calls instead of `len(probe_ids)`. `none`: no call, {}."""
    if probe == "none":
        return {}
    if probe == "each":
        return {i: yes_probability(llm, question, paths[i]) for i in probe_ids}
    if probe != "list":
        raise ValueError(f"unknown probe {probe!r}: use one of {PROBES}")
    if len(probe_ids) == 1:
        return {probe_ids[0]: 1.0}
    forward = pick_probabilities(llm, question, paths, probe_ids)
    backward = pick_probabilities(llm, question, paths, probe_ids[::-1])
    # Scaled so a uniform pick reads 0.5, like an undecided yes-probability.
    return {i: min(1.0, 0.5 * (forward[i] + backward[i]) * len(probe_ids) / 2) for i in probe_ids}


def score_paths(llm, embed, question: str, query: str, paths: list[dict], seeds: set[str],
                query_ents: set[str], probe_k: int = 8, weights=(0.45, 0.35, 0.2), probe: str = "each") -> list[float]:
    """Fused path scores: the LLM's judgement (`llm_path_scores`, for the `probe_k` paths most
    similar to the question; the rest get half the lowest probed value), embedding similarity,
    structure."""
    if not paths:
        return []
    sims = similarity(embed, paths, query)
    probe_ids = np.argsort(-sims, kind="stable")[:probe_k].tolist()
    judged = llm_path_scores(llm, question, paths, probe_ids, probe)
    struct = np.array([structure_score(p, seeds, query_ents) for p in paths])
    w_llm, w_emb, w_struct = weights
    if not judged:  # probe "none": the embedding and structure terms alone, in the same proportion
        fused = (w_emb * _rank01(sims) + w_struct * _rank01(struct)) / (w_emb + w_struct)
        return [float(s) for s in fused]
    floor = min(judged.values(), default=0.0)
    yes = np.array([judged.get(i, floor * 0.5) for i in range(len(paths))])
    fused = w_llm * (0.5 * _rank01(yes) + 0.5 * yes) + w_emb * _rank01(sims) + w_struct * _rank01(struct)
    return [float(s) for s in fused]


class PathReasoning(BaseModel):
    current_chain: str = Field(default="", max_length=400)
    expansion_requirements: str = Field(default="", max_length=200)


def reason_over_paths(llm, question: str, paths: list[dict]) -> PathReasoning:
    listing = "\n".join(f"- {path_text(p)}" for p in paths) or "- (no facts found)"
    msgs = [{"role": "system", "content": prompts.load("path_reason_system")},
            {"role": "user", "content": f"Question: {question}\nFacts:\n{listing}"}]
    return llm.structured(msgs, PathReasoning, fallback=PathReasoning(expansion_requirements=question[:200]),
                          node="path_reason", max_tokens=160)


def candidate_passages(paths: list[dict]) -> list[str]:
    """Passages along the kept paths, in path order then hop order, de-duplicated."""
    out: list[str] = []
    for p in paths:
        for pid in p["passage_ids"]:
            if pid not in out:
                out.append(pid)
    return out


def cover_entities_first(ranking: list[str], texts: dict[str, str], entities: list[str], pool: int = 10) -> list[str]:
    """Put first the pair of passages (among the top `pool`) that together mention the most query
    entities; ties go to the pair ranked highest (lowest rank sum); the rest keeps its order.

    A multi-hop answer needs a passage per entity it joins ("Were X and Y both ...?" needs X's and
    Y's), while the fused ranking tends to put two passages about the same entity first.
    Mentions are whole-word matches of the normalised name in the normalised passage text.
    """
    names = {n for n in (normalize_entity(e) for e in entities) if n}
    top = ranking[:pool]
    if len(top) < 3 or not names:
        return ranking
    padded = {pid: f" {normalize_entity(texts.get(pid, ''))} " for pid in top}  # each text normalised once
    mentioned = {pid: {n for n in names if f" {n} " in padded[pid]} for pid in top}
    best, pair = None, None
    for i in range(len(top)):
        for j in range(i + 1, len(top)):
            key = (len(mentioned[top[i]] | mentioned[top[j]]), -(i + j))
            if best is None or key > best:
                best, pair = key, [top[i], top[j]]
    return pair + [pid for pid in ranking if pid not in pair]


_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script, as normalize_entity keeps them
# Links from the top two passages (the pair cover_entities_first chose, so R@2 is untouched) fill
# ranks 3-5: chosen on the held-out sets, not the slices (evals/RESULTS.md, "Follow title links").
LINK_ANCHORS = 2
LINK_LIMIT = 3


def passage_body(title: str, text: str) -> str:
    """A registry passage string without its leading title line (titled records store both)."""
    return text[len(title) + 1:] if title and text.startswith(title + "\n") else text


def _named_titles(sources: list[str], own: list[str], passages, index: dict[str, list[str]]) -> set[str]:
    """Ids of the passages whose titles the `sources` passages name (the `own` passages excluded)."""
    from placecell.tools.retrievers import title_key

    own_titles = {title_key(passages[pid][0]) for pid in own}
    tokens = _WORD.findall(fold(" ".join(passage_body(*passages[pid]) for pid in sources)))
    words = [t.lower() for t in tokens]
    # A link is written as a name: some word of it starts with a capital or a digit ("the Rank
    # Organisation"). A file called "notes" is not linked from every passage that says "notes".
    capital = [t[0].isupper() or t[0].isdigit() for t in tokens]
    longest = 12  # words in the longest title followed
    named: set[str] = set()
    for i in range(len(words)):
        for n in range(1, min(longest, len(words) - i) + 1):
            key = " ".join(words[i:i + n])
            if key in index and key not in own_titles and any(capital[i:i + n]):
                named.update(index[key])
    return named - set(own)


def follow_title_links(ranking: list[str], passages, index: dict[str, list[str]], outside: list[str] = (),
                       anchors: int = LINK_ANCHORS, limit: int = LINK_LIMIT, depth: int = 1,
                       pool: int = 10) -> tuple[list[str], list[str]]:
    """Place right after the top `anchors` passages up to `limit` passages whose title those
    passages name, like following a wiki link from the best passages to the next hop's page.

    `passages`: id -> (title, text), a mapping that can look up any id it is asked for; `index`:
    title key -> ids (`retrievers.title_index`). Linked passages already among the top `pool` keep
    their order and come first; then those in `outside` (the caller's order: the completion query's
    dense ranking). A passage's own title does not count as a link, nor does a mention all in lower
    case. With `depth` 2, places the first links leave free go to the passages *they* name (a
    third hop). Returns (new ranking, linked ids).
    """
    top = ranking[:anchors]
    if not top or not index:
        return ranking, []

    def in_order(named: set[str]) -> list[str]:
        found = [pid for pid in ranking[:pool] if pid in named]
        return found + [pid for pid in outside if pid in named and pid not in found]

    linked = in_order(_named_titles(top, top, passages, index))[:limit]
    if depth > 1 and 0 < len(linked) < limit:
        linked += in_order(_named_titles(linked, top + linked, passages, index))[: limit - len(linked)]
    return top + linked + [pid for pid in ranking if pid not in top and pid not in linked], linked


def keep_nearest(ranking: list[str], nearest: list[str], top: int) -> list[str]:
    """Give each of `nearest` (the question's nearest passages by embedding, best first) a place
    in the first `top` of `ranking`: the missing ones take the last places there, and the passages
    they displace move down, in order. The path, lexical, coverage and link steps each reorder the
    top of the ranking, and together they can push out the one passage plain dense retrieval
    would have put first."""
    missing = [pid for pid in nearest if pid not in ranking[:top]][:top]
    if not missing:
        return ranking
    head = ranking[: top - len(missing)] + missing
    return head + [pid for pid in ranking if pid not in head]
