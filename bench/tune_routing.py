"""How the routing mix was chosen: a grid over the fusion shares on the development sets only.

    .venv/bin/python bench/tune_routing.py [--lexical]

Development sets: ``../shared/samples`` (questions, questions_hard, roster only and with history.jsonl) and
``tests/routing_heldout`` (an earlier session's invented roster). The frozen evaluation set
(``tests/routing_eval``) is never read here: it measures the choice, it does not make it. The objective is the
mean of top-1 and top-3 over the four runs; the chosen point is the best one, and neighbouring points within
noise were preferred when they kept ``questions.jsonl`` at its ceiling.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bot.routing.index as index_module  # noqa: E402
from bot.routing import RoutingIndex, SolvedProblem  # noqa: E402
from bot.routing.evaluation import outcomes, read_jsonl, studios_from_yaml  # noqa: E402
from bot.routing.semantic import load_embedder  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "samples"
HELDOUT = ROOT / "tests" / "routing_heldout"


def main() -> int:
    embedder = None if "--lexical" in sys.argv else load_embedder(ROOT / "data" / "eval-embeddings.sqlite")
    roster = studios_from_yaml(SAMPLES / "studios.yaml")
    history = [
        SolvedProblem(id=n, ref=h["id"], studio_id=h["studio"], text=h["text"], answer=h["answer"])
        for n, h in enumerate(read_jsonl(SAMPLES / "history.jsonl"), start=1)
    ]
    runs = [
        ("samples questions", RoutingIndex(roster, embedder=embedder), list(read_jsonl(SAMPLES / "questions.jsonl"))),
        ("samples hard", RoutingIndex(roster, embedder=embedder), list(read_jsonl(SAMPLES / "questions_hard.jsonl"))),
        (
            "samples hard + history",
            RoutingIndex(roster, history, embedder=embedder),
            list(read_jsonl(SAMPLES / "questions_hard.jsonl")),
        ),
        (
            "heldout",
            RoutingIndex(studios_from_yaml(HELDOUT / "studios.yaml"), embedder=embedder),
            [*read_jsonl(HELDOUT / "questions.jsonl"), *read_jsonl(HELDOUT / "questions_fresh.jsonl")],
        ),
    ]
    print("| n-gram share | with history | semantic share | objective | " + " | ".join(n for n, _, _ in runs) + " |")
    print("|---|---|---|---|" + "---|" * len(runs))
    grid = itertools.product((0.3, 0.4, 0.5), (0.5, 0.6, 0.7, 0.8, 0.9), (0.0, 0.2, 0.3, 0.4) if embedder else (0.0,))
    for ngram, history, semantic in grid:
        index_module.NGRAM_SHARE, index_module.HISTORY_NGRAM_SHARE = ngram, history
        index_module.SEMANTIC_SHARE = semantic
        cells = []
        total = 0.0
        for _, index, questions in runs:
            result = outcomes(index, questions)
            top1, top3 = sum(result.top1) / len(questions), sum(result.top3) / len(questions)
            total += top1 + top3
            cells.append(f"{top1:.3f} / {top3:.3f}")
        print(f"| {ngram} | {history} | {semantic} | {total / (2 * len(runs)):.3f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
