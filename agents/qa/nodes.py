"""QA graph nodes: NeuroPath (ner -> seed -> expand -> prune -> judge -> ... -> complete), the
baseline retrievers, and the reader. Each node returns a partial update."""

from __future__ import annotations

from langgraph.runtime import Runtime

from placecell.agents import checks
from placecell.agents.backends import Backends
from placecell.agents.events import emit
from placecell.agents.qa import neuropath as npath
from placecell.agents.qa.reader import parse_answer, reader_messages
from placecell.agents.qa.state import QAContext, QAState
from placecell.agents.reducers import Fresh
from placecell.errors import NoDataError
from placecell.tools.stores.kg import KG_VERSION


def _ctx(runtime: Runtime[QAContext] | None) -> QAContext:
    return (runtime.context if runtime is not None else None) or QAContext()


def make_nodes(backends: Backends):
    embed = lambda texts: backends.get_embedder().embed(texts)  # noqa: E731

    def llm_for(runtime) -> object:
        """The backends' LLM, or the model the run's context names (one instance per model)."""
        model = _ctx(runtime).model
        if not model:
            return backends.get_llm()
        from placecell.tools.llm import get_llm

        return get_llm(backends.settings, model=model)

    def start(state: QAState, runtime: Runtime[QAContext]) -> dict:
        checks.text_input(state, "question", required=True)
        if len(backends.get_registry()) == 0:
            raise NoDataError("no documents ingested yet (run: placecell ingest PATH)")
        # Everything a run reports starts over: on a checkpointed thread the last run's values are still there.
        return {"method": _ctx(runtime).method, "hop": 0, "seen_paths": [], "paths": [], "valid": [], "expand": [],
                "chain": "", "requirements": "", "entities": [], "seeds": [], "ranking": [], "answer": "",
                "citations": [], "notes": Fresh()}

    def ner(state: QAState, runtime: Runtime[QAContext]) -> dict:
        ents = npath.query_entities(llm_for(runtime), state["question"])
        emit({"event": "entities", "entities": ents})
        return {"entities": ents}

    def seed(state: QAState, runtime: Runtime[QAContext]) -> dict:
        kg = backends.load_kg(llm_for(runtime).model_id)
        seeds = npath.link_seeds(kg, embed, state.get("entities", []))
        paths = npath.hop1_paths(kg, seeds)
        notes = [] if paths else ["no knowledge-graph paths from the question's entities: dense retrieval only"]
        if kg.n_triples() and backends.answers_with_another_models_kg(llm_for(runtime).model_id):
            notes.append("the knowledge graph was built by another model than the one answering (none was built "
                         "with this one here): `placecell ingest` again with this model builds its own")
        elif (missing := backends.unextracted(llm_for(runtime).model_id))[0]:
            notes.append(f"the knowledge graph covers {missing[1] - missing[0]} of {missing[1]} passages (the others "
                         "were stored without extraction by this model): `placecell ingest` again extracts them")
        if kg.version < KG_VERSION and kg.n_triples():
            notes.append("the knowledge graph was built by an older placecell (accented names not folded); "
                         "`placecell ingest` again rebuilds it from cached extractions without LLM calls")
        emit({"event": "seeds", "seeds": seeds, "paths": len(paths)})
        return {"seeds": seeds, "new_paths": paths, "hop": 1, "notes": notes}

    def expand(state: QAState, runtime: Runtime[QAContext]) -> dict:
        known = {npath.path_text(p) for p in state.get("seen_paths", [])}
        new = npath.expand_paths(backends.load_kg(llm_for(runtime).model_id), state.get("expand", []), known)
        return {"new_paths": new, "hop": state["hop"] + 1}

    def prune(state: QAState, runtime: Runtime[QAContext]) -> dict:
        query = state["question"] if state["hop"] <= 1 else (state.get("requirements") or state["question"])
        kept = npath.prune(embed, state.get("new_paths", []), query, _ctx(runtime).prune_width)
        return {"new_paths": kept}

    def judge(state: QAState, runtime: Runtime[QAContext]) -> dict:
        ctx = _ctx(runtime)
        new = state.get("new_paths", [])
        # The judge sees every path kept so far; only this round's new ones are expandable.
        shown = state.get("valid", []) + new
        offset = len(state.get("valid", []))
        if ctx.mode == "faithful":
            update = _judge_faithful(llm_for(runtime), state, shown, set(range(offset, len(shown))))
        else:
            update = _judge_scored(llm_for(runtime), embed, state, shown, offset, probe=ctx.path_probe,
                                   reason=state["hop"] <= ctx.reason_rounds)
        keep_going = update["keep_going"] and state["hop"] < ctx.max_hop and bool(update["expand"])
        update["keep_going"] = keep_going
        update["seen_paths"] = state.get("seen_paths", []) + new
        emit({"event": "paths", "hop": state["hop"], "valid": [npath.path_text(p) for p in update["valid"]],
               "expand": [p["frontier"] for p in update["expand"]], "chain": update.get("chain", state.get("chain", ""))})
        return update

    def complete(state: QAState, runtime: Runtime[QAContext]) -> dict:
        ranking = complete_ranking(backends, _ctx(runtime), state["question"],
                                   npath.candidate_passages(state.get("valid", [])), state.get("chain", ""),
                                   state.get("requirements", ""), state.get("entities", []), emit)
        used = [{"triples": p["triples"], "passage_ids": p["passage_ids"]} for p in state.get("valid", [])]
        return {"ranking": ranking, "paths": used}

    def retrieve(state: QAState, runtime: Runtime[QAContext]) -> dict:
        ctx = _ctx(runtime)
        run_backends = backends
        if ctx.model:  # PPR's NER and IRCoT's steps use the run's model too
            import dataclasses

            run_backends = dataclasses.replace(backends, llm=llm_for(runtime))
        if state["method"] == "ircot":
            from placecell.agents.qa.ircot import ircot_retrieve

            ranked = ircot_retrieve(state["question"], run_backends, ctx.rank_k)
        else:
            from placecell.tools.retrievers import RETRIEVERS

            ranked = RETRIEVERS[state["method"]](state["question"], run_backends, ctx.rank_k)
        return {"ranking": [pid for pid, _ in ranked][: ctx.rank_k]}

    def read(state: QAState, runtime: Runtime[QAContext]) -> dict:
        ctx = _ctx(runtime)
        rows = backends.get_registry().get_many(state.get("ranking", [])[: ctx.top_k])
        passages = [rows[pid] for pid in state.get("ranking", [])[: ctx.top_k] if pid in rows]
        citations = [{"title": p.title, "passage_id": p.id, "source": p.source} for p in passages]
        if not ctx.answer or not passages:
            return {"answer": "", "citations": citations}
        if not shares_a_word(state["question"], passages):
            # Retrieval always returns its top k; a small reader then "answers" from an unrelated
            # passage and cites it. No shared word: the documents do not cover the question.
            return {"answer": "", "citations": [], "notes": [
                "no retrieved passage shares a word with the question: your documents do not seem to cover it"]}
        from placecell.tools.llm.langchain import PlacecellChatModel

        # Through the LangChain wrapper so LangGraph's `messages` stream mode sees the tokens.
        model = PlacecellChatModel(llm=llm_for(runtime), node="read", max_tokens=96)
        text = model.invoke(reader_messages(state["question"], passages)).content
        return {"answer": parse_answer(text), "citations": citations}

    return {"start": start, "ner": ner, "seed": seed, "expand": expand, "prune": prune, "judge": judge,
            "complete": complete, "retrieve": retrieve, "read": read}


