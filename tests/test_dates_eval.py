"""The date parser on the frozen generated set ``tests/dates_eval``: the files are as generated, the
generator reproduces them, and the accuracy is at least 0.97 (``bench/eval_dates.py`` prints the figures)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench.eval_dates import PHRASES, evaluate, report, wilson

FOLDER = PHRASES.parent


def test_the_files_are_unchanged() -> None:
    for line in (FOLDER / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == digest, f"{name} was edited"


def test_the_generator_reproduces_the_set(tmp_path: Path) -> None:
    copy = tmp_path / "generate.py"
    copy.write_text((FOLDER / "generate.py").read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(copy)], check=True, capture_output=True)
    assert (tmp_path / "phrases.jsonl").read_bytes() == PHRASES.read_bytes()


def test_accuracy_is_at_least_097() -> None:
    outcomes = evaluate()
    right = sum(o.ok for o in outcomes)
    assert len(outcomes) >= 300
    assert right / len(outcomes) >= 0.97, report(outcomes, list_failures=True)


def test_wilson_interval() -> None:
    low, high = wilson(444, 444)
    assert (round(low, 3), high) == (0.991, 1.0)
    low, high = wilson(50, 100)
    assert (round(low, 3), round(high, 3)) == (0.404, 0.596)
