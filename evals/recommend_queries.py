"""Can the web evidence help at all? Whether WebRec's searches find the held-out item.

    python -m placecell.evals.recommend_queries --data goodbooks_399 [--users 50] [--depth 50] --out DIR

For each user of `placecell eval recommend`'s seed-0 sample, on the eval's own candidate list
(1 held-out positive + 99 negatives), the recommendation graph runs on the clean local web with
direct title queries, with reasoned keyword queries, and with both (`query_mode=both`: the
titles, then the keywords); message passing on, no explanations, no layout. Per user and query
mode it records the queries; the best rank of the held-out item's own page over the queries'
results, searched to `--depth`; whether that rank is within the depth the graph searches
(`results_per_query`); the evidence feature the graph gave the held-out item and its rank among
the 100 candidates by that feature alone (every candidate gets some evidence; a random feature
ranks it 50.5 on average). Web evidence can only lift the held-out item in the
final score when it supports that item more than the negatives: this shows how often it does.
Resumable: one checkpoint line per finished user.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

MODES = ("direct", "reasoned", "both")


def held_out_page_rank(web, queries: list[str], page_path: str, depth: int) -> int | None:
    """Best 1-based rank of the page over the queries' results (None: not within `depth`)."""
    best = None
    for query in queries:
        for rank, hit in enumerate(web.search(query, depth), start=1):
            if hit.url.endswith(page_path):
                best = rank if best is None else min(best, rank)
                break
    return best


def user_row(graph, web, ev, user: str, cands: list[str], catalog: str, depth: int) -> dict:
    from placecell.agents.recommend.state import RecommendContext
    from placecell.tools.web.localweb import item_page_path

    inputs = {"history": [{"item": i} for i in ev.history[user]], "user_id": user, "candidates": cands}
    row = {}
    for mode in MODES:
        ctx = RecommendContext(catalog=catalog, query_mode=mode, message_passing=True, explain=False, layout=False)
        out = graph.invoke(inputs, context=ctx)
        items = out["items"]
        ranked = [it["item_id"] for it in items]
        evidence = {it["item_id"]: float(it.get("evidence") or 0.0) for it in items}
        positive = ev.test_item[user]
        row[mode] = {"queries": out.get("queries", []),
                     "page_rank": held_out_page_rank(web, out.get("queries", []), item_page_path(positive), depth),
                     "evidence": evidence.get(positive, 0.0),
                     # 1 + negatives with more evidence: the held-out item's rank by the evidence feature alone
                     "evidence_rank": 1 + sum(v > evidence.get(positive, 0.0) for k, v in evidence.items() if k != positive),
                     "rank": ranked.index(positive) + 1}
    return row


def summarise(rows: list[dict], graph_depth: int) -> dict:
    out = {}
    for mode in MODES:
        r = [row[mode] for row in rows]
        n = max(1, len(r))
        out[mode] = {
            "page_in_graph_results": round(sum(x["page_rank"] is not None and x["page_rank"] <= graph_depth
                                               for x in r) / n, 4),
            "page_within_depth": round(sum(x["page_rank"] is not None for x in r) / n, 4),
            "evidence_rank_mean": round(float(np.mean([x["evidence_rank"] for x in r])), 2) if r else None,
            "evidence_hr@10": round(sum(x["evidence_rank"] <= 10 for x in r) / n, 4),
            "hr@10": round(sum(x["rank"] <= 10 for x in r) / n, 4),
        }
    return out


def run(data: str, users: int, depth: int, out_dir: Path) -> tuple[list[dict], dict]:
    from placecell.agents.recommend.state import RecommendContext
    from placecell.evals import recommend as R
    from placecell.graphs.recommend import build_recommend_graph
    from placecell.prompts import load as load_prompt
    from placecell.tools.embed import get_embedder
    from placecell.tools.llm import get_llm
    from placecell.tools.stores.jsonl_cache import JsonlCache
    from placecell.tools.web.client import FetchOptions, WebClient
    from placecell.tools.web.localweb import build_local_web

    ev = R.load_eval_data(data, None)
    sample = R.sample_users(R.eligible_users(ev), users, 0)
    llm = get_llm()
    identity = {"data": data, "model": getattr(llm, "model_id", "?"), "depth": depth, "modes": list(MODES),
                "reason_prompt": hashlib.sha256(load_prompt("recommend_reason").encode()).hexdigest()[:16]}
    done = JsonlCache(out_dir / "checkpoints.jsonl")
    todo = [u for u in sample if (done.get(u) or {}).get("identity") != identity]
    if todo:
        recsys, items, target = R.local_web_setup(ev)
        with WebClient("local", local_pages=build_local_web(items), options=FetchOptions(allow_hosts=("127.0.0.1",))) as web:
            # MemoLLM: "reasoned" and "both" share one reasoning per user (greedy decoding: the same text).
            graph = build_recommend_graph(recsys, web=web, llm=R.MemoLLM(llm), embedder=R.MemoEmbedder(get_embedder()))
            for user in todo:
                n = sample.index(user) + 1  # the eval's candidate draw for its n-th user
                cands = R.sample_candidates(ev, user, np.random.default_rng([0, n]), target.item_id)
                done.put(user, {"identity": identity, **user_row(graph, web, ev, user, cands, ev.catalog.name, depth)})
                print(f"[{n}/{len(sample)}] user {user}", flush=True)
    rows = [{"user": u, **done.get(u)} for u in sample]
    return rows, summarise(rows, RecommendContext.results_per_query)


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    from placecell.agents.recommend.state import RecommendContext
    from placecell.evals.multihop_report import cpu_model, nproc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="goodbooks_399")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--depth", type=int, default=50, help="how deep each query's results are searched for the page")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, summary = run(args.data, args.users, args.depth, args.out)
    command = shlex.join(["python", "-m", "placecell.evals.recommend_queries", *(argv if argv is not None else sys.argv[1:])])
    model = rows[0]["identity"]["model"] if rows else "?"
    results = {"data": args.data, "users": len(rows), "depth": args.depth, "model": model, "modes": summary,
               "command": command}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    graph_depth = RecommendContext.results_per_query
    lines = [f"# Does the web search find the held-out item? {args.data}", "",
             f"- {len(rows)} users of `placecell eval recommend`'s seed-0 sample, their eval candidate lists, "
             "clean local web, message passing on, no explanations",
             f"- model `{model}`; machine: {nproc()} CPUs (`nproc`), {cpu_model()}", f"- command: `{command}`", "",
             f"| queries | held-out page in the graph's results (top {graph_depth} per query) | within top {args.depth} "
             "| held-out item's mean rank by evidence alone (of 100) | in the top 10 by evidence alone "
             "| HR@10 (final score) |", "|---|---|---|---|---|---|"]
    for mode, s in summary.items():
        lines.append(f"| {mode} | {s['page_in_graph_results']:.2f} | {s['page_within_depth']:.2f} | "
                     f"{s['evidence_rank_mean']} | {s['evidence_hr@10']:.2f} | {s['hr@10']:.2f} |")
    lines += ["", "First users' queries:", ""]
    lines += [f"- user {r['user']}: direct {r['direct']['queries']}; reasoned {r['reasoned']['queries']}" for r in rows[:5]]
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
