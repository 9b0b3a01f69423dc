"""How the semantic same-question rule's operating point is chosen: on labelled development pairs only.

    .venv/bin/python bench/calibrate_similar.py

Development pairs: ``../shared/samples/dups.jsonl`` (80) and ``tests/routing_heldout/dups.jsonl`` (240, written
for this), each against its own solved history. For every line the nearest solved problem is found by meaning;
a rule accepts it when its cosine reaches ``same``, or ``near`` with an IDF-weighted key overlap of at least
``words``, and (optionally) the question's cosine with that problem's *answer* reaches ``answer``. The chosen
point maximises accuracy with at most 5 % of near-misses matched (a wrong earlier answer shown to a foreman is
worse than none). The frozen set (``tests/routing_eval``) is then measured once, with the chosen point.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.routing import RoutingIndex, SolvedProblem  # noqa: E402
from bot.routing.evaluation import bootstrap, read_jsonl, studios_from_yaml  # noqa: E402
from bot.routing.semantic import load_embedder  # noqa: E402
from bot.routing.text import analyse  # noqa: E402

DEV = (ROOT.parent / "shared" / "samples", ROOT / "tests" / "routing_heldout")
FROZEN = ROOT / "tests" / "routing_eval"
MAX_NEAR = 0.05


@dataclass(frozen=True)
class Line:
    same: bool  # a re-asked question (else a near-miss)
    right_top: bool  # the nearest solved problem is the one it re-asks
    cosine: float
    words: float
    answer: float


def lines_of(folder: Path, embedder: object) -> list[Line]:
    history = list(read_jsonl(folder / "history.jsonl"))
    solved = [
        SolvedProblem(id=n, ref=h["id"], studio_id=h["studio"], text=h["text"], answer=h.get("answer", ""))
        for n, h in enumerate(history, start=1)
    ]
    ids = {p.ref: p.id for p in solved}
    by_id = {p.id: p for p in solved}
    index = RoutingIndex(studios_from_yaml(folder / "studios.yaml"), solved, embedder=embedder)  # type: ignore[arg-type]
    index.prepare()
    semantic = index._semantic  # calibration reads the signals the rule combines
    assert semantic is not None
    n = len(solved)
    out = []
    for line in read_jsonl(folder / "dups.jsonl"):
        [(pid, cosine)] = semantic.nearest_solved(line["text"], 1)
        problem = by_id[pid]
        keys_q = index._similar_keys(analyse(line["text"], lexicon=index._lexicon))
        keys_p = index._similar_keys(analyse(problem.text, lexicon=index._lexicon))
        words = index._similarity(keys_q, keys_p, n)
        q = embedder.embed([line["text"]], query=True)[0]  # type: ignore[attr-defined]
        a = embedder.embed([problem.answer or problem.text], query=False)[0]  # type: ignore[attr-defined]
        same = line.get("same_as") is not None
        out.append(Line(same, same and ids.get(line["same_as"]) == pid, cosine, words, float(q @ a)))
    return out


def score(lines: list[Line], same: float, near: float, words: float, answer: float) -> tuple[list[bool], list[bool]]:
    right, near_matched = [], []
    for line in lines:
        accepted = (line.cosine >= same or (line.cosine >= near and line.words >= words)) and line.answer >= answer
        if line.same:
            right.append(accepted and line.right_top)
        else:
            right.append(not accepted)
            near_matched.append(accepted)
    return right, near_matched


def main() -> int:
    embedder = load_embedder(ROOT / "data" / "eval-embeddings.sqlite")
    if embedder is None:
        print("the embedding model could not load")
        return 1
    dev = [line for folder in DEV for line in lines_of(folder, embedder)]
    grid = itertools.product(
        np.arange(0.88, 1.0, 0.01), np.arange(0.85, 0.99, 0.01), (0.1, 0.2, 0.3, 0.4, 0.5, 0.6), (0.0, 0.80, 0.82, 0.84, 0.86, 0.88)
    )
    best = None
    for same, near, words, answer in grid:
        if near > same:
            continue
        right, near_matched = score(dev, same, near, words, answer)
        accuracy, near_rate = sum(right) / len(right), sum(near_matched) / max(1, len(near_matched))
        if near_rate <= MAX_NEAR and (best is None or accuracy > best[0]):
            best = (accuracy, near_rate, round(same, 2), round(near, 2), words, answer)
    if best is None:
        print(f"no point keeps near-misses matched at or under {MAX_NEAR:.0%} on the development pairs")
        return 1
    accuracy, near_rate, same, near, words, answer = best
    print(f"development pairs (n={len(dev)}): accuracy {accuracy:.3f}, near-misses matched {near_rate:.3f}")
    print(f"chosen: SEMANTIC_SAME={same} SEMANTIC_SAME_NEAR={near} SEMANTIC_WORDS={words} SEMANTIC_ANSWER={answer}")
    frozen = lines_of(FROZEN, embedder)
    right, near_matched = score(frozen, same, near, words, answer)
    print(f"frozen (n={len(frozen)}): accuracy {bootstrap(right)}, near-misses matched {bootstrap(near_matched)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
