"""Benchmark: how long ``alliance-bot --help`` (and each subcommand's ``--help``) takes to start, against a bare
``python -c pass`` in the same run.

Every figure is the wall time of a fresh process (``python -m bot … --help``), median and 90th percentile over
``--runs`` runs after one warm-up run (bytecode cached). ``--cold`` gives every run an empty bytecode cache
(``PYTHONPYCACHEPREFIX``): nothing is compiled yet, as on a first run — an upper bound, standard library included.
``--root DIR`` measures another checkout (e.g. an older commit unpacked with ``git archive``). The modules a
``--help`` must not load are listed in ``tests/test_cli.py`` (``HEAVY_MODULES``), which checks them; this script
only reports times.

Run: ``.venv/bin/python bench/bench_startup.py`` (about half a minute). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    "",
    "serve",
    "chat",
    "studios",
    "db",
    "jobs",
    "events",
    "achievements",
    "report",
    "route",
    "outbox",
]


def timed(argv: list[str], root: Path, cold: bool) -> float:
    """Wall time of one process, in seconds."""
    if cold:
        with tempfile.TemporaryDirectory() as cache:
            return _run(argv, root, {"PYTHONPYCACHEPREFIX": cache})
    return _run(argv, root)


def _run(argv: list[str], root: Path, extra: dict[str, str] | None = None) -> float:
    # in the checkout, on its path: ``python -m`` puts the working directory first, before PYTHONPATH and the
    # editable install
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(PYTHONPATH=str(root), **(extra or {}))
    start = time.perf_counter()
    subprocess.run(argv, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def measure(argv: list[str], root: Path, runs: int, cold: bool) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds."""
    _run(argv, root)  # warm-up: bytecode written, files in the page cache
    times = sorted(timed(argv, root, cold) for _ in range(runs))
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    return statistics.median(times) * 1000, p90 * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cold", action="store_true", help="an empty bytecode cache for every run")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    check = [
        sys.executable,
        "-c",
        "import bot, pathlib, sys; sys.exit(pathlib.Path(bot.__file__).parent.parent != pathlib.Path(sys.argv[1]))",
        str(root),
    ]
    _run(check, root)  # the checkout's own code is what runs
    rows = [
        ("`python -c pass` (baseline)", *measure([sys.executable, "-c", "pass"], root, args.runs, args.cold))
    ]
    for command in COMMANDS:
        argv = [sys.executable, "-m", "bot", *command.split(), "--help"]
        name = f"`alliance-bot {command + ' ' if command else ''}--help`"
        rows.append((name, *measure(argv, root, args.runs, args.cold)))
    base = rows[0][1]
    print(f"{'cold' if args.cold else 'warm'} bytecode cache, {args.runs} runs each, checkout {root}\n")
    print("| command | median ms | p90 ms | median − baseline ms |")
    print("|---|---|---|---|")
    for name, median, p90 in rows:
        print(f"| {name} | {median:.0f} | {p90:.0f} | {median - base:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