def shares_a_word(question: str, passages) -> bool:
    """Whether any passage holds one of the question's content words (compared by their first five
    letters, so "founded" meets "founding"). A question with no such words (stop words only, or a
    script the tokeniser does not split) is not judged."""
    from placecell.tools.web.text import content_words

    asked = {w[:5] for w in content_words(question)}
    if not asked:
        return True
    return any(asked & {w[:5] for w in content_words(f"{p.title} {p.text}")} for p in passages)


def complete_ranking(backends: Backends, ctx: QAContext, question: str, candidates: list[str], chain: str = "",
                     requirements: str = "", entities: list[str] = (), emit_event=lambda event: None) -> list[str]:
    """Post-retrieval completion and the scored mode's reordering steps: the path candidates, then
    every passage by the completion query (question + reasoning chain + what is missing); in scored
    mode fused with the question's BM25, the entity-covering pair first, then title links, then
    (`keep_nearest`) the question's nearest passages kept among the reader's top_k. A pure
    function of its inputs (no LLM call), so `evals/complete_replay.py` can rerun it on saved traces."""
    from placecell.tools.retrievers import bm25, dense, rrf, title_index

    query = " ".join(x for x in (question, chain, requirements) if x)
    # Exact cosine over every passage, the same scorer as the dense baseline.
    by_query = [pid for pid, _ in dense(query, backends, None)]
    ranking = (list(candidates) + [pid for pid in by_query if pid not in candidates])[: ctx.rank_k]
    if ctx.fuse_bm25 and ctx.mode == "scored":
        # Paths from a 0.5B model's KG are noisy about which passage comes first; the question's
        # own words, matched lexically, anchor the top ranks (ties keep the path order).
        # Faithful mode stays the paper's method, unfused.
        fused = rrf([[(pid, 0.0) for pid in ranking], bm25(question, backends, ctx.rank_k)], ctx.rank_k)
        ranking = [pid for pid, _ in fused]
    passages = _PassageLookup(backends.get_registry())  # read once, shared by the steps below
    if ctx.cover_entities and ctx.mode == "scored":
        passages.update({pid: (p.title, p.text) for pid, p in passages.registry.get_many(ranking).items()})
        fused_order = ranking
        texts = {pid: passages[pid][1] for pid in ranking}
        ranking = npath.cover_entities_first(ranking, texts, list(entities))
        if ranking[:2] != fused_order[:2]:  # say why the top two changed
            emit_event({"event": "cover", "passage_ids": ranking[:2], "titles": [passages[pid][0] for pid in ranking[:2]]})
    if ctx.title_links and ctx.mode == "scored":
        anchors = ranking[: npath.LINK_ANCHORS]
        ranking, linked = npath.follow_title_links(ranking, passages, title_index(backends), by_query,
                                                   depth=ctx.link_depth)
        ranking = ranking[: ctx.rank_k]
        if linked:
            emit_event({"event": "links", "from": [passages[pid][0] for pid in anchors],
                        "passage_ids": linked, "titles": [passages[pid][0] for pid in linked]})
    if ctx.keep_nearest and ctx.mode == "scored":
        nearest = [pid for pid, _ in dense(question, backends, ctx.keep_nearest)]
        reordered = npath.keep_nearest(ranking, nearest, ctx.top_k)
        kept = [pid for pid in reordered[: ctx.top_k] if pid not in ranking[: ctx.top_k]]
        ranking = reordered[: ctx.rank_k]
        if kept:
            emit_event({"event": "nearest", "passage_ids": kept, "titles": [passages[pid][0] for pid in kept]})
    return ranking


