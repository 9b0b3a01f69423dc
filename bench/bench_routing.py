"""Benchmark: routing with 161 studios and 0 (baseline), 10,000 and 100,000 solved problems.

The roster and the history are synthetic but shaped like the real thing: 161 studios across 4 alliances (bridge,
tunnel, urban rail, power) and the 6 studio types, each with expertise drawn from two or three concepts of the
built-in domain vocabulary of its discipline (plus a general one for some); solved problems and test questions are
site-style sentences built from a studio's terms, a symptom and a quantity. Everything is seeded: same data every
run.

Per history size, each in a fresh process (so memory figures are not muddled by the previous size):

- build: ``RoutingIndex(studios, solved)`` from scratch (what a restart costs);
- rank: ``rank(text, 3)`` for ``--queries`` questions, p50 and p99 (three rounds, the quietest kept);
- similar: ``similar(text)`` for the same questions, p50 and p99 (likewise; with no history it returns at once);
- add one: ``add_solved`` of ``--adds`` new problems into the built index, p50 and p99 — it must stay flat as
  history grows (no rebuild per problem): the run fails if the p50 at 100,000 exceeds ``--max-add-ratio`` times
  the p50 at 0;
- memory: RSS growth of the process while the index is built (jieba and the vocabulary are loaded before).

Figures are printed as a Markdown table, absolute and as ratios against the 0-history baseline of the same run.

Run: ``.venv/bin/python bench/bench_routing.py`` (about two minutes; ``--sizes 0,10000`` for a quick run).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.routing import RoutingIndex, SolvedProblem, StudioDoc, warm_up  # noqa: E402
from bot.routing.vocabulary import default_vocabulary  # noqa: E402

ALLIANCES = (
    ("bridge", "桥梁建造联盟"),
    ("tunnel", "隧道与地下工程联盟"),
    ("urban", "城市轨道交通联盟"),
    ("power", "电气化与通号联盟"),
)
TYPES = ("科技研发型", "管理创新型", "五小攻关型", "项目党建型", "海外经营型", "农民工管理型")
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
SYMPTOMS = (
    "开裂",
    "渗水",
    "偏差超限",
    "报警停机",
    "调不到位",
    "松动",
    "有异响",
    "压力偏低",
    "变形偏大",
    "数据对不上",
)
ASKS = ("怎么处理", "是什么原因", "要不要停下来", "有没有经验", "一般先查哪里", "能不能继续用")
STUDIOS = 161
ROUNDS = 3


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def make_roster(seed: int = 7) -> list[StudioDoc]:
    """161 studios over 4 alliances and 6 types, expertise drawn from the vocabulary of their discipline."""
    rng = _rng(seed)
    vocab = default_vocabulary()
    by_discipline: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for concept in vocab.concepts:
        by_discipline.setdefault(concept.discipline, []).append((concept.label, concept.terms))
    studios: list[StudioDoc] = []
    for i in range(STUDIOS):
        alliance, alliance_name = ALLIANCES[i % len(ALLIANCES)]
        kind = TYPES[i % len(TYPES)]
        concepts = rng.sample(by_discipline[alliance], k=rng.choice((2, 3)))
        if rng.random() < 0.3:
            concepts.append(rng.choice(by_discipline["general"]))
        expertise = [label for label, _ in concepts]
        for _, terms in concepts:
            expertise.extend(rng.sample(terms, k=min(2, len(terms))))
        words = [t for _, terms in concepts for t in rng.sample(terms, k=min(5, len(terms)))]
        name = f"{rng.choice(SURNAMES)}{concepts[0][0]}{'技能大师' if i % 3 == 0 else ''}工作室"
        description = f"{alliance_name}{kind}工作室，负责{'、'.join(words[:8])}等方面的技术攻关。"
        studios.append(
            StudioDoc(f"S{i + 1:03d}", name, alliance, tuple(dict.fromkeys(expertise)), description)
        )
    return studios


def _question(rng: random.Random, studio: StudioDoc) -> str:
    vocab = default_vocabulary()
    pool = [
        t
        for e in studio.expertise
        for label in [e]
        for c in vocab.concepts
        if c.label == label
        for t in c.terms
    ]
    pool = pool or list(studio.expertise)
    a, b = rng.sample(pool, k=2) if len(pool) > 1 else (pool[0], pool[0])
    number = rng.choice((f"{rng.randint(2, 80)}mm", f"{rng.randint(1, 60)}m", f"{rng.randint(2, 30)}%", ""))
    templates = (
        f"{a}{rng.choice(SYMPTOMS)}，{b}{number}，{rng.choice(ASKS)}？",
        f"请教：{a}施工时{b}{rng.choice(SYMPTOMS)}，{rng.choice(ASKS)}",
        f"{rng.randint(1, 40)}号{a}{rng.choice(SYMPTOMS)}了{number}，{b}要不要调整",
        f"{a}和{b}{rng.choice(SYMPTOMS)}，现场{rng.choice(ASKS)}",
    )
    return rng.choice(templates)


def make_history(studios: list[StudioDoc], n: int, seed: int = 11, start: int = 1) -> list[SolvedProblem]:
    """``n`` solved problems spread over the studios (a few studios solve many, most solve some)."""
    rng = _rng(seed)
    weights = [1.0 / (1 + (i % 40)) ** 0.5 for i in range(len(studios))]
    owners = rng.choices(studios, weights=weights, k=n)
    return [
        SolvedProblem(start + i, f"h{start + i}", s.id, _question(rng, s), "按方案处理后解决。")
        for i, s in enumerate(owners)
    ]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import resource

    return pages * resource.getpagesize()


@dataclass(slots=True)
class Result:
    """One history size's measurements (seconds, bytes)."""

    history: int
    build_s: float
    rank_p50_s: float
    rank_p99_s: float
    similar_p50_s: float
    similar_p99_s: float
    add_p50_s: float
    add_p99_s: float
    rss_bytes: int


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(history: int, queries: int, adds: int) -> dict[str, float]:
    """Build an index with ``history`` solved problems and time it (runs in a fresh process)."""
    warm_up()
    studios = make_roster()
    solved = make_history(studios, history)
    rng = _rng(99)
    texts = [_question(rng, rng.choice(studios)) for _ in range(queries)]
    new = make_history(studios, adds, seed=13, start=history + 1)
    before = _rss_bytes()
    t0 = time.perf_counter()
    index = RoutingIndex(studios, solved)
    build = time.perf_counter() - t0
    rss = _rss_bytes() - before
    del solved
    for text in texts[:20]:  # warm caches
        index.rank(text, 3)
        index.similar(text)
    # the questions are timed in ``ROUNDS`` rounds and the quietest round is kept for each percentile: the
    # figures describe the index, not the other processes sharing the machine
    rank_rounds: list[list[float]] = []
    similar_rounds: list[list[float]] = []
    for _ in range(ROUNDS):
        rank_t: list[float] = []
        similar_t: list[float] = []
        for text in texts:
            t0 = time.perf_counter()
            index.rank(text, 3)
            rank_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index.similar(text)
            similar_t.append(time.perf_counter() - t0)
        rank_rounds.append(rank_t)
        similar_rounds.append(similar_t)
    add_t: list[float] = []
    for problem in new:
        t0 = time.perf_counter()
        index.add_solved(problem)
        add_t.append(time.perf_counter() - t0)
    assert len(index) == history + adds
    return asdict(
        Result(
            history=history,
            build_s=build,
            rank_p50_s=min(statistics.median(r) for r in rank_rounds),
            rank_p99_s=min(_pct(r, 0.99) for r in rank_rounds),
            similar_p50_s=min(statistics.median(r) for r in similar_rounds),
            similar_p99_s=min(_pct(r, 0.99) for r in similar_rounds),
            add_p50_s=statistics.median(add_t),
            add_p99_s=_pct(add_t, 0.99),
            rss_bytes=rss,
        )
    )


