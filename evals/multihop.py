"""`placecell eval multihop`: NeuroPath against the baselines on one questions/corpus pair.

1. Ingest the corpus with the ingest graph into a per-corpus home under the cache dir
   (`<cache>/corpora/<sha256 of the corpus file>/`); LLM extractions go to `<cache>/extractions/`,
   keyed by passage hash + model sha256 + prompt/schema version. The committed `evals/cache/`
   keeps the extractions, so a rerun rebuilds vectors, registry and KG without LLM calls.
2. Run the first N questions through the QA graph once per method, one checkpoint line per
   question (`<out>/checkpoints/<method>.jsonl`): an interrupted run resumes where it stopped.
   Checkpoints are reused for the same question, model, corpus file and reader setting only;
   after changing a method's code, point `--out` at a fresh folder.
3. Write `<out>/results.json`, `<out>/report.md` and `<out>/recall_at_k.png`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from placecell.errors import InputError
from placecell.evals import multihop_metrics as metrics

# `neuropath` is what `placecell ask` runs: QAContext's defaults at the time of the run (results.json
# keeps them as the method's "settings", and checkpoint rows made under other settings are not
# reused). Today that is scored paths without per-path LLM probes, one reasoning call (after hop 1),
# the final ranking fused with BM25, the pair of top passages that mention the most question entities
# first (cover_entities), the passages those two name by title next (title_links), and the
# question's nearest passage kept in the top 5 (keep_nearest). The other neuropath_* names are
# frozen variants, kept so old runs can be repeated: neuropath_bm25_lean_cover_links_near is today's
# default under a name that never moves; neuropath_bm25_lean_cover_links the same without the last
# step (the default in sessions 12-13); neuropath_bm25_lean_cover without the links either (session
# 11); neuropath_bm25_lean without the cover step (until session 11); neuropath_bm25 the default
# before that (a yes/no probe per path, a reasoning call per hop, fused); neuropath_probe its paths'
# own ranking (named `neuropath` in reports made before session 15); neuropath_bm25_noprobe: no
# probes, a reasoning call per hop; neuropath_bm25_lean_cover_links2: links two deep
# (QAContext.link_depth = 2), without keep_nearest.
DEFAULT_METHODS = ("neuropath", "neuropath_faithful", "dense", "bm25", "hybrid", "ppr", "ircot")
METHODS = DEFAULT_METHODS + (
    "neuropath_bm25_lean_cover_links_near", "neuropath_bm25_lean_cover_links", "neuropath_bm25_lean_cover",
    "neuropath_bm25_lean", "neuropath_probe", "neuropath_bm25", "neuropath_bm25_noprobe", "neuropath_bm25_lean_cover_links2")
# (path_probe, reason_rounds) per scored variant, explicit so a method's meaning never follows
# a change of QAContext's defaults.
SCORED_SETTINGS = {"neuropath_probe": ("each", 2), "neuropath_bm25": ("each", 2), "neuropath_bm25_noprobe": ("none", 2),
                   "neuropath_bm25_lean": ("none", 1), "neuropath_bm25_lean_cover": ("none", 1),
                   "neuropath_bm25_lean_cover_links": ("none", 1), "neuropath_bm25_lean_cover_links2": ("none", 1),
                   "neuropath_bm25_lean_cover_links_near": ("none", 1)}
KG_METHODS = {"neuropath", "neuropath_faithful", "neuropath_probe", "neuropath_bm25", "neuropath_bm25_noprobe", "neuropath_bm25_lean",
              "neuropath_bm25_lean_cover", "neuropath_bm25_lean_cover_links", "neuropath_bm25_lean_cover_links2",
              "neuropath_bm25_lean_cover_links_near", "ppr"}
LLM_METHODS = KG_METHODS | {"ircot"}
RECALL_LEVELS = ("passage", "title")
RANK_K = 10
DEFAULT_CACHE = Path(__file__).resolve().parent / "cache"


@dataclass
class EvalConfig:
    questions: Path
    corpus: Path
    out: Path
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    limit: int | None = None
    model: str | None = None
    cache: Path = DEFAULT_CACHE
    recall_level: str = "passage"
    answer: bool = True  # run the reader (EM/F1); off: retrieval metrics only
    kg_model: str | None = None  # extract the KG with this model; the methods still run on `model`
    alias_containment: bool = False  # IngestContext.alias_containment: also alias names to the names they contain

    def command(self) -> str:
        parts = ["placecell eval multihop", f"--questions {self.questions}", f"--corpus {self.corpus}"]
        if self.limit:
            parts.append(f"--limit {self.limit}")
        parts.append(f"--methods {','.join(self.methods)}")
        if self.model:
            parts.append(f"--model {self.model}")
        if self.kg_model:
            parts.append(f"--kg-model {self.kg_model}")
        if self.alias_containment:
            parts.append("--alias-containment")
        if self.cache != DEFAULT_CACHE:
            parts.append(f"--cache {self.cache}")
        if self.recall_level != "passage":
            parts.append(f"--recall-level {self.recall_level}")
        if not self.answer:
            parts.append("--retrieval-only")
        parts.append(f"--out {self.out}")
        return " ".join(parts)


# -- input checks -----------------------------------------------------------------------
def parse_methods(text: str | list[str]) -> list[str]:
    names = text if isinstance(text, list) else text.replace(" ", ",").split(",")
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if not names:
        raise InputError(f"no methods given; choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def _record_problem(rec, level: str) -> str:
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("question"), str) or not rec["question"].strip():
        return "missing or empty 'question'"
    if not isinstance(rec.get("answer"), str):
        return "missing 'answer' (a string)"
    if not isinstance(rec.get("answer_aliases", []), list):
        return "'answer_aliases' is not a list"
    if level == "title":
        titles = rec.get("supporting_titles")
        if not isinstance(titles, list) or not titles:
            return "missing or empty 'supporting_titles' (needed for --recall-level title)"
        return ""
    gold = rec.get("supporting_passages")
    if not isinstance(gold, list) or not gold:
        return "missing or empty 'supporting_passages' (needed for passage-level recall)"
    if not all(isinstance(p, dict) and "title" in p and "text" in p for p in gold):
        return "'supporting_passages' items need 'title' and 'text'"
    return ""


def load_questions(path: Path, level: str = "passage") -> list[dict]:
    """The question records, validated; the first bad line is named in the error."""
    if not path.is_file():
        raise InputError(f"questions file not found: {path}")
    questions, seen = [], set()
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            raise InputError(f"{path}:{lineno}: not valid JSON") from None
        problem = _record_problem(rec, level)
        if problem:
            raise InputError(f"{path}:{lineno}: {problem}")
        rec = dict(rec, id=str(rec.get("id", f"line-{lineno}")))
        if rec["id"] in seen:
            raise InputError(f"{path}:{lineno}: duplicate question id {rec['id']!r}")
        seen.add(rec["id"])
        questions.append(rec)
    if not questions:
        raise InputError(f"{path}: no questions (empty file)")
    return questions


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_config(cfg: EvalConfig) -> None:
    if cfg.recall_level not in RECALL_LEVELS:
        raise InputError(f"--recall-level must be one of {', '.join(RECALL_LEVELS)}, not {cfg.recall_level!r}")
    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"--limit must be at least 1, not {cfg.limit}")
    if not cfg.corpus.is_file() or cfg.corpus.stat().st_size == 0:
        raise InputError(f"corpus file not found or empty: {cfg.corpus}")
    parse_methods(cfg.methods)


# -- backends and ingest ----------------------------------------------------------------
def make_backends(cfg: EvalConfig, corpus_sha: str):
    from placecell.agents.backends import Backends
    from placecell.settings import get_settings

    home = Path(cfg.cache) / "corpora" / corpus_sha[:16]
    return Backends(settings=get_settings(home=home, model=cfg.model), extraction_dir=Path(cfg.cache) / "extractions")


def ingest_corpus(backends, corpus: Path, extract: bool, progress: Callable[[str], None],
                  alias_containment: bool = False) -> dict:
    """Ingest (idempotent: unchanged passages and cached extractions cost nothing)."""
    from placecell.agents.ingest.state import IngestContext
    from placecell.graphs.ingest import build_ingest_graph

    graph = build_ingest_graph(backends)
    result: dict = {}
    context = IngestContext(extract=extract, alias_containment=alias_containment)
    for mode, chunk in graph.stream({"sources": [str(corpus)]}, context=context,
                                    stream_mode=["custom", "values"]):
        if mode == "values":
            result = chunk
        elif chunk.get("event") == "extract_start" and chunk.get("total"):
            progress(f"extracting triples from {chunk['total']} passages ({chunk['cached']} cached)")
        elif chunk.get("event") == "extract" and (chunk["done"] % 25 == 0 or chunk["done"] == chunk["total"]):
            progress(f"  extracted {chunk['done']}/{chunk['total']} ({chunk['passages_per_s']:.2f} passages/s)")
    if not result.get("passages"):
        raise InputError(f"{corpus}: no passages ingested ({'; '.join(result.get('warnings', [])) or 'empty'})")
    for warning in result.get("warnings", []):  # bad corpus lines: on screen too, not only in report.md
        progress(f"warning: {warning}")
    return {k: result.get(k) for k in ("passages", "new_passages", "extracted", "cached", "extraction_failed",
                                       "kg", "warnings")}


def gold_coverage(questions: list[dict], registry) -> tuple[int, int]:
    """(gold passages found verbatim in the registry, gold passages in all)."""
    texts = {p.text for p in registry.all()}
    gold = [metrics.passage_string(p["title"], p["text"]) for q in questions for p in q.get("supporting_passages", [])]
    return sum(1 for g in gold if g in texts), len(gold)


# -- running methods --------------------------------------------------------------------
def qa_context(method: str, answer: bool):
    from placecell.agents.qa.state import QAContext

    if method == "neuropath":
        return QAContext(method="neuropath", answer=answer, rank_k=RANK_K)
    if method.startswith("neuropath"):
        mode = "faithful" if method == "neuropath_faithful" else "scored"
        probe, rounds = SCORED_SETTINGS.get(method, ("each", 2))
        return QAContext(method="neuropath", mode=mode, answer=answer, rank_k=RANK_K,
                         fuse_bm25=method.startswith("neuropath_bm25"), path_probe=probe, reason_rounds=rounds,
                         cover_entities="_cover" in method, title_links="_links" in method,
                         link_depth=2 if method.endswith("_links2") else 1,
                         keep_nearest=1 if method.endswith("_near") else 0)
    return QAContext(method=method, answer=answer, rank_k=RANK_K)


def qa_settings(method: str, answer: bool) -> dict | None:
    """The QAContext a neuropath method runs with, minus what the run identity already says."""
    if not method.startswith("neuropath"):
        return None
    return {k: v for k, v in asdict(qa_context(method, answer)).items() if k not in ("answer", "model")}


def method_identity(method: str, identity: dict) -> dict:
    """`neuropath` follows the product's defaults, so its checkpoint rows carry the settings they were
    made with, and rows made before a default changed (or under the pre-session-15 meaning of the
    name) are run again instead of reused."""
    if method != "neuropath":
        return identity
    return {**identity, "qa_settings": qa_settings(method, identity["answered"])}


def make_runner(backends, answer: bool) -> Callable[[str, str], dict]:
    """`run(question, method) -> {"ranking", "answer", "paths"}` through the QA graph."""
    from placecell.graphs.qa import build_qa_graph

    graph = build_qa_graph(backends)

    def run(question: str, method: str) -> dict:
        # The nodes' updates, merged in order: the final state including what the output schema
        # leaves out (the entities, chain and path candidates the completion step read).
        out: dict = {}
        for update in graph.stream({"question": question}, context=qa_context(method, answer), stream_mode="updates"):
            for part in update.values():
                out.update(part or {})
        rec = {"ranking": list(out.get("ranking", []))[:RANK_K], "answer": out.get("answer", "") if answer else None,
               "paths": out.get("paths", [])}
        if method.startswith("neuropath"):
            # What the completion step read, so `evals/complete_replay.py` can rerun it offline.
            from placecell.agents.qa.neuropath import candidate_passages

            rec["trace"] = {"entities": out.get("entities", []), "chain": out.get("chain", ""),
                            "requirements": out.get("requirements", ""),
                            "candidates": candidate_passages(out.get("valid", []))}
        return rec

    return run


def run_question(run, question: dict, method: str, identity: dict) -> dict:
    from placecell.tools.llm.usage import usage_scope

    with usage_scope() as usage:
        start = time.perf_counter()
        out = run(question["question"], method)
        seconds = time.perf_counter() - start
    return {"id": question["id"], "question_sha256": question_sha(question), **identity, **out,
            "seconds": round(seconds, 4), "usage": usage.totals(), "usage_by_node": usage.snapshot()}


def question_sha(question: dict) -> str:
    """What a checkpoint row answered: a questions file edited under the same ids must not reuse it."""
    return hashlib.sha256(question["question"].encode("utf-8")).hexdigest()[:16]


def run_method(run, method: str, questions: list[dict], out_dir: Path, identity: dict,
               progress: Callable[[str], None]) -> list[dict]:
    """Every question once; checkpointed records of the same run identity are reused."""
    from placecell.tools.stores.jsonl_cache import JsonlCache

    done = JsonlCache(out_dir / "checkpoints" / f"{method}.jsonl")

    def reusable(rec, q) -> bool:
        # Rows written before rows named their question (the committed checkpoints, made from
        # unchanged dev files) are matched by id alone.
        return (rec is not None and all(rec.get(k) == v for k, v in identity.items())
                and rec.get("question_sha256", question_sha(q)) == question_sha(q))

    reused = sum(reusable(done.get(q["id"]), q) for q in questions)
    if reused:
        progress(f"[{method}] {reused} of {len(questions)} questions done in an earlier run (checkpoint)")
    records = []
    for i, q in enumerate(questions, 1):
        rec = done.get(q["id"])
        if not reusable(rec, q):
            rec = run_question(run, q, method, identity)
            done.put(q["id"], rec)
            progress(f"[{method}] {i}/{len(questions)} {q['id']}: {rec['seconds']:.1f}s, "
                     f"{rec['usage']['llm_calls']} LLM calls")
        records.append(rec)
    return records


def warm_up(backends, methods: list[str], answer: bool) -> None:
    """Load the model and build the indexes before timing, so question 1 is not charged for them."""
    from placecell.tools.retrievers import bm25, dense

    dense("warm up", backends, 1)
    bm25("warm up", backends, 1)
    if answer or any(m in LLM_METHODS for m in methods):
        backends.get_llm()


def model_name(backends) -> str:
    s = backends.settings
    return s.llm_model if s.llm_backend == "openai" else s.model


def run_eval(cfg: EvalConfig, progress: Callable[[str], None] = print) -> dict:
    from placecell.evals.multihop_report import write_plot, write_report

    check_config(cfg)
    cfg.methods = parse_methods(cfg.methods)
    questions = load_questions(Path(cfg.questions), cfg.recall_level)[: cfg.limit]
    corpus_sha = file_sha256(Path(cfg.corpus))
    backends = make_backends(cfg, corpus_sha)
    needs_kg = any(m in KG_METHODS for m in cfg.methods)
    # The extractor shares the corpus home (passages, vectors); only the LLM that writes the KG differs.
    extractor = make_backends(replace(cfg, model=cfg.kg_model), corpus_sha) if cfg.kg_model and needs_kg else backends
    progress(f"ingesting {cfg.corpus} into {backends.home}")
    ingest = ingest_corpus(extractor, Path(cfg.corpus), needs_kg, progress, cfg.alias_containment)
    identity = {"model": model_name(backends), "corpus_sha256": corpus_sha, "answered": cfg.answer}
    if cfg.alias_containment:
        identity["kg_aliases"] = "embedding+containment"  # only when set, so older checkpoints stay reusable
    if extractor is not backends:
        backends.kg_model_id = extractor.get_llm().model_id
        identity["kg_model"] = backends.kg_model_id  # only when set, so older checkpoints stay reusable
    warm_up(backends, cfg.methods, cfg.answer)
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = make_runner(backends, cfg.answer)
    by_id = {q["id"]: q for q in questions}
    registry = backends.get_registry()
    results = {"model": identity["model"], "questions": len(questions), "recall_level": cfg.recall_level,
               "methods": {}}
    for key in ("kg_model", "kg_aliases"):
        if key in identity:
            results[key] = identity[key]
    for method in cfg.methods:
        method_id = method_identity(method, identity)
        records = run_method(run, method, questions, out_dir, method_id, progress)
        passages = registry.get_many(sorted({pid for r in records for pid in r["ranking"]}))
        results["methods"][method] = metrics.summarise(records, by_id, passages, cfg.recall_level)
        if "qa_settings" in method_id:
            results["methods"][method]["settings"] = method_id["qa_settings"]
    found, total = gold_coverage(questions, registry)
    results["corpus"] = {"file": str(cfg.corpus), "sha256": corpus_sha, "passages": ingest["passages"],
                         "kg": ingest.get("kg") or {}, "gold_passages_found": found, "gold_passages": total}
    results["questions_file"] = {"file": str(cfg.questions), "sha256": file_sha256(Path(cfg.questions))}
    # what made it, as the other evals' results.json say (report.md prints it)
    from placecell.evals.multihop_report import cpu_model, nproc

    results["provenance"] = {"command": cfg.command(), "machine": f"{nproc()} CPUs (`nproc`), {cpu_model()}",
                             "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_plot(results, out_dir / "recall_at_k.png")
    write_report(results, cfg, ingest, out_dir / "report.md")
    return results
