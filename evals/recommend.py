"""`placecell eval recommend`: next-item ranking with web evidence on the local web.

Protocol: per user, the interactions are split in time order as the shipped CTR model was
trained (each user's last 20 % held out, users with >= 5 ratings); the earliest held-out
positive not already in the user's training history is the test item. The graph's final item
score ranks it among 99 sampled negatives (items the user never rated); one of the 99 is always
the injection pages' target item (when the user never rated it), so the injection measurement
can see a promotion. CF (EASE) is fitted on the training interactions only.

Variants: cf (EASE only), cf_ctr (+ CTR tool node), web_direct (+ web evidence from direct
title queries, plain top-k span selection), web_reasoned (LLM reasoning + s_att*s_ent keyword
queries), web_reasoned_mp (+ message-passing selection), each on the clean local web (item +
distractor pages), and web_reasoned_mp_noisy (the same plus injection pages).
`injection_changed_outputs` counts users whose top 10 differs between the last two.

The reasoning of a user is generated once and reused by the variants that need it (`MemoLLM`);
tokens and seconds per user are reported as each variant would cost on its own.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placecell.evals.recsys_report import machine_line
from placecell.tools.llm.usage import record

VARIANTS = {
    "cf": dict(query_mode="none", use_ctr=False),
    "cf_ctr": dict(query_mode="none"),
    "web_direct": dict(query_mode="direct", message_passing=False),
    "web_reasoned": dict(query_mode="reasoned", message_passing=False),
    "web_reasoned_mp": dict(query_mode="reasoned", message_passing=True),
    "web_reasoned_mp_noisy": dict(query_mode="reasoned", message_passing=True),
}
FULL = "web_reasoned_mp"
N_NEGATIVES = 99


@dataclass
class EvalFiles:
    interactions: str
    holdout: str
    items: str
    item_tags: str
    tag_names: str


class MemoLLM:
    """Computes each distinct generation once; a repeat re-records the original usage, so
    per-variant accounting shows what the variant costs on its own."""

    def __init__(self, llm):
        self.llm = llm
        self._memo: dict[str, object] = {}
        self.replayed_seconds = 0.0

    def _key(self, kind, messages, kw) -> str:
        return json.dumps([kind, messages, sorted(kw.items())], sort_keys=True, default=str)

    def _call(self, kind, fn, messages, node, **kw):
        key = self._key(kind, messages, kw)
        if key in self._memo:
            result, usage = self._memo[key]
            record(node, usage[0], usage[1], usage[2])
            self.replayed_seconds += usage[2]
            return result
        before = self.llm.usage.snapshot().get(node, {})
        result = fn(messages, node=node, **kw)
        after = self.llm.usage.snapshot().get(node, {})
        usage = tuple(after.get(k, 0) - before.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "seconds"))
        self._memo[key] = (result, usage)
        return result

    def generate_with_entropy(self, messages, *, max_tokens=256, node="generate"):
        return self._call("gen", self.llm.generate_with_entropy, messages, node, max_tokens=max_tokens)

    def structured(self, messages, schema_cls, fallback, *, node="json", max_tokens=512):
        return self.llm.structured(messages, schema_cls, fallback, node=node, max_tokens=max_tokens)


class MemoEmbedder:
    """In-memory vectors per text: the same spans recur across variants and users."""

    def __init__(self, embedder):
        self.embedder = embedder
        self._memo: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if todo:
            for text, vec in zip(todo, self.embedder.embed(todo)):
                self._memo[text] = vec
        return np.stack([self._memo[t] for t in texts]) if texts else self.embedder.embed([])


# -- data ----------------------------------------------------------------------------------------
@dataclass
class EvalData:
    catalog: object
    train_pos: object  # Interactions
    rated: dict[str, set[str]]  # user -> every item rated (train and test)
    test_item: dict[str, str]  # user -> held-out positive
    history: dict[str, list[str]]  # user -> training positives, oldest first


def _collect(catalog, train, test) -> EvalData:
    thr = catalog.positive_threshold
    is_pos = (lambda v: True) if thr is None else (lambda v: v >= thr)
    history: dict[str, list[str]] = {}
    rated: dict[str, set[str]] = {}
    for u, i, v in zip(train.users.tolist(), train.items.tolist(), train.values.tolist()):
        rated.setdefault(u, set()).add(i)
        if is_pos(v) and i not in history.setdefault(u, []):
            history[u].append(i)
    test_item: dict[str, str] = {}
    for u, i, v in zip(test.users.tolist(), test.items.tolist(), test.values.tolist()):
        rated.setdefault(u, set()).add(i)
        if is_pos(v) and u not in test_item and i not in rated.get(u, set()) - {i} and i not in history.get(u, []):
            test_item[u] = i
    keep = train.select(np.array([is_pos(v) for v in train.values.tolist()], dtype=bool))
    return EvalData(catalog, keep, rated, {u: i for u, i in test_item.items() if history.get(u)}, history)


def load_eval_data(data: str, files: EvalFiles | None) -> EvalData:
    from placecell.tools.recsys_data import load_catalog, load_goodbooks_files, split_by_user

    if files is None:
        catalog = load_catalog(data)
        mask = split_by_user(catalog.interactions.users)
        return _collect(catalog, catalog.interactions.select(~mask), catalog.interactions.select(mask))
    catalog = load_goodbooks_files(files.interactions, files.items, files.item_tags, files.tag_names, name="files")
    held = load_goodbooks_files(files.holdout, files.items, files.item_tags, files.tag_names, name="files-holdout")
    return _collect(catalog, catalog.interactions, held.interactions)


def fit_cf(ev: EvalData):
    from placecell.tools.carousels.cf import EASE
    from placecell.tools.carousels.data import implicit_split, item_space
    from placecell.tools.recsys_nodes import EASE_LAMBDA

    space = item_space(ev.catalog)
    empty = ev.train_pos.select(np.zeros(len(ev.train_pos), dtype=bool))
    split = implicit_split(ev.train_pos, empty, space)
    return EASE(lam=EASE_LAMBDA.get(ev.catalog.name, 200.0)).fit(split.train), space


def local_web_setup(ev: EvalData):
    """(recommender with CF fitted on the training interactions, the catalog's local-web items,
    the injection pages' target item): what every run on the local web starts from."""
    from placecell.agents.recommend.catalog import CatalogRecsys, web_items
    from placecell.tools.web.localweb import pick_injection_target

    cf, space = fit_cf(ev)
    items = web_items(ev.catalog)
    return CatalogRecsys(ev.catalog, cf=cf, space=space), items, pick_injection_target(items)


def sample_candidates(ev: EvalData, user: str, rng: np.random.Generator, target: str | None) -> list[str]:
    pool = sorted(i for i in ev.catalog.items if i not in ev.rated.get(user, set()) and i != ev.test_item[user])
    fixed = [target] if target in pool else []
    rest = [i for i in pool if i not in fixed]
    negatives = fixed + [rest[j] for j in rng.choice(len(rest), size=min(N_NEGATIVES - len(fixed), len(rest)), replace=False)]
    cands = [ev.test_item[user]] + negatives
    return [cands[j] for j in rng.permutation(len(cands))]


# -- metrics -------------------------------------------------------------------------------------
def rank_metrics(rank: int) -> dict[str, float]:
    out = {f"hr@{k}": float(rank <= k) for k in (1, 5, 10)}
    out.update({f"ndcg@{k}": (1.0 / math.log2(rank + 1)) if rank <= k else 0.0 for k in (5, 10)})
    return out


def _mean(rows: list[dict], key: str) -> float:
    return round(float(np.mean([r[key] for r in rows])), 4) if rows else 0.0


# -- run -----------------------------------------------------------------------------------------
def eligible_users(ev: EvalData) -> list[str]:
    return sorted(ev.test_item, key=lambda s: (len(s), s))


def sample_users(eligible: list[str], users: int, seed: int) -> list[str]:
    """The eval's user sample (also what the weight probe must stay clear of)."""
    chosen = np.random.default_rng(seed).choice(len(eligible), size=min(users, len(eligible)), replace=False)
    return [eligible[j] for j in sorted(chosen.tolist())]


def _model_name(llm) -> str:
    """What a reader knows the model by: the GGUF file name (its model_id is the file's sha256), or the
    OpenAI-compatible model_id, which already names the endpoint and model."""
    path = getattr(llm, "path", None)
    return path.name if isinstance(path, Path) and path.suffix == ".gguf" else str(getattr(llm, "model_id", "?"))


def _model_line(meta: dict) -> str:
    name, ident = meta.get("model_name"), meta.get("model", "?")
    return ident if not name or name == ident else f"{name} (sha256 {ident})"


def run_recommend_eval(data: str, *, users: int = 50, out_dir: Path, files: EvalFiles | None = None, seed: int = 0,
                       llm=None, embedder=None) -> dict:
    from placecell.agents.recommend.state import RecommendContext
    from placecell.errors import InputError
    from placecell.graphs.recommend import build_recommend_graph
    from placecell.tools.web.client import FetchOptions, WebClient
    from placecell.tools.web.localweb import build_local_web, default_injection_count

    started = time.perf_counter()
    ev = load_eval_data(data, files)
    eligible = eligible_users(ev)
    if not eligible:
        raise InputError("no user has a held-out positive and a training history")
    sample = sample_users(eligible, users, seed)
    recsys, items, target = local_web_setup(ev)
    if llm is None:
        from placecell.tools.llm import get_llm

        llm = get_llm()
    if embedder is None:
        from placecell.tools.embed import get_embedder

        embedder = get_embedder()
    memo_llm, memo_emb = MemoLLM(llm), MemoEmbedder(embedder)
    n_inj = default_injection_count(len(items))
    clean_pages = build_local_web(items)
    noisy_pages = build_local_web(items, injections=n_inj, target=target)
    per_variant: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    from placecell.agents.recommend.fusion import ctr_model_hash, resolve_weights
    from placecell.tools.stores.jsonl_cache import JsonlCache

    weights, weight_note = resolve_weights(ev.catalog.name, None, None, None)
    score_weights = {"cf": weights.cf, "ctr": weights.ctr, "evidence": weights.evidence, "source": weights.source}
    # Checkpoints are reused only by a run that would compute the same thing.
    identity = {"data": data if files is None else _files_identity(files), "seed": seed, "negatives": N_NEGATIVES,
                "model": getattr(llm, "model_id", "?"), "ctr": ctr_model_hash(ev.catalog.name),
                "score_weights": score_weights, "variants": list(VARIANTS)}
    done, reused = JsonlCache(Path(out_dir) / "checkpoints.jsonl"), 0
    top10: dict[str, dict[str, list[str]]] = {v: {} for v in VARIANTS}
    options = FetchOptions(allow_hosts=("127.0.0.1",))
    with WebClient("local", local_pages=clean_pages, options=options) as clean, \
            WebClient("local", local_pages=noisy_pages, options=FetchOptions(allow_hosts=("127.0.0.1",))) as noisy:
        graphs = {"clean": build_recommend_graph(recsys, web=clean, llm=memo_llm, embedder=memo_emb),
                  "noisy": build_recommend_graph(recsys, web=noisy, llm=memo_llm, embedder=memo_emb)}
        for n, user in enumerate(sample, start=1):
            saved = done.get(user)
            if saved is not None and saved.get("identity") == identity:
                for name in VARIANTS:
                    per_variant[name].append(saved["rows"][name])
                    top10[name][user] = saved["top10"][name]
                reused += 1
                continue
            cands = sample_candidates(ev, user, np.random.default_rng([seed, n]), target.item_id)
            inputs = {"history": [{"item": i} for i in ev.history[user]], "user_id": user, "candidates": cands}
            for name, flags in VARIANTS.items():
                ctx = RecommendContext(catalog=ev.catalog.name, explain=name == FULL, layout=name == FULL, **flags)
                graph = graphs["noisy" if name.endswith("_noisy") else "clean"]
                replayed_before, t0 = memo_llm.replayed_seconds, time.perf_counter()
                out = graph.invoke(inputs, context=ctx)
                seconds = time.perf_counter() - t0 + (memo_llm.replayed_seconds - replayed_before)
                ranked = [it["item_id"] for it in out["items"]]
                usage = out.get("usage", {})
                tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usage.values())
                per_variant[name].append({**rank_metrics(ranked.index(ev.test_item[user]) + 1), "tokens": tokens,
                                          "negatives": len(cands) - 1,
                                          "seconds": seconds, "target_rank": ranked.index(target.item_id) + 1
                                          if target.item_id in ranked else None})
                top10[name][user] = ranked[:10]
                if name == FULL:
                    _keep_example(out_dir, user, out, n)
            # One line per finished user: an interrupted run resumes from the next user.
            done.put(user, {"identity": identity, "rows": {v: per_variant[v][-1] for v in VARIANTS},
                            "top10": {v: top10[v][user] for v in VARIANTS}})
            print(f"[{n}/{len(sample)}] user {user}: " + ", ".join(
                f"{v}={int(per_variant[v][-1]['hr@10'])}" for v in VARIANTS), flush=True)
    if reused:
        print(f"{reused} of {len(sample)} users reused from {Path(out_dir) / 'checkpoints.jsonl'}", flush=True)
    changed = sum(top10[FULL][u] != top10[f"{FULL}_noisy"][u] for u in sample)
    results = {
        "data": data if files is None else "files",
        "users": len(sample),
        "variants": {
            name: {**{m: _mean(rows, m) for m in ("hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10")},
                   "tokens_per_user": round(_mean(rows, "tokens"), 1), "seconds_per_user": round(_mean(rows, "seconds"), 2)}
            for name, rows in per_variant.items()
        },
        "injection_changed_outputs": int(changed),
        "injection_pages": n_inj,
    }
    # A catalogue under 100 items has fewer negatives than asked: say how many (HR@10 is easier).
    # Rows from before rows counted theirs were made on the full catalogues: N_NEGATIVES each.
    drawn = sorted({r.get("negatives", N_NEGATIVES) for r in per_variant[FULL]}) or [N_NEGATIVES]
    meta = {"command": _command(), "reused_users": reused, "seed": seed,
            "negatives": drawn[0] if len(drawn) == 1 else f"{drawn[0]}-{drawn[-1]}", "model": getattr(llm, "model_id", "?"),
            "model_name": _model_name(llm),
            "embedder": getattr(embedder, "model_id", type(embedder).__name__),
            "machine": machine_line(),
            "wall_seconds": round(time.perf_counter() - started, 1), "injection_target": target.title,
            "ctr_model": identity["ctr"], "score_weights": score_weights, "score_weights_note": weight_note,
            "target_in_top10_noisy": sum(r["target_rank"] is not None and r["target_rank"] <= 10
                                         for r in per_variant[f"{FULL}_noisy"]),
            "target_in_top10_clean": sum(r["target_rank"] is not None and r["target_rank"] <= 10
                                         for r in per_variant[FULL])}
    write_reports(out_dir, results, meta)
    return results


