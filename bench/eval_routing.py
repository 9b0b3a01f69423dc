"""Routing quality on every labelled set, with 95 % bootstrap intervals, as one Markdown table.

    .venv/bin/python bench/eval_routing.py [--only NAME] [--out FILE.md]

Sets: the development samples (``../shared/samples``: questions, questions_hard, chatter, history, dups), an
earlier session's invented roster (``tests/routing_heldout``, used for development since) and the frozen
evaluation set (``tests/routing_eval``: written independently of the vocabulary, never tuned on).
Each question set is scored roster only and with its set's solved history imported; same-question accuracy
uses the history. Indexes are built in memory from the files (no database), exactly as ``load_index`` builds
them from the store.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.routing import RoutingIndex, SolvedProblem  # noqa: E402
from bot.routing.evaluation import (  # noqa: E402
    bootstrap,
    duplicate_outcomes,
    outcomes,
    read_jsonl,
    studios_from_yaml,
)
from bot.routing.judge import judge  # noqa: E402


@dataclass(frozen=True)
class EvalSet:
    """A roster with its labelled files (missing files are skipped)."""

    name: str
    folder: Path
    questions: tuple[str, ...]

    def path(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.exists() else None


SETS = (
    EvalSet("samples", ROOT.parent / "shared" / "samples", ("questions.jsonl", "questions_hard.jsonl")),
    EvalSet("heldout-dev", ROOT / "tests" / "routing_heldout", ("questions.jsonl", "questions_fresh.jsonl")),
    EvalSet("frozen", ROOT / "tests" / "routing_eval", ("questions.jsonl",)),
)


def _history(path: Path | None) -> tuple[list[SolvedProblem], dict[str, int]]:
    if path is None:
        return [], {}
    solved = [
        SolvedProblem(id=n, ref=str(h["id"]), studio_id=str(h["studio"]), text=h["text"], answer=h.get("answer", ""))
        for n, h in enumerate(read_jsonl(path), start=1)
    ]
    return solved, {p.ref or "": p.id for p in solved}


EMBEDDER = None  # set by --semantic


def rows_for(evalset: EvalSet) -> list[str]:
    """The table rows of one set."""
    roster = evalset.path("studios.yaml")
    if roster is None:
        return [f"| {evalset.name} | (not found: {evalset.folder}) | | | | | |"]
    studios = studios_from_yaml(roster)
    solved, ids = _history(evalset.path("history.jsonl"))
    started = time.perf_counter()
    bare = RoutingIndex(studios, embedder=EMBEDDER)
    full = RoutingIndex(studios, solved, embedder=EMBEDDER) if solved else None
    rows = []
    for name in evalset.questions:
        path = evalset.path(name)
        if path is None:
            continue
        questions = list(read_jsonl(path))
        groups: dict[str, list[dict]] = {"all": questions}
        styles = {q.get("style") for q in questions} - {None}
        for style in sorted(styles):
            groups[f"style={style}"] = [q for q in questions if q.get("style") == style]
        for label, items in groups.items():
            plain = outcomes(bare, items)
            cells = [str(bootstrap(plain.top1)), str(bootstrap(plain.top3))]
            if full is not None:
                hist = outcomes(full, items)
                cells += [str(bootstrap(hist.top1)), str(bootstrap(hist.top3))]
            else:
                cells += ["—", "—"]
            cells.append(str(bootstrap(plain.judged_problem)))
            rows.append(f"| {evalset.name} | {name} ({label}, n={len(items)}) | " + " | ".join(cells) + " |")
    chatter = evalset.path("chatter.jsonl")
    if chatter is not None:
        quiet = [not judge(c["text"]).is_problem for c in read_jsonl(chatter)]
        rows.append(f"| {evalset.name} | chatter.jsonl (n={len(quiet)}) | | | | | judged chatter {bootstrap(quiet)} |")
    dups = evalset.path("dups.jsonl")
    if dups is not None and full is not None:
        right, near = duplicate_outcomes(full, read_jsonl(dups), ids)
        rows.append(
            f"| {evalset.name} | dups.jsonl (n={len(right)}) | same-question accuracy {bootstrap(right)} | "
            f"near-misses matched {bootstrap(near)} | | | |"
        )
    print(f"{evalset.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one set by name")
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--semantic", action="store_true", help="with the sentence-embedding signal")
    args = parser.parse_args()
    if args.semantic:
        global EMBEDDER
        from bot.routing.semantic import load_embedder

        EMBEDDER = load_embedder(ROOT / "data" / "eval-embeddings.sqlite")
    lines = [
        "| set | file | roster top-1 | roster top-3 | history top-1 | history top-3 | judged a problem |",
        "|---|---|---|---|---|---|---|",
    ]
    for evalset in SETS:
        if args.only and evalset.name != args.only:
            continue
        lines += rows_for(evalset)
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
