"""evals.links_replay: the title-link step applied to saved rankings (no LLM)."""

from __future__ import annotations

import json

from placecell.agents.backends import Backends
from placecell.evals.links_replay import replay
from placecell.settings import Settings
from placecell.tools.stores.passages import Passage, passage_id

DOCS = {
    "Song": "Song\nA song performed by Lou Rawls.",
    "Lou Rawls": "Lou Rawls\nLou Rawls signed with Capitol Records in 1962.",
    "Weather": "Weather\nRain is likely.",
    "Cooking": "Cooking\nBoil the pasta.",
    "Gardening": "Gardening\nWater the roses.",
    "Travel": "Travel\nTrains are slow.",
}


def test_replay_puts_the_linked_gold_passage_into_the_top_five(tmp_path):
    b = Backends(settings=Settings(home=tmp_path / "home"))
    passages = [Passage(passage_id(t), title, t) for title, t in DOCS.items()]
    b.get_registry().add_many(passages)
    b.get_vectors().upsert([p.id for p in passages], [p.text for p in passages], [{"title": p.title} for p in passages],
                           b.get_embedder().embed([p.text for p in passages]))
    ids = {p.title: p.id for p in passages}
    question = {"id": "q1", "question": "Which label did the singer of Song sign with?",
                "supporting_passages": [{"title": "Song", "text": "A song performed by Lou Rawls."},
                                        {"title": "Lou Rawls", "text": "Lou Rawls signed with Capitol Records in 1962."}]}
    ranking = [ids[t] for t in ("Song", "Weather", "Cooking", "Gardening", "Travel", "Lou Rawls")]
    report = tmp_path / "report"
    (report / "checkpoints").mkdir(parents=True)
    line = {"key": "q1", "value": {"id": "q1", "ranking": ranking}}
    (report / "checkpoints" / "bm25.jsonl").write_text(json.dumps(line) + "\n")
    (report / "checkpoints" / "dense.jsonl").write_text("")  # a method with nothing saved is left out
    out = replay(report, [question], b)
    assert list(out) == ["bm25"] and out["bm25"]["questions"] == 1
    assert out["bm25"]["before"] == {"recall@2": 0.5, "recall@5": 0.5}
    # "Song" names Lou Rawls: the Rawls passage moves from rank 6 to rank 3.
    assert out["bm25"]["after"] == {"recall@2": 0.5, "recall@5": 1.0}
    assert replay(report, [question], b, ["dense"]) == {}
