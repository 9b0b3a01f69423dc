"""Routing accuracy on a labelled question set, and loaders for the sample files.

Run ``python -m bot.routing.evaluation ROSTER.yaml QUESTIONS.jsonl [CHATTER.jsonl]`` to print the figures and
the misrouted questions.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


@dataclass(slots=True, frozen=True)
class Outcomes:
    """Per-question outcomes, for figures with confidence intervals."""

    top1: tuple[bool, ...]
    top3: tuple[bool, ...]
    judged_problem: tuple[bool, ...]


@dataclass(slots=True, frozen=True)
class Interval:
    """A share with its 95 % bootstrap percentile interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(hits: Sequence[bool], *, resamples: int = 2000, seed: int = 0) -> Interval:
    """The share of true ``hits`` and its 95 % percentile interval over ``resamples`` resamples."""
    n = len(hits)
    if not n:
        return Interval(0.0, 0.0, 0.0, 0)
    rng = random.Random(seed)
    values = [bool(h) for h in hits]
    shares = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return Interval(sum(values) / n, shares[int(0.025 * resamples)], shares[int(0.975 * resamples) - 1], n)


def outcomes(index: RoutingIndex, questions: Iterable[dict[str, Any]]) -> Outcomes:
    """Route and judge every question (a hit is ``expect`` or any id in ``also``)."""
    top1: list[bool] = []
    top3: list[bool] = []
    problems: list[bool] = []
    for question in questions:
        ranked = [m.id for m in index.rank(question["text"], limit=3)]
        good = _hits(question)
        top1.append(bool(ranked[:1] and ranked[0] in good))
        top3.append(bool(good.intersection(ranked)))
        problems.append(judge(question["text"]).is_problem)
    return Outcomes(tuple(top1), tuple(top3), tuple(problems))


def evaluate(
    index: RoutingIndex, questions: Iterable[dict[str, Any]], chatter: Iterable[dict[str, Any]] = ()
) -> EvalResult:
    """Route every question (a hit is ``expect`` or any id in ``also``) and judge questions and chatter."""
    result = outcomes(index, questions)
    n = len(result.top1)
    quiet = [not judge(item["text"]).is_problem for item in chatter]
    return EvalResult(
        questions=n,
        top1=sum(result.top1) / n if n else 0.0,
        top3=sum(result.top3) / n if n else 0.0,
        judged_problem=sum(result.judged_problem) / n if n else 0.0,
        chatter=len(quiet),
        judged_chatter=sum(quiet) / len(quiet) if quiet else None,
    )


def duplicate_outcomes(
    index: RoutingIndex, lines: Iterable[dict[str, Any]], ids_by_ref: Mapping[str, int]
) -> tuple[list[bool], list[bool]]:
    """Same-question suggestions: (every line right?, each near-miss matched?).

    A re-asked line (``same_as`` a history ref) is right when the first suggestion is that problem; a
    near-miss (``same_as`` null) is right only when nothing is suggested.
    """
    right: list[bool] = []
    near_matched: list[bool] = []
    for line in lines:
        found = index.similar(line["text"], limit=1)
        same = line.get("same_as")
        if same is None:
            right.append(not found)
            near_matched.append(bool(found))
        else:
            right.append(bool(found) and found[0].id == ids_by_ref.get(same))
    return right, near_matched


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
            type=str(s.get("type") or ""),
            unit=str(s.get("unit") or ""),
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