def _child(history: int, queries: int, adds: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put(measure(history, queries, adds))


def run_isolated(history: int, queries: int, adds: int) -> Result:
    """``measure`` in a fresh spawned process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(history, queries, adds, queue))
    proc.start()
    data = queue.get()
    proc.join()
    return Result(**data)


def _ms(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.1f} s"


def _mib(b: int) -> str:
    return f"{b / 2**20:.1f} MiB"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base > 0 else "—"


def _similar_ratio(value: float, base_value: float, base: Result) -> str:
    # with no history similar() returns before doing any work: there is nothing to compare with
    return "— (no history)" if base.history == 0 else _ratio(value, base_value)


def table(results: list[Result]) -> str:
    """Markdown: absolute figures, then ratios to the first (0-history) result."""
    base = results[0]
    head = "| solved problems | build | rank p50 | rank p99 | similar p50 | similar p99 | add one p50 | add one p99 | memory (RSS growth) |"
    rule = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = [head, rule]
    for r in results:
        rows.append(
            f"| {r.history:,} | {_ms(r.build_s)} | {_ms(r.rank_p50_s)} | {_ms(r.rank_p99_s)} | "
            f"{_ms(r.similar_p50_s)} | {_ms(r.similar_p99_s)} | {_ms(r.add_p50_s)} | {_ms(r.add_p99_s)} | "
            f"{_mib(r.rss_bytes)} |"
        )
    rows += ["", "Ratios against the 0-history baseline of this run:", "", head, rule]
    for r in results:
        rows.append(
            f"| {r.history:,} | {_ratio(r.build_s, base.build_s)} | {_ratio(r.rank_p50_s, base.rank_p50_s)} | "
            f"{_ratio(r.rank_p99_s, base.rank_p99_s)} | {_similar_ratio(r.similar_p50_s, base.similar_p50_s, base)} | "
            f"{_similar_ratio(r.similar_p99_s, base.similar_p99_s, base)} | {_ratio(r.add_p50_s, base.add_p50_s)} | "
            f"{_ratio(r.add_p99_s, base.add_p99_s)} | {_ratio(r.rss_bytes, base.rss_bytes)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run every size, print the table, check that adding history stays incremental."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="0,10000,100000", help="history sizes, the first is the baseline")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--adds", type=int, default=1000)
    parser.add_argument("--max-add-ratio", type=float, default=3.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[Result] = []
    for size in sizes:
        print(f"history {size:,} …", file=sys.stderr, flush=True)
        results.append(run_isolated(size, args.queries, args.adds))
    print(
        f"Routing benchmark: {STUDIOS} studios, {args.queries} questions, {args.adds} added problems per size.\n"
    )
    print(table(results))
    worst = max(r.add_p50_s for r in results) / results[0].add_p50_s
    incremental = worst <= args.max_add_ratio
    print(
        f"\nadd_solved p50 at the largest history is {worst:.2f}× the empty index: "
        + ("incremental (no rebuild per problem)." if incremental else "NOT incremental.")
    )
    return 0 if incremental else 1


if __name__ == "__main__":
    raise SystemExit(main())