class _PassageLookup(dict):
    """id -> (title, text), read from the registry the first time an id is asked for."""

    def __init__(self, registry) -> None:
        super().__init__()
        self.registry = registry

    def __missing__(self, pid: str) -> tuple[str, str]:
        row = self.registry.get_many([pid])[pid]
        self[pid] = (row.title, row.text)
        return self[pid]


def _judge_faithful(llm, state: QAState, shown: list[dict], expandable: set[int]) -> dict:
    out = npath.track_faithful(llm, state["question"], shown, expandable)
    valid = [shown[i] for i in npath.valid_ids(out.valid_ids, len(shown))]
    expand = [shown[i] for i in npath.valid_ids(out.need_expand_ids, len(shown)) if i in expandable]
    # Keep valid ∪ expand (NeuroPath §2.6), valid first in the model's order.
    kept = valid + [p for p in expand if p not in valid]
    return {"valid": kept, "expand": expand, "chain": out.current_chain,
            "requirements": out.expansion_requirements, "keep_going": out.continue_ == 1 and bool(kept)}


def _judge_scored(llm, embed, state: QAState, shown: list[dict], offset: int, n_valid: int = 6,
                  n_expand: int = 3, probe: str = "each", reason: bool = True) -> dict:
    query = state["question"] if state["hop"] <= 1 else f"{state['question']} {state.get('requirements', '')}"
    ents = {npath.normalize_entity(e) for e in state.get("entities", [])}
    scores = npath.score_paths(llm, embed, state["question"], query, shown, set(state.get("seeds", [])), ents, probe=probe)
    shown = [{**p, "score": s} for p, s in zip(shown, scores)]  # new dicts: state is never mutated
    order = sorted(range(len(shown)), key=lambda i: -scores[i])
    valid = [shown[i] for i in order[:n_valid]]
    seeds = set(state.get("seeds", []))
    expand = [shown[i] for i in order if i >= offset and shown[i]["frontier"] not in seeds][:n_expand]
    if not reason:  # past `reason_rounds`: the last round's reasoning stands (it already steered this hop)
        return {"valid": valid, "expand": expand, "keep_going": True}
    reasoning = npath.reason_over_paths(llm, state["question"], valid[:4])
    done = reasoning.expansion_requirements.strip().lower().startswith("nothing")
    return {"valid": valid, "expand": expand, "chain": reasoning.current_chain,
            "requirements": reasoning.expansion_requirements, "keep_going": not done}
