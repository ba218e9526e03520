"""Fit the recommendation score's weights on users the WebRec eval does not sample.

    python -m placecell.evals.recommend_weights --data goodbooks_399 [--users 300] [--seed 7] --out DIR [--write]

The final item score is ctr_weight * logit(CTR) + cf_weight * z(CF) + evidence_weight * evidence
(see `agents/recommend/fusion.py`). For each probe user (outside `placecell eval recommend`'s seed-0
sample of 50, so fitting never looks at the eval's test users) the graph ranks the eval's protocol
list (1 held-out positive + 99 sampled negatives) with the `web_direct` variant (direct title
queries on the local web, no LLM) and the three features of every candidate are saved
(`DIR/features.jsonl`, resumable). A conditional logit is fitted on them; 5-fold cross-validated
HR@10 compares the fit with CF alone, the fixed weights, and ablations. `--write` saves the fit on
all probe users as the catalog's weights (`tools/ctr/artifacts/<catalog>_fusion.json`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FEATURES = ("cf", "ctr", "evidence")
FITS = {"cf + ctr + evidence": (1.0, 1.0, 1.0), "cf + ctr": (1.0, 1.0, 0.0), "cf + evidence": (1.0, 0.0, 1.0)}
FIXED = {"cf only": (1.0, 0.0, 0.0), "fixed (1, 1, 2)": (1.0, 1.0, 2.0), "fixed cf + ctr (1, 1, 0)": (1.0, 1.0, 0.0)}


def collect(data: str, users: int, seed: int, out_dir: Path, eval_users: int = 50) -> tuple[list[dict], list[str]]:
    """(per-user candidate features, the eval's users that were left out)."""
    from placecell.agents.recommend.fakes import ScriptedLLM
    from placecell.agents.recommend.fusion import ctr_model_hash
    from placecell.agents.recommend.state import RecommendContext
    from placecell.evals import recommend as R
    from placecell.graphs.recommend import build_recommend_graph
    from placecell.tools.embed import get_embedder
    from placecell.tools.stores.jsonl_cache import JsonlCache
    from placecell.tools.web.client import FetchOptions, WebClient
    from placecell.tools.web.localweb import build_local_web

    ev = R.load_eval_data(data, None)
    eligible = R.eligible_users(ev)
    test = set(R.sample_users(eligible, eval_users, 0))  # the eval's own seed-0 sample is excluded
    rest = [u for u in eligible if u not in test]
    probe = [rest[j] for j in np.random.default_rng(seed).choice(len(rest), size=min(users, len(rest)), replace=False)]
    identity = {"data": data, "seed": seed, "ctr": ctr_model_hash(ev.catalog.name)}
    done = JsonlCache(out_dir / "features.jsonl")
    todo = [u for u in probe if (done.get(u) or {}).get("identity") != identity]
    if todo:
        recsys, items, target = R.local_web_setup(ev)
        # The feature values do not depend on the weights: fixed ones keep the run independent of any fit.
        ctx = RecommendContext(catalog=ev.catalog.name, explain=False, layout=False, message_passing=False,
                               query_mode="direct", use_ctr=True, cf_weight=1.0, ctr_weight=1.0, evidence_weight=0.0)
        with WebClient("local", local_pages=build_local_web(items), options=FetchOptions(allow_hosts=("127.0.0.1",))) as web:
            # ScriptedLLM: web_direct calls no model (no reasoning, no explanations).
            graph = build_recommend_graph(recsys, web=web, llm=ScriptedLLM(), embedder=R.MemoEmbedder(get_embedder()))
            for user in todo:
                n = probe.index(user) + 1
                cands = R.sample_candidates(ev, user, np.random.default_rng([seed, n]), target.item_id)
                inputs = {"history": [{"item": i} for i in ev.history[user]], "user_id": user, "candidates": cands}
                ranked = graph.invoke(inputs, context=ctx)["items"]
                done.put(user, {"identity": identity, "positive": ev.test_item[user],
                                "items": [[it["item_id"], it["cf"], it["ctr"], it["evidence"]] for it in ranked]})
                if n % 25 == 0:
                    print(f"[{n}/{len(probe)}] features collected", flush=True)
    return [{"user": u, **done.get(u)} for u in probe], sorted(test)


def design(rows: list[dict]) -> tuple[list[np.ndarray], list[int]]:
    from placecell.tools.recsys_nodes import logit

    lists, answers = [], []
    for row in rows:
        items = row["items"]
        x = np.array([[cf, ctr, ev] for _, cf, ctr, ev in items], dtype=np.float64)
        x[:, 1] = logit(x[:, 1])
        lists.append(x)
        answers.append([it[0] for it in items].index(row["positive"]))
    return lists, answers


def hit_rates(w: np.ndarray, lists: list[np.ndarray], answers: list[int], idx) -> dict[str, float]:
    """HR@1/5/10 with ties split evenly (a constant feature must not look like a win)."""
    hits = {1: [], 5: [], 10: []}
    for i in idx:
        s = lists[i] @ w
        rank = 1 + np.sum(s > s[answers[i]]) + 0.5 * (np.sum(s == s[answers[i]]) - 1)
        for k in hits:
            hits[k].append(float(rank <= k))
    return {f"hr@{k}": round(float(np.mean(v)), 4) for k, v in hits.items()}


def cross_validated_fit(lists: list[np.ndarray], answers: list[int], mask, names, folds: int = 5, seed: int = 0) -> dict:
    """Cross-validated HR@1/5/10 of a conditional logit on the unmasked features, and its fit on all users."""
    from placecell.agents.recommend.fusion import fit_conditional_logit

    n = len(lists)
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    cv_hits = {"hr@1": 0.0, "hr@5": 0.0, "hr@10": 0.0}
    for k in range(folds):
        if not len(parts[k]):
            continue
        train = np.concatenate([parts[j] for j in range(folds) if j != k])
        w = fit_conditional_logit([lists[i] for i in train], [answers[i] for i in train], mask)
        for m, v in hit_rates(w, lists, answers, parts[k]).items():
            cv_hits[m] += v * len(parts[k]) / n
    w_all = fit_conditional_logit(lists, answers, mask)
    return {**{m: round(v, 4) for m, v in cv_hits.items()},
            "weights": {f: round(float(x), 4) for f, x in zip(names, w_all)}}


def evaluate(rows: list[dict], folds: int = 5, seed: int = 0) -> dict:
    lists, answers = design(rows)
    n = len(lists)
    table = {name: {**hit_rates(np.array(w), lists, answers, range(n)), "weights": dict(zip(FEATURES, w))}
             for name, w in FIXED.items()}
    for name, mask in FITS.items():
        table[f"fitted: {name}"] = cross_validated_fit(lists, answers, mask, FEATURES, folds, seed)
    return table


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="goodbooks_399")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--write", action="store_true", help="save the full fit as the catalog's score weights")
    args = ap.parse_args(argv)
    from placecell.agents.recommend.fusion import ctr_model_hash, save_weights
    from placecell.evals.multihop_report import cpu_model, nproc
    from placecell.tools.recsys_data import load_catalog

    args.out.mkdir(parents=True, exist_ok=True)
    rows, eval_users = collect(args.data, args.users, args.seed, args.out)
    table = evaluate(rows)
    catalog = load_catalog(args.data).name
    command = shlex.join(["python", "-m", "placecell.evals.recommend_weights", *(argv if argv is not None else sys.argv[1:])])
    results = {"data": args.data, "users": len(rows), "seed": args.seed, "ctr_model": ctr_model_hash(catalog),
               "probe_users": [r["user"] for r in rows], "eval_users": eval_users, "scores": table, "command": command}
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    lines = [f"# Recommendation score weights: {args.data}", "",
             f"- {len(rows)} users outside the eval's sample (seed {args.seed}), `web_direct` variant (no LLM), "
             f"1 held-out positive + 99 sampled negatives each; CTR model `{results['ctr_model']}`",
             "- fitted rows: 5-fold cross-validated hit rates; their weights are the fit on all users",
             f"- machine: {nproc()} CPUs (`nproc`), {cpu_model()}; embedder MiniLM-L6 int8", f"- command: `{command}`", "",
             "| score | HR@1 | HR@5 | HR@10 | cf | ctr | evidence |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['hr@1']:.3f} | {r['hr@5']:.3f} | {r['hr@10']:.3f} | "
              + " | ".join(f"{r['weights'][f]:.3f}" for f in FEATURES) + " |" for name, r in table.items()]
    if args.write:
        chosen = table["fitted: cf + ctr + evidence"]
        path = save_weights(catalog, chosen["weights"], {"fitted_on": {"users": len(rows), "seed": args.seed,
                                                                       "variant": "web_direct", "command": command},
                                                         "cv_hr@10": chosen["hr@10"]})
        lines += ["", f"Written: `{path.name}` (the full fit, cf + ctr + evidence)."]
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
