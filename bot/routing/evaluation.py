"""Routing accuracy on a labelled question set, and loaders for the sample files.

Run ``python -m bot.routing.evaluation ROSTER.yaml QUESTIONS.jsonl [CHATTER.jsonl]`` to print the figures and
the misrouted questions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.routing.index import RoutingIndex, StudioDoc
from bot.routing.judge import judge


@dataclass(slots=True, frozen=True)
class EvalResult:
    """Share of questions routed right at rank 1 and within the top 3, and how the judge classified texts."""

    questions: int
    top1: float
    top3: float
    judged_problem: float  # share of questions judged to be problems
    chatter: int
    judged_chatter: float | None  # share of chatter judged not a problem; None without chatter


def _hits(question: dict[str, Any]) -> set[str]:
    return {question["expect"], *question.get("also", [])}


def evaluate(
    index: RoutingIndex, questions: Iterable[dict[str, Any]], chatter: Iterable[dict[str, Any]] = ()
) -> EvalResult:
    """Route every question (a hit is ``expect`` or any id in ``also``) and judge questions and chatter."""
    n = top1 = top3 = problems = 0
    for question in questions:
        n += 1
        ranked = [m.id for m in index.rank(question["text"], limit=3)]
        good = _hits(question)
        top1 += bool(ranked[:1] and ranked[0] in good)
        top3 += bool(good.intersection(ranked))
        problems += judge(question["text"]).is_problem
    chat = quiet = 0
    for item in chatter:
        chat += 1
        quiet += not judge(item["text"]).is_problem
    return EvalResult(
        questions=n,
        top1=top1 / n if n else 0.0,
        top3=top3 / n if n else 0.0,
        judged_problem=problems / n if n else 0.0,
        chatter=chat,
        judged_chatter=quiet / chat if chat else None,
    )


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (blank lines skipped)."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def studios_from_yaml(path: str | Path) -> list[StudioDoc]:
    """Studios of a roster YAML file (``studios:`` list with id, name, alliance, expertise, description)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return [
        StudioDoc(
            id=str(s["id"]),
            name=str(s.get("name", "")),
            alliance=str(s.get("alliance", "")),
            expertise=tuple(str(e) for e in s.get("expertise") or ()),
            description=str(s.get("description") or ""),
        )
        for s in data.get("studios", [])
    ]


def main(argv: list[str] | None = None) -> int:
    """Print accuracy figures and the misrouted questions for the given roster and question files."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m bot.routing.evaluation ROSTER.yaml QUESTIONS.jsonl [CHATTER.jsonl]")
        return 2
    index = RoutingIndex(studios_from_yaml(args[0]))
    questions = list(read_jsonl(args[1]))
    chatter = list(read_jsonl(args[2])) if len(args) > 2 else []
    result = evaluate(index, questions, chatter)
    print(result)
    for q in questions:
        ranked = index.rank(q["text"], limit=3)
        if not ranked or ranked[0].id not in _hits(q):
            print(
                f"{q['id']} expect={q['expect']} got={[(m.id, m.score, m.matched) for m in ranked]} | {q['text']}"
            )
        if not judge(q["text"]).is_problem:
            print(f"{q['id']} judged chatter: {q['text']}")
    for c in chatter:
        verdict = judge(c["text"])
        if verdict.is_problem:
            print(f"{c['id']} judged problem ({verdict.reason}): {c['text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
