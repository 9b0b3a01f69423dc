"""Accuracy of the Chinese date parser on the frozen generated set ``tests/dates_eval/phrases.jsonl``.

    .venv/bin/python bench/eval_dates.py [--failures]

A phrase counts as right when ``parse_span`` returns exactly the expected (start, end), or, for a line that
expects an error, raises ``WhenError``; anything else (a wrong time, a refusal of a good phrase, another
exception) is a failure.  Prints the accuracy with a 95 % Wilson score interval and the failures by category
(date part, time part, digit form, spacing); ``--failures`` also lists every failing phrase.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.services.activities.dates import WhenError, parse_span  # noqa: E402

PHRASES = ROOT / "tests" / "dates_eval" / "phrases.jsonl"
CATEGORIES = ("date", "time", "form", "spacing")


@dataclass(frozen=True)
class Outcome:
    line: dict[str, object]
    ok: bool
    got: str  # what the parser did, for the failure list


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def score(line: dict[str, object]) -> Outcome:
    text, now = str(line["text"]), datetime.fromisoformat(str(line["now"]))
    try:
        start, end = parse_span(text, now=now)
    except WhenError as e:
        return Outcome(line, bool(line.get("error")), f"WhenError: {str(e).split('。')[0]}")
    except Exception as e:  # a crash is a failure, never an error the user sees politely
        return Outcome(line, False, f"{type(e).__name__}: {e}")
    got = f"{_iso(start)} .. {_iso(end)}"
    if line.get("error"):
        return Outcome(line, False, got)
    return Outcome(line, (_iso(start), _iso(end)) == (line["start"], line["end"]), got)


def evaluate(path: Path = PHRASES) -> list[Outcome]:
    with path.open(encoding="utf-8") as f:
        return [score(json.loads(raw)) for raw in f if raw.strip()]


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95 % by default)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def report(outcomes: list[Outcome], *, list_failures: bool = False) -> str:
    n = len(outcomes)
    right = sum(o.ok for o in outcomes)
    low, high = wilson(right, n)
    out = [f"dates: {right}/{n} right, accuracy {right / n:.3f} (95% Wilson CI {low:.3f}-{high:.3f})", ""]
    for category in CATEGORIES:
        totals = Counter(str(o.line[category]) for o in outcomes)
        failed = Counter(str(o.line[category]) for o in outcomes if not o.ok)
        out += [f"| {category} | n | failed | accuracy |", "|---|---:|---:|---:|"]
        for value, total in sorted(totals.items(), key=lambda kv: (-failed[kv[0]], kv[0])):
            out.append(f"| {value} | {total} | {failed[value]} | {(total - failed[value]) / total:.3f} |")
        out.append("")
    if list_failures:
        out += ["| text | now | expected | got | date/time/form/spacing |", "|---|---|---|---|---|"]
        for o in outcomes:
            if not o.ok:
                line = o.line
                want = "error" if line.get("error") else f"{line['start']} .. {line['end']}"
                kinds = "/".join(str(line[c]) for c in CATEGORIES)
                out.append(f"| {line['text']} | {line['now']} | {want} | {o.got} | {kinds} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--failures", action="store_true", help="list every failing phrase")
    args = parser.parse_args()
    print(report(evaluate(), list_failures=args.failures))


if __name__ == "__main__":
    main()
