"""Recommendation graph nodes. Each builds its input, calls one helper, returns a partial update.

resolve -> reason -> make_queries -> search -> fetch -> select_evidence -> candidates -> score
-> carousels -> explain. Web text is data: it reaches the LLM only fenced in the user turn of
`explain`, and the ranking is computed in code, so a page cannot reorder items by asking.
"""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.runtime import Runtime

from placecell.agents import checks
from placecell.agents.events import emit
from placecell.agents.recommend import prompting
from placecell.agents.recommend.catalog import CatalogRecsys, item_text, zscore
from placecell.agents.recommend.fusion import resolve_weights
from placecell.agents.recommend.queries import (
    direct_queries,
    fallback_keywords,
    queries_from_keywords,
    score_keywords,
)
from placecell.agents.recommend.state import RecommendContext, RecommendState
from placecell.agents.recommend.webstep import (
    ItemVectors,
    choose_evidence,
    evidence_features,
    fetch_pages,
    run_searches,
)
from placecell.agents.reducers import Fresh, FreshUsage
from placecell.errors import InputError, ModelError, PlacecellError
from placecell.tools.llm.usage import usage_scope


def _ctx(runtime: Runtime[RecommendContext] | None) -> RecommendContext:
    return (runtime.context if runtime is not None else None) or RecommendContext()


@dataclass
class RecommendDeps:
    recsys: CatalogRecsys
    web: object | None = None  # an entered WebClient (None: no web)
    llm: object | None = None
    embedder: object | None = None

    def get_llm(self):
        if self.llm is None:
            from placecell.tools.llm import get_llm

            self.llm = get_llm()
        return self.llm

    def get_embedder(self):
        if self.embedder is None:
            from placecell.tools.embed import get_embedder

            self.embedder = get_embedder()
        return self.embedder


def _usage(scope) -> dict:
    return {node: {k: v for k, v in u.items() if k != "fallbacks"} for node, u in scope.snapshot().items()}


