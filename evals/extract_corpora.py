"""Background job: build the committed KG extraction cache for the multi-hop eval corpora.

    python -m placecell.evals.extract_corpora [DATASET ...]

Runs the ingest graph on each `evals/data/multihop/<dataset>/slice50_corpus.jsonl` with the
eval harness's layout (`evals/cache/extractions/`, one fsynced line per passage), so it can be
killed and restarted at any time and `placecell eval multihop` later finds every passage cached.
"""

from __future__ import annotations

import time
from pathlib import Path

from placecell.evals.multihop import file_sha256, ingest_corpus

EVALS = Path(__file__).resolve().parent
DATASETS = ("hotpotqa", "2wikimultihopqa", "musique")


def main(names: list[str]) -> None:
    from placecell.agents.backends import Backends
    from placecell.settings import get_settings

    cache = EVALS / "cache"
    for name in names or DATASETS:
        corpus = EVALS / "data" / "multihop" / name / "slice50_corpus.jsonl"
        home = cache / "corpora" / file_sha256(corpus)[:16]
        backends = Backends(settings=get_settings(home=home), extraction_dir=cache / "extractions")
        start = time.perf_counter()
        summary = ingest_corpus(backends, corpus, True, lambda m: print(f"[{name}] {m}", flush=True))
        print(f"[{name}] done in {time.perf_counter() - start:.0f}s: {summary}", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m placecell.evals.extract_corpora", description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", metavar="DATASET", help=f"corpora to extract ({', '.join(DATASETS)}; default: all)")
    args = parser.parse_args()
    if unknown := [d for d in args.datasets if d not in DATASETS]:
        parser.error(f"unknown dataset(s) {', '.join(unknown)} (known: {', '.join(DATASETS)})")
    main(args.datasets)