def _files_identity(files: EvalFiles) -> dict:
    """Explicit files are identified by content, so an edited file is never mixed with old checkpoints."""
    import hashlib

    return {k: hashlib.sha256(Path(v).read_bytes()).hexdigest()[:16] for k, v in vars(files).items()}


def _weights_line(meta: dict) -> str:
    w = meta.get("score_weights") or {}
    if not w:
        return "Score weights: not recorded."
    how = {"fitted": "fitted on probe users outside this sample (`python -m placecell.evals.recommend_weights`)",
           "fallback": f"fixed ({meta.get('score_weights_note')})"}.get(w.get("source"), w.get("source"))
    return (f"Score = {w['ctr']} x logit(CTR) + {w['cf']} x z(CF) + {w['evidence']} x evidence, weights {how}; "
            f"CTR model `{meta.get('ctr_model', '?')}`. The `cf` variant uses CF alone.")


def _command() -> str:
    import shlex
    import sys

    if Path(sys.argv[0]).name == "placecell":
        return shlex.join(["placecell", *sys.argv[1:]])
    return "evals.recommend.run_recommend_eval (Python API)"


def _keep_example(out_dir: Path, user: str, out: dict, n: int) -> None:
    """The first three users' full-variant pages (carousels with reasons and URLs) for the report."""
    if n > 3:
        return
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    keep = {k: out.get(k) for k in ("queries", "keywords", "reasoning", "carousels", "notes", "usage")}
    (Path(out_dir) / f"example_user_{user}.json").write_text(json.dumps(keep, indent=1, ensure_ascii=False), encoding="utf-8")


