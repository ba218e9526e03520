"""`placecell recommend` and `placecell eval recommend`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from placecell.agents.recommend.webstep import open_web_client
from placecell.cli import app, eval_app
from placecell.cli.common import console, err_console, print_json, settings_from, warn, writable_dir
from placecell.errors import InputError
from placecell.tools.web.archive import WebArchive

MODEL_OPT = typer.Option(None, "--model", "-m", help="preset, .gguf path or hf:REPO/FILE (env PLACECELL_MODEL)")
HOME_OPT = typer.Option(None, "--home", help="data folder (env PLACECELL_HOME)")
WEB_HELP = "live (ddgs) | record (live, saved to --web-dir) | replay (--web-dir, offline) | local (local web on 127.0.0.1) | off"


def _print_page(out: dict) -> None:
    for carousel in out.get("carousels", []):
        console.print(f"\n[bold]{carousel['title']}[/bold]")
        for item in carousel["items"]:
            console.print(f"  {item['title']}  (score {item['score']:.3f}, evidence {item['evidence']:.2f})", markup=False)
            if item.get("reason"):
                console.print(f"    {item['reason']}", markup=False)
            for url in item.get("evidence_urls", []):
                console.print(f"    source: {url}", markup=False)
    if out.get("queries"):
        console.print(f"\nqueries: {'; '.join(out['queries'])}", markup=False)


def usage_total(per_node: dict) -> dict:
    """The run's LLM usage summed over nodes, named as in `ask --json`'s usage."""
    total = {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    for usage in per_node.values():
        total["llm_calls"] += usage.get("calls", 0)
        total["prompt_tokens"] += usage.get("prompt_tokens", 0)
        total["completion_tokens"] += usage.get("completion_tokens", 0)
        total["seconds"] += usage.get("seconds", 0.0)
    total["seconds"] = round(total["seconds"], 2)
    return total


@app.command()
def recommend(
    history: str = typer.Option(None, "--history", help="CSV (item[,rating]), JSONL or a .json array of {item, rating}: catalog ids or titles, ratings on the 0-5 scale (4 or more: liked)"),
    likes: str = typer.Option(None, "--likes", help="free-text description of what you like"),
    user: str = typer.Option(None, "--user", help="a user id of the --data catalog"),
    data: str = typer.Option("goodbooks_399", "--data", help="catalog: goodbooks_399 | movielens"),
    web: str = typer.Option("live", "--web", help=WEB_HELP),
    web_dir: str = typer.Option(None, "--web-dir", help="archive folder for --web record/replay"),
    allow_host: list[str] = typer.Option([], "--allow-host", help="allow fetching this loopback/private host (HOST: any port; HOST:PORT: that port)"),
    k: int = typer.Option(5, "--k", help="items per carousel (1-50)"),
    strategy: str = typer.Option("combined", "--strategy", help="carousel strategy: accuracy | diversity | xquad | novelty | serendipity | combined"),
    queries: str = typer.Option("reasoned", "--queries", help="web queries: reasoned (LLM reasoning -> scored keywords) | direct (history titles) | both"),
    no_explain: bool = typer.Option(False, "--no-explain", help="skip the LLM explanations"),
    as_json: bool = typer.Option(False, "--json", help="carousels, items, scores, reasons, URLs, queries, usage (per node and usage_total), model (sha256, null when no LLM ran) and model_name"),
    model: str = MODEL_OPT,
    home: str = HOME_OPT,
) -> None:
    """Recommend from a history (or likes) with evidence searched and fetched from the web."""
    from placecell.agents.recommend.catalog import load_recsys, read_history_file
    from placecell.agents.recommend.state import QUERY_MODES, RecommendContext
    from placecell.graphs.recommend import build_recommend_graph

    likes = (likes or "").strip()
    if not (history or likes or user):
        raise InputError("give --history FILE, --likes TEXT or --user ID")
    if queries not in QUERY_MODES or queries == "none":
        raise InputError(f"unknown --queries {queries!r} (known: reasoned, direct, both; no web: --web off)")
    from placecell.tools.web.safety import check_allow_hosts

    check_allow_hosts(allow_host)
    settings = settings_from(model=model, home=home)
    recsys = load_recsys(data)
    entries = read_history_file(history) if history else []
    if entries and not likes and all(recsys.resolve(e["item"]) is None for e in entries):
        # Most likely the wrong catalog: a page of popular items would look like an answer to this history.
        shown = ", ".join(repr(e["item"]) for e in entries[:3])
        raise InputError(f"none of the {len(entries)} items in {history} is in the {data} catalog ({shown}"
                         f"{', ...' if len(entries) > 3 else ''}); check --data, or describe your taste with --likes")
    if user and user not in set(recsys.catalog.interactions.users.tolist()):
        raise InputError(f"user {user!r} is not in the {data} catalog")
    inputs = {"history": entries, "likes": likes or "", "user_id": user or ""}
    ctx = RecommendContext(catalog=data, query_mode="none" if web == "off" else queries, explain=not no_explain,
                           k=k, strategy=strategy)
    if web == "replay" and web_dir and Path(web_dir).is_dir() and not any(WebArchive(web_dir).counts().values()):
        warn(f"--web-dir {web_dir} holds no recorded searches or pages: the page is made without the web")
    start = time.perf_counter()
    with open_web_client(web, web_dir, allow_host, settings, recsys) as client:
        graph = build_recommend_graph(recsys, web=None if web == "off" else client)
        out = graph.invoke(inputs, context=ctx)
    out["seconds"] = round(time.perf_counter() - start, 2)
    out["usage_total"] = usage_total(out.get("usage") or {})
    # The same keys on every run (a run without web or LLM has no queries and loads no model).
    for key, empty in (("queries", []), ("keywords", []), ("model", None)):
        out.setdefault(key, empty)
    out["model_name"] = settings.llm_model if settings.llm_backend == "openai" else settings.model
    if as_json:
        print_json(out)
    else:
        for note in out.get("notes", []):
            warn(note)
        _print_page(out)
    if web == "record" and not WebArchive(web_dir).counts()["searches"]:
        # The page above was made without the web; a replay of this folder would find nothing either.
        err_console.print(f"error: nothing was recorded in {web_dir}: every web search failed (see the notes)",
                          markup=False)
        raise typer.Exit(1)


@eval_app.command("recommend")
def eval_recommend(
    data: str = typer.Option("goodbooks_399", "--data", help="goodbooks_399 | movielens"),
    users: int = typer.Option(50, "--users", help="users sampled for the evaluation"),
    out: str = typer.Option(None, "--out", help="report folder (default evals/reports/recommend_<data>)"),
    interactions: str = typer.Option(None, "--interactions", help="ratings file (goodbooks layout: user_id,book_id,rating)"),
    holdout: str = typer.Option(None, "--holdout", help="held-out ratings file, same layout"),
    items: str = typer.Option(None, "--items", help="books.csv"),
    item_tags: str = typer.Option(None, "--item-tags", help="book_tags.csv"),
    tag_names: str = typer.Option(None, "--tag-names", help="tags.csv"),
    seed: int = typer.Option(0, "--seed", help="user and negative sampling seed"),
    model: str = MODEL_OPT,
    home: str = HOME_OPT,
) -> None:
    """Next-item ranking (1 held-out positive + 99 sampled negatives) for CF, CF+CTR and the web variants."""
    from placecell.evals.recommend import EvalFiles, run_recommend_eval

    if users < 1:
        raise InputError(f"--users must be at least 1, not {users}")
    settings_from(model=model, home=home)
    files = None
    if any([interactions, holdout, items, item_tags, tag_names]):
        if not all([interactions, holdout, items, item_tags, tag_names]):
            raise InputError("explicit data needs --interactions, --holdout, --items, --item-tags and --tag-names")
        files = EvalFiles(interactions, holdout, items, item_tags, tag_names)
    folder = writable_dir(Path(out) if out else Path("evals/reports") / f"recommend_{data if files is None else 'files'}")
    results = run_recommend_eval(data, users=users, out_dir=folder, files=files, seed=seed)
    console.print(f"wrote {folder}/results.json and report.md", markup=False)
    for name, metrics in results["variants"].items():
        console.print(f"  {name:24s} HR@10 {metrics['hr@10']:.3f}  NDCG@10 {metrics['ndcg@10']:.3f}", markup=False)
    console.print(f"  injection_changed_outputs {results['injection_changed_outputs']}", markup=False)
