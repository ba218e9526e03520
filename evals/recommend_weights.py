"""Weight probe for the recommendation score, on users the WebRec eval does not sample.

    python -m placecell.evals.recommend_weights [--users 100] [--seed 7] --out DIR

The final item score is sigmoid(logit(CTR) + cf_weight * z(CF) + evidence_weight * evidence).
This probe ranks each user's held-out positive among 99 negatives (the eval's protocol) for a
grid of (cf_weight, evidence_weight) with the `web_direct` variant (direct title queries, no LLM),
on users outside `placecell eval recommend`'s seed-0 sample of 50, so choosing weights here
never looks at the eval's test users.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GRID = ((1.0, 0.0, False), (1.0, 0.0, True), (1.0, 2.0, True), (1.0, 5.0, True), (1.0, 10.0, True),
        (0.5, 2.0, True), (0.5, 5.0, True), (0.25, 5.0, True))  # (cf_weight, evidence_weight, use_ctr)


def run(data: str, users: int, seed: int, eval_users: int = 50) -> dict:
    from placecell.agents.recommend.catalog import CatalogRecsys, web_items
    from placecell.agents.recommend.fakes import ScriptedLLM
    from placecell.agents.recommend.state import RecommendContext
    from placecell.evals import recommend as R
    from placecell.graphs.recommend import build_recommend_graph
    from placecell.tools.embed import get_embedder
    from placecell.tools.web.client import FetchOptions, WebClient
    from placecell.tools.web.localweb import build_local_web, pick_injection_target

    ev = R.load_eval_data(data, None)
    eligible = R.eligible_users(ev)
    test = set(R.sample_users(eligible, eval_users, 0))  # the eval's own seed-0 sample is excluded
    rest = [u for u in eligible if u not in test]
    probe = [rest[j] for j in np.random.default_rng(seed).choice(len(rest), size=min(users, len(rest)), replace=False)]
    cf, space = R.fit_cf(ev)
    recsys = CatalogRecsys(ev.catalog, cf=cf, space=space)
    items = web_items(ev.catalog)
    target = pick_injection_target(items)
    rows: dict[tuple, list[dict]] = {g: [] for g in GRID}
    with WebClient("local", local_pages=build_local_web(items), options=FetchOptions(allow_hosts=("127.0.0.1",))) as web:
        # ScriptedLLM: no variant in the grid calls the model (no reasoning, no explanations).
        graph = build_recommend_graph(recsys, web=web, llm=ScriptedLLM(), embedder=R.MemoEmbedder(get_embedder()))
        for n, user in enumerate(probe, 1):
            cands = R.sample_candidates(ev, user, np.random.default_rng([seed, n]), target.item_id)
            inputs = {"history": [{"item": i} for i in ev.history[user]], "user_id": user, "candidates": cands}
            for cw, ew, ctr in GRID:
                ctx = RecommendContext(catalog=ev.catalog.name, explain=False, layout=False, message_passing=False,
                                       query_mode="direct" if ew else "none", use_ctr=ctr, cf_weight=cw, evidence_weight=ew)
                ranked = [it["item_id"] for it in graph.invoke(inputs, context=ctx)["items"]]
                rows[(cw, ew, ctr)].append(R.rank_metrics(ranked.index(ev.test_item[user]) + 1))
    return {"data": data, "users": len(probe), "seed": seed, "probe_users": probe, "eval_users": sorted(test),
            "grid": [{"cf_weight": cw, "evidence_weight": ew, "use_ctr": ctr,
                      **{m: round(float(np.mean([r[m] for r in rs])), 4) for m in ("hr@1", "hr@5", "hr@10", "ndcg@10")}}
                     for (cw, ew, ctr), rs in rows.items()]}


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="goodbooks_399")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    from placecell.evals.multihop_report import cpu_model, nproc

    results = run(args.data, args.users, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    command = shlex.join(["python", "-m", "placecell.evals.recommend_weights", *(argv if argv is not None else sys.argv[1:])])
    lines = [f"# Recommendation score weights: {results['data']}", "",
             f"- {results['users']} users outside the eval's sample (seed {results['seed']}), `web_direct` variant, no LLM",
             f"- machine: {nproc()} CPUs (`nproc`), {cpu_model()}; embedder MiniLM-L6 int8", f"- command: `{command}`", "",
             "| cf_weight | evidence_weight | CTR | HR@1 | HR@5 | HR@10 | NDCG@10 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {g['cf_weight']} | {g['evidence_weight']} | {'yes' if g['use_ctr'] else 'no'} | {g['hr@1']:.3f} | "
              f"{g['hr@5']:.3f} | {g['hr@10']:.3f} | {g['ndcg@10']:.3f} |" for g in results["grid"]]
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
