"""The frozen routing evaluation set (``tests/routing_eval``) stays as it was written: its files match the
recorded checksums, and every reference in it resolves. Its figures come from ``bench/eval_routing.py``; it is
never tuned on, so this test asserts no accuracy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bot.routing.evaluation import read_jsonl, studios_from_yaml

FOLDER = Path(__file__).resolve().parent / "routing_eval"
SUMS = FOLDER / "SHA256SUMS"

pytestmark = pytest.mark.skipif(not SUMS.exists(), reason="the frozen set is not recorded yet")


def test_the_files_are_unchanged() -> None:
    for line in SUMS.read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == digest, f"{name} was edited"


def test_every_reference_resolves() -> None:
    studios = {s.id for s in studios_from_yaml(FOLDER / "studios.yaml")}
    questions = list(read_jsonl(FOLDER / "questions.jsonl"))
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        assert q["expect"] in studios and set(q.get("also", [])) <= studios, json.dumps(q, ensure_ascii=False)
    history = {h["id"]: h for h in read_jsonl(FOLDER / "history.jsonl")} if (FOLDER / "history.jsonl").exists() else {}
    assert all(h["studio"] in studios for h in history.values())
    if (FOLDER / "dups.jsonl").exists():
        for d in read_jsonl(FOLDER / "dups.jsonl"):
            assert (d["same_as"] or d["near"]) in history, d["id"]
