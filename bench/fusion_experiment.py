"""Experiment (not shipped, see bench/README.md): a learned fusion of the routing signals, a conditional logit
trained on the other roster's runs, development sets only (never the frozen set).

    .venv/bin/python bench/fusion_experiment.py [--semantic]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.routing import RoutingIndex, SolvedProblem  # noqa: E402
from bot.routing.evaluation import read_jsonl, studios_from_yaml  # noqa: E402
from bot.routing.vocabulary import TYPE_INTENTS  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "samples"
HELDOUT = ROOT / "tests" / "routing_heldout"


def history(path: Path) -> list[SolvedProblem]:
    return [
        SolvedProblem(id=n, ref=str(h["id"]), studio_id=h["studio"], text=h["text"], answer=h.get("answer", ""))
        for n, h in enumerate(read_jsonl(path), start=1)
    ]


def features(index: RoutingIndex, text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per studio: the signals, and the current fused score (for comparison)."""
    q = index._query(text)
    lexical, _ = index._scores(q)
    ngram = index._ngrams.scores(q.analysis.normalized, normalized=True)
    semantic = index._semantic.studio_scores(text) if index._semantic is not None else None
    fused = index._fuse(lexical, ngram, semantic)
    index._add_type_intent(fused, q.analysis.normalized, {sid: {} for sid in fused})
    sids = list(index._studios)
    top_lex = max(lexical.values(), default=0.0) or 1.0
    top_ng = max(ngram.values(), default=0.0) or 1.0
    if semantic:
        low, high = min(semantic.values()), max(semantic.values())
        span = (high - low) or 1.0
    normalized = q.analysis.normalized
    intents = {t for t, words in TYPE_INTENTS.items() if any(w in normalized for w in words)}
    rows = []
    for sid in sids:
        hw = index._ngrams.history_weight(sid)
        lx = lexical.get(sid, 0.0) / top_lex
        ng = ngram.get(sid, 0.0) / top_ng
        sem = (semantic.get(sid, low) - low) / span if semantic else 0.0
        typed = 1.0 if index._studios[sid].doc.type in intents else 0.0
        other = 1.0 if intents and not typed else 0.0
        rows.append(
            [
                lx,
                ng,
                lx * hw,
                ng * hw,
                sem,
                sem * hw,
                typed,
                other,
                math.log1p(lexical.get(sid, 0.0)),
                1.0 if lx == 1.0 else 0.0,
                1.0 if ng == 1.0 else 0.0,
            ]
        )
    return sids, np.array(rows), np.array([fused[s] for s in sids])


def runs(embedder) -> list[tuple[str, list]]:
    out = []
    roster = studios_from_yaml(SAMPLES / "studios.yaml")
    hroster = studios_from_yaml(HELDOUT / "studios.yaml")
    hq = [*read_jsonl(HELDOUT / "questions.jsonl"), *read_jsonl(HELDOUT / "questions_fresh.jsonl")]
    plan = [
        ("samples q", RoutingIndex(roster, embedder=embedder), list(read_jsonl(SAMPLES / "questions.jsonl"))),
        ("samples hard", RoutingIndex(roster, embedder=embedder), list(read_jsonl(SAMPLES / "questions_hard.jsonl"))),
        (
            "samples hard+hist",
            RoutingIndex(roster, history(SAMPLES / "history.jsonl"), embedder=embedder),
            list(read_jsonl(SAMPLES / "questions_hard.jsonl")),
        ),
        ("heldout", RoutingIndex(hroster, embedder=embedder), hq),
        ("heldout+hist", RoutingIndex(hroster, history(HELDOUT / "history.jsonl"), embedder=embedder), hq),
    ]
    for name, index, questions in plan:
        items = []
        for question in questions:
            sids, x, fused = features(index, question["text"])
            expect = question["expect"]
            if expect not in sids:
                continue
            items.append((x, sids.index(expect), fused))
        out.append((name, items))
        print(name, len(items), file=sys.stderr)
    return out


def train(items, l2=0.05, steps=600, lr=0.5) -> np.ndarray:
    dim = items[0][0].shape[1]
    w = np.zeros(dim)
    w[0], w[1] = 1.0, 1.0
    for _ in range(steps):
        grad = l2 * w
        for x, y, _ in items:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += (x.T @ p - x[y]) / len(items)
        w -= lr * grad
    return w


def score(items, w=None) -> tuple[float, float]:
    top1 = top3 = 0
    for x, y, fused in items:
        s = fused if w is None else x @ w
        order = np.argsort(-s, kind="stable")
        top1 += order[0] == y
        top3 += y in order[:3]
    return top1 / len(items), top3 / len(items)


def main() -> int:
    embedder = None
    if "--semantic" in sys.argv:
        from bot.routing.semantic import load_embedder

        embedder = load_embedder(ROOT / "data" / "eval-embeddings.sqlite")
    data = runs(embedder)
    print("| held-out run | n | current top-1 / top-3 | learned top-1 / top-3 |")
    print("|---|---:|---|---|")
    for l2 in (0.01, 0.05, 0.2):
        for i, (name, items) in enumerate(data):
            # the runs on the same roster share questions: train only on the other roster's runs and the rest
            others = [it for j, (n2, its) in enumerate(data) if j != i and n2.split()[0] != name.split()[0] for it in its]
            w = train(others, l2=l2)
            c1, c3 = score(items)
            l1, l3 = score(items, w)
            print(f"| {name} (l2={l2}) | {len(items)} | {c1:.3f} / {c3:.3f} | {l1:.3f} / {l3:.3f} |")
    w = train([it for _, its in data for it in its])
    print("weights (all data):", np.round(w, 2).tolist())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