def make_nodes(deps: RecommendDeps) -> dict:
    recsys = deps.recsys
    catalog = recsys.catalog
    vectors = ItemVectors(deps.get_embedder(), lambda iid: item_text(catalog.items[iid]))

    def items_of(ids: list[str]) -> list:
        return [catalog.items[i] for i in ids if i in catalog.items]

    def resolve(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        expected = _ctx(runtime).catalog
        if expected and expected != catalog.name:
            raise InputError(f"this graph recommends from the {catalog.name} catalog, not {expected!r}; "
                             f"build one with build_recommend_graph(catalog={expected!r})")
        entries = checks.list_input(state, "history", dict, "{item, rating} entries")
        checks.text_input(state, "likes", required=False)
        checks.list_input(state, "candidates", str, "item ids")
        if state.get("user_id") is not None and not isinstance(state["user_id"], (str, int)):
            raise InputError(f"input 'user_id' must be text, not {type(state['user_id']).__name__}")
        if not entries and state.get("user_id"):
            entries = [{"item": i} for i in catalog.history(str(state["user_id"]))]
        liked, seen, unknown = [], [], []
        for entry in entries:
            checks.history_entry(entry)
            iid = recsys.resolve(str(entry.get("item", "")))
            if iid is None:
                unknown.append(str(entry.get("item", "")))
                continue
            seen.append(iid)
            if recsys.is_positive(entry.get("rating")):
                liked.append(iid)
        liked += recsys.titles_in(state.get("likes", ""))
        notes = []
        web_on = deps.web is not None and _ctx(runtime).query_mode != "none"
        if unknown:
            notes.append(f"{len(unknown)} history item(s) not in the {catalog.name} catalog were ignored: "
                         + ", ".join(repr(u) for u in unknown[:5]))
        if not liked:
            notes.append("cold start: no usable history, so candidates come from popularity"
                         + (" plus web evidence" if web_on else " (web search is off)"))
        # Everything a run reports starts over: on a checkpointed thread the last run's values are still there.
        fresh = {"reasoning": "", "trace_tokens": [], "trace_entropies": [], "keywords": [], "queries": [], "hits": [],
                 "pages": [], "evidence": [], "web": {"backend": "off" if not web_on else getattr(deps.web, "backend_name", "?")},
                 "candidate_ids": [], "items": [], "carousels": [], "model": None,
                 "usage": FreshUsage()}
        return {**fresh, "liked": list(dict.fromkeys(liked)), "seen": list(dict.fromkeys(seen + liked)),
                "notes": Fresh(notes)}

    def reason(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        messages = prompting.reason_messages(items_of(state["liked"]), state.get("likes", ""), recsys.kind_noun)
        llm = deps.get_llm()
        with usage_scope() as scope:
            trace = llm.generate_with_entropy(messages, max_tokens=_ctx(runtime).reason_max_tokens, node="reason")
        return {"reasoning": trace.text.strip(), "trace_tokens": list(trace.tokens),
                "trace_entropies": [float(h) for h in trace.entropies], "usage": _usage(scope),
                "model": getattr(llm, "model_id", "?")}

    def make_queries(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        ctx = _ctx(runtime)
        titles = [i.title for i in items_of(state["liked"])] or [state.get("likes", "")]
        direct = direct_queries([t for t in titles if t], ctx.n_queries, recsys.kind_noun)
        if ctx.query_mode == "direct":
            return {"queries": direct, "keywords": []}
        keywords = score_keywords(state.get("trace_tokens", []), state.get("trace_entropies", []),
                                  deps.get_embedder(), ctx.top_keywords)
        notes = []
        if not keywords:
            keywords = fallback_keywords(state.get("reasoning", "") or state.get("likes", ""), ctx.top_keywords)
            notes.append("no token entropies from the model: keywords by frequency instead")
        queries = queries_from_keywords(keywords, ctx.n_queries, recsys.kind_noun)
        if ctx.query_mode == "both":  # the history's titles first: they find its neighbours' pages
            queries = list(dict.fromkeys(direct + queries))
        return {"keywords": [k.to_dict() for k in keywords], "queries": queries, "notes": notes}

    def search(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        hits, errors = run_searches(deps.web, state["queries"], _ctx(runtime).results_per_query)
        for query in state["queries"]:
            emit({"event": "search", "query": query, "hits": sum(h["query"] == query for h in hits)})
        notes = []
        if errors:
            notes.append(f"web search trouble ({len(errors)} of {len(state['queries'])} queries): {errors[0]}; "
                         "going on with what was found")
        web = {"backend": getattr(deps.web, "backend_name", "none"), "search_errors": errors, "hits": len(hits)}
        return {"hits": hits, "web": web, "notes": notes}

    def fetch(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        ctx = _ctx(runtime)
        outcome = fetch_pages(deps.web, state["hits"], ctx.results_per_query, ctx.max_pages)
        for page in outcome.pages:
            emit({"event": "fetch", "url": page["url"]})
        web = {**state.get("web", {}), "pages": len(outcome.pages), "fetch_errors": outcome.errors,
               "dropped_pages": outcome.dropped}
        notes = [f"{len(outcome.dropped)} page(s) carried instructions to a model and were not used"] if outcome.dropped else []
        if outcome.errors:
            notes.append(f"{len(outcome.errors)} page(s) could not be fetched (first: {outcome.errors[0]['reason']}); "
                         f"going on with {len(outcome.pages)}")
        return {"pages": outcome.pages, "web": web, "notes": notes}

    def select(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        ctx = _ctx(runtime)
        profile = "; ".join(item_text(i) for i in items_of(state["liked"])[-8:]) or state.get("likes", "")
        task_text = f"{profile}. {' '.join(state.get('queries', []))}"
        evidence, dropped = choose_evidence(state["pages"], deps.get_embedder(), task_text, top_k=ctx.top_spans,
                                            per_page=ctx.spans_per_page, message_passing=ctx.message_passing)
        web = {**state.get("web", {}), "dropped_pages": state.get("web", {}).get("dropped_pages", []) + dropped}
        return {"evidence": evidence, "web": web}

    def candidates(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        if state.get("candidates"):
            return {"candidate_ids": [str(c) for c in state["candidates"]]}
        cf, _ = recsys.cf_scores(state["liked"])
        seen = set(state.get("seen", []))
        top = [i for i in sorted(cf, key=lambda i: (-cf[i], i)) if i not in seen][: _ctx(runtime).n_candidates]
        named = [i for e in state.get("evidence", []) for i in recsys.titles_in(e["text"]) if i not in seen]
        return {"candidate_ids": list(dict.fromkeys(top + named))}

    def score(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        ctx = _ctx(runtime)
        cands = state["candidate_ids"]
        weights, weight_note = resolve_weights(catalog.name, ctx.cf_weight, ctx.ctr_weight, ctx.evidence_weight)
        cf_all, _ = recsys.cf_scores(state["liked"])
        floor = min(cf_all.values(), default=0.0)
        cf_z = zscore({i: cf_all.get(i, floor) for i in cands})
        evidence = evidence_features(state.get("evidence", []), deps.get_embedder(), vectors, cands,
                                     [catalog.items[i].title if i in catalog.items else i for i in cands])
        features = {i: {"cf": weights.cf * cf_z[i],
                        "web_evidence": weights.evidence * (evidence[i].score if evidence else 0.0)} for i in cands}
        result = recsys.ctr(state.get("user_id", ""), cands, features, weights.ctr) if ctx.use_ctr and cands else None
        ctr = {s.item_id: (s.score, s.ctr) for s in result.scores} if result else {}
        notes = list(result.notes) if result else []
        if not cands:
            notes.append("no candidates to score (the history covers every item the catalog could offer)")
        elif ctx.use_ctr and result is None:
            why = recsys.ctr_problem or f"no CTR model for catalog {catalog.name!r}"
            notes.append(f"{why}: scored by CF and evidence only")
        if weight_note and ctx.use_ctr and result is not None:
            notes.append(weight_note)
        items = []
        for i in cands:
            ev = evidence.get(i) if evidence else None
            final, p = ctr.get(i, (sum(features[i].values()), None))
            items.append({"item_id": i, "title": getattr(catalog.items.get(i), "title", i), "score": round(float(final), 6),
                          "cf": round(cf_z[i], 4), "ctr": p, "evidence": ev.score if ev else 0.0,
                          "evidence_urls": list(ev.urls[:2]) if ev and ev.score > 0 else []})
        items.sort(key=lambda it: (-it["score"], it["item_id"]))
        return {"items": items, "notes": notes}

    def carousels(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        ctx = _ctx(runtime)
        by_id = {it["item_id"]: it for it in state["items"]}
        page = recsys.carousels(state.get("user_id", ""), state["items"], state["liked"], ctx.k, ctx.strategy, ctx.n_carousels)
        if page is None:
            return {"carousels": [{"title": "Top picks", "items": state["items"][: ctx.k]}]}
        laid_out = [{"title": c.title, "items": [by_id[i.item_id] for i in c.items if i.item_id in by_id]} for c in page.carousels]
        return {"carousels": [c for c in laid_out if c["items"]], "notes": list(page.notes)}

    def explain(state: RecommendState, runtime: Runtime[RecommendContext]) -> dict:
        shown = list(dict.fromkeys(it["item_id"] for c in state["carousels"] for it in c["items"]))[:20]
        liked = items_of(state["liked"])
        by_url: dict[str, list[dict]] = {}
        for span in state.get("evidence", []):
            by_url.setdefault(span["url"], []).append(span)
        scored = {it["item_id"]: it for it in state["items"]}
        ev_by_item = {i: [s for u in scored[i]["evidence_urls"] for s in by_url.get(u, [])[:1]] for i in shown}
        # The LLM writes the first `explain_items` reasons (grammar-constrained decoding is slow on
        # CPU); the rest get the deterministic template reason. URLs are attached in code either way.
        asked = shown[: _ctx(runtime).explain_items]
        messages = prompting.explain_messages(liked, items_of(asked), ev_by_item, recsys.kind_noun)
        fallback = prompting.Explanations(reasons=[])
        llm = deps.get_llm()
        failed = ""
        with usage_scope() as scope:
            try:
                out = llm.structured(messages, prompting.Explanations, fallback, node="explain", max_tokens=24 + 40 * len(asked))
            except ModelError:
                raise  # a missing or broken model is the user's to fix, not a reason to template
            except PlacecellError as exc:
                # The page is ranked already; an endpoint that times out or fails on this last,
                # optional step must not throw it away. Every reason is templated instead.
                out, failed = fallback, str(exc)
        written = {r.n: r.reason.strip() for r in out.reasons if r.reason.strip()}
        reasons, taken, kept = {}, set(), 0
        for n, iid in enumerate(shown, start=1):
            reason = written.get(n, "") if n <= len(asked) else ""
            if prompting.usable_reason(reason, catalog.items[iid], taken, shown=messages[-1]["content"]):
                kept += 1
            else:
                reason = prompting.template_reason(catalog.items[iid], liked, with_evidence=bool(scored[iid]["evidence_urls"]))
            taken.add(reason.lower())
            reasons[iid] = reason
        carousels_out = [{"title": c["title"], "items": [{**it, "reason": reasons.get(it["item_id"], "")} for it in c["items"]]}
                         for c in state["carousels"]]
        note = f"explanations: {kept} of {len(asked)} model-written reasons kept, the others templated"
        if failed:
            note = f"explanations templated: the model call failed ({failed})"
        out = {"carousels": carousels_out, "usage": _usage(scope), "notes": [note]}
        # `model` names the LLM whose words are in the output: not one whose only call failed
        return out if failed else {**out, "model": getattr(llm, "model_id", "?")}

    return {"resolve": resolve, "reason": reason, "make_queries": make_queries, "search": search, "fetch": fetch,
            "select_evidence": select, "candidates": candidates, "score": score, "carousels": carousels,
            "explain": explain}