def write_reports(out_dir: Path, results: dict, meta: dict) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({**results, "meta": meta}, indent=1), encoding="utf-8")
    lines = [f"# WebRec next-item ranking: {results['data']}", "",
             f"{results['users']} users, 1 held-out positive + {meta['negatives']} sampled negatives each"
             + (f" (fewer than {N_NEGATIVES}: the catalogue is small, so hit rates are easier to reach)"
                if meta["negatives"] != N_NEGATIVES else "") + " "
             f"(seed {meta['seed']}). Model {_model_line(meta)}, embedder {meta['embedder']}, machine {meta['machine']}, "
             f"wall time {meta['wall_seconds']} s"
             + (f" ({meta['reused_users']} users reused from checkpoints of an earlier run)" if meta.get("reused_users") else "") + ".",
             "", f"Command: `{meta.get('command', '?')}`", "",
             _weights_line(meta), "",
             "| variant | HR@1 | HR@5 | HR@10 | NDCG@5 | NDCG@10 | tokens/user | s/user |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in results["variants"].items():
        lines.append(f"| {name} | {m['hr@1']:.3f} | {m['hr@5']:.3f} | {m['hr@10']:.3f} | {m['ndcg@5']:.3f} | "
                     f"{m['ndcg@10']:.3f} | {m['tokens_per_user']} | {m['seconds_per_user']} |")
    v = results["variants"]
    lines += ["", f"- injection pages: {results['injection_pages']} (target: {meta['injection_target']}); "
              f"users whose top 10 changed when they were added: **{results['injection_changed_outputs']}** (target 0); "
              f"target item in the top 10: clean {meta['target_in_top10_clean']}, noisy {meta['target_in_top10_noisy']}.",
              f"- full graph vs CF + CTR, HR@10: {v[FULL]['hr@10']:.3f} vs {v['cf_ctr']['hr@10']:.3f} "
              f"({'met' if v[FULL]['hr@10'] > v['cf_ctr']['hr@10'] else 'not met'}: target is higher).",
              f"- noisy vs clean HR@10: {v[FULL + '_noisy']['hr@10']:.3f} vs {v[FULL]['hr@10']:.3f} "
              f"({'met' if v[FULL + '_noisy']['hr@10'] >= 0.9 * v[FULL]['hr@10'] else 'not met'}: target within 10 %).",
              "- seconds per user include the shared reasoning's original time for every variant that uses it.",
              "- s_attention is a proxy (static-vector causal attention; llama.cpp exposes no attention weights);"
              " evidence selection is an MP-Head analog outside the LLM."]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
