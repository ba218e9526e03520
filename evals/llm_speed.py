"""Benchmark: the llama.cpp backend's structured-output speed on KG extraction calls.

    python -m placecell.evals.llm_speed [--model PRESET] [--corpus FILE] [--passages N] [--out DIR]

For each thread count (1, then every core) it loads the model twice, once with llama-cpp-python's
stock sampler chain (the grammar masks the whole vocabulary at every token) and once with the
argmax-first grammar sampler (`tools/llm/grammar_sampling.py`), runs the same extraction calls
from an empty KV cache, and reports seconds per passage, generated tokens per second and whether
the two samplers wrote identical text (greedy decoding: they must). Times are inside the model
(after the machine-wide lock), so another placecell process waiting for its turn does not count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EVALS = Path(__file__).resolve().parent
DEFAULT_CORPUS = EVALS / "data" / "multihop" / "musique" / "slice50_corpus.jsonl"


def run_config(path: Path, rows: list[dict], threads: int, argmax_first: bool) -> dict:
    from placecell.agents.ingest.extract import Extraction, extraction_messages
    from placecell.tools.llm.llamacpp import LlamaCppLLM

    llm = LlamaCppLLM(path, n_ctx=4096, n_threads=threads, argmax_first_grammar=argmax_first)
    schema = Extraction.model_json_schema()
    seconds = tokens = prompt_tokens = 0.0
    texts = []
    for row in rows:
        llm.llm.reset()  # every call from an empty cache: the configurations see the same work
        out = llm.chat_json(extraction_messages(f"{row['title']}\n{row['text']}"), schema, max_tokens=360, node="bench")
        seconds += out.seconds
        tokens += out.completion_tokens
        prompt_tokens += out.prompt_tokens
        texts.append(out.text)
    del llm
    return {"threads": threads, "sampler": "argmax_first" if argmax_first else "stock", "passages": len(rows),
            "seconds_per_passage": round(seconds / len(rows), 3), "completion_tokens": int(tokens),
            "prompt_tokens": int(prompt_tokens), "generated_tokens_per_s": round(tokens / seconds, 2),
            "texts": texts}


def main(argv: list[str] | None = None) -> int:
    from placecell.evals.multihop_report import cpu_model, nproc
    from placecell.settings import get_settings
    from placecell.tools import models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--passages", type=int, default=8)
    parser.add_argument("--offset", type=int, default=400, help="first passage used")
    parser.add_argument("--out", type=Path, default=EVALS / "reports" / "llm_speed")
    args = parser.parse_args(argv)

    path = models.resolve(args.model, get_settings().models_dir)
    rows = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[args.offset: args.offset + args.passages]
    cores = nproc()
    runs = [run_config(path, rows, threads, fast) for threads in sorted({1, cores}) for fast in (False, True)]
    for threads in sorted({1, cores}):
        pair = [r for r in runs if r["threads"] == threads]
        for r in pair:
            r["same_text_as_stock"] = r["texts"] == pair[0]["texts"]
    for r in runs:
        r.pop("texts")
    command = "python -m placecell.evals.llm_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"model": args.model, "corpus": str(args.corpus.relative_to(EVALS.parent) if args.corpus.is_relative_to(
        EVALS.parent) else args.corpus), "command": command.strip(), "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{nproc()} CPUs, {cpu_model()}", "runs": runs}
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = ["# LLM speed: structured extraction calls", "",
             f"- command: `{result['command']}`", f"- date (UTC): {result['date']}", f"- model: `{args.model}`",
             f"- machine: {result['machine']}", f"- calls: {len(rows)} extraction prompts from `{result['corpus']}`"
             f" (passages {args.offset}..{args.offset + len(rows) - 1}), each from an empty KV cache", "",
             "| threads | grammar sampler | s/passage | completion tokens per call second | completion tokens | same text as stock |",
             "|---:|---|---:|---:|---:|---|"]
    for r in runs:
        lines.append(f"| {r['threads']} | {r['sampler']} | {r['seconds_per_passage']} | {r['generated_tokens_per_s']} | "
                     f"{r['completion_tokens']} | {'yes' if r['same_text_as_stock'] else 'NO'} |")
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
