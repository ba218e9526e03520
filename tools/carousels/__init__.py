"""Multi-carousel recommendation pages with diversification (arXiv 2511.14461) on implicit feedback.

- `data`: positives -> user x item matrix, per-user temporal holdout, tf-idf tag vectors per item.
- `cf`: EASE item-item CF plus popularity (the fallback for users without history).
- `strategies`: greedy carousel filling: accuracy, diversity (MMR), xquad, novelty, serendipity,
  combined; all measured against the whole page, so nothing repeats across carousels.
- `layout`: carousel selection (top picks, shelves / genres, authors, "because you liked") and pages.
- `metrics`: precision / recall / nDCG@10 over the page as one list, ILD, coverage, novelty,
  serendipity, Gini.
`engine_for(catalog)` in `placecell.tools.recsys_nodes` builds the engine for a shipped catalog once
per process.
"""
