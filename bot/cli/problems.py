"""``alliance-bot route``, ``alliance-bot problems import`` and ``alliance-bot eval routing``.

``route "TEXT" --json`` prints one JSON object (a contract other tools rely on); ``route --stdin --json`` reads
one text per line and prints one object per line, in order, after a single index build. Both read the roster
and the solved problems from ``BOT_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings

IMPORT_BATCH = 500
PROGRESS_FROM = 1000  # lines: smaller files import without a progress bar


# -- route -----------------------------------------------------------------------------------------


def _human(result: dict[str, Any]) -> str:
    lines = [f"技术问题：{'是' if result['is_problem'] else '否'}"]
    for rank, studio in enumerate(result["studios"], start=1):
        matched = "、".join(studio["matched"]) or "—"
        lines.append(f"{rank}. {studio['id']} {studio['name']}  得分 {studio['score']:.2f}  匹配：{matched}")
    for same in result["similar"]:
        ref = f"（{same['ref']}）" if same["ref"] else ""
        lines.append(f"类似已解决问题 #{same['id']}{ref} 相似度 {same['score']:.2f}：{same['answer']}")
    return "\n".join(lines)


async def _route(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.problems import embedder_for, expertise_terms, load_index, route_result, studio_docs
    from bot.store import Store

    if args.stdin == bool(args.text):
        print("请给出一段文字，或用 --stdin 从标准输入逐行读取（二者选一）。", file=sys.stderr)
        return 2
    store = await Store.open(settings.effective_database_url)
    try:
        index = await load_index(store, embedder_for(settings))
        terms = expertise_terms(await studio_docs(store))
    finally:
        await store.close()
    if not terms:
        print(
            "提示：数据库中没有工作室，请先导入花名册（alliance-bot studios import 花名册.yaml）。",
            file=sys.stderr,
        )

    def emit(text: str) -> None:
        result = route_result(index, text, extra_terms=terms)
        out = json.dumps(result, ensure_ascii=False) if args.json else _human(result)
        sys.stdout.write(out + "\n")

    if args.stdin:
        for line in sys.stdin:
            emit(line.rstrip("\r\n"))
            if not args.json:
                sys.stdout.write("\n")
            sys.stdout.flush()
    else:
        emit(args.text)
    return 0


# -- import ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What an import did: problems added, lines skipped as already imported, bad lines with reasons."""

    added: int = 0
    existing: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class HistoryLine:
    """One valid line of a history file."""

    number: int
    ref: str | None
    text: str
    studio: str
    answer: str


def parse_history(lines: Iterator[str], studios: set[str], report: ImportReport) -> Iterator[HistoryLine]:
    """Valid lines of a JSON-lines history file; bad ones are reported (in Chinese, by line number)."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.errors.append(f"第 {number} 行：不是有效的 JSON（{exc.msg}），已跳过")
            continue
        if not isinstance(item, dict):
            report.errors.append(f"第 {number} 行：应为一个 JSON 对象，已跳过")
            continue
        problems: list[str] = []
        text = item.get("text")
        studio = item.get("studio")
        answer = item.get("answer", "")
        ref = item.get("id")
        if not isinstance(text, str) or not text.strip():
            problems.append("缺少问题内容 text")
        if not isinstance(studio, str) or not studio.strip():
            problems.append("缺少工作室 studio")
        elif studio.strip() not in studios:
            problems.append(f"工作室 {studio} 不在花名册中")
        if not isinstance(answer, str):
            problems.append("答复 answer 应为文字")
        if ref is not None and not isinstance(ref, str | int):
            problems.append("编号 id 应为文字")
        if problems:
            report.errors.append(f"第 {number} 行：{'；'.join(problems)}，已跳过")
            continue
        assert isinstance(text, str) and isinstance(studio, str) and isinstance(answer, str)
        yield HistoryLine(
            number=number,
            ref=str(ref).strip() or None if ref is not None else None,
            text=text.strip(),
            studio=studio.strip(),
            answer=answer.strip(),
        )


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


async def import_history(
    path: Path, *, settings: Settings, now: datetime, progress: TextIO | None = None
) -> ImportReport:
    """Import solved problems from a JSON-lines file (idempotent by ``id``, kept as the problem's ``ref``)."""
    from bot.services.achievements.spreadsheet import ProgressBar
    from bot.store import Store
    from bot.store.problems import Problem, ProblemRepo, ProblemStatus

    total = _count_lines(path)
    bar = ProgressBar(total, stream=progress) if progress is not None and total >= PROGRESS_FROM else None
    report = ImportReport()
    store = await Store.open(settings.effective_database_url)
    try:
        studios = {s.id: s for s in await store.studios.all()}
        repo = ProblemRepo(store.sessions)
        seen_keys = await repo.imported_keys()
        seen_refs: set[str] = set()
        batch: list[HistoryLine] = []

        async def flush(done: int) -> None:
            refs = [h.ref for h in batch if h.ref]
            existing = await repo.existing_refs(refs) if refs else set()
            rows = []
            for item in batch:
                key = (item.studio, item.text)
                if (item.ref and (item.ref in existing or item.ref in seen_refs)) or (
                    not item.ref and key in seen_keys
                ):
                    report.existing += 1
                    continue
                if item.ref:
                    seen_refs.add(item.ref)
                else:
                    seen_keys.add(key)
                rows.append(
                    Problem(
                        ref=item.ref,
                        text=item.text,
                        asker="import",
                        alliance_id=studios[item.studio].alliance_id,
                        status=ProblemStatus.SOLVED.value,
                        studio_id=item.studio,
                        answer=item.answer,
                        source="import",
                        created_at=now,
                        claimed_at=now,
                        answered_at=now if item.answer else None,
                        solved_at=now,
                    )
                )
            if rows:
                await repo.add_imported(rows)
                report.added += len(rows)
            batch.clear()
            if bar is not None:
                bar(done)

        with path.open(encoding="utf-8-sig") as fh:
            last = 0
            for item in parse_history(iter(fh), set(studios), report):
                batch.append(item)
                last = item.number
                if len(batch) >= IMPORT_BATCH:
                    await flush(last)
            await flush(total if bar is not None else last)
    finally:
        await store.close()
    return report


async def _problems_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    try:
        report = await import_history(path, settings=settings, now=datetime.now(UTC), progress=sys.stderr)
    except OSError as exc:
        print(f"导入失败：无法读取文件 {path}（{exc.strerror}）", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"导入失败：{path} 不是 UTF-8 编码的文本文件", file=sys.stderr)
        return 1
    for line in report.errors:
        print(line, file=sys.stderr)
    print(
        f"导入完成：新增已解决问题 {report.added} 个，已导入过跳过 {report.existing} 个，有误 {len(report.errors)} 行。"
    )
    return 1 if report.errors else 0


# -- eval ------------------------------------------------------------------------------------------


def _read_lines(path: str, what: str) -> list[dict[str, Any]]:
    from bot.routing.evaluation import read_jsonl

    try:
        items = list(read_jsonl(path))
    except OSError as exc:
        raise ValueError(f"无法读取{what}文件 {path}：{exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what}文件 {path} 第 {exc.lineno} 行不是有效的 JSON") from None
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError(f"{what}文件 {path} 第 {number} 条缺少 text")
        if what == "问题" and not isinstance(item.get("expect"), str):
            raise ValueError(f"问题文件 {path} 第 {number} 条缺少 expect")
    return items


async def _eval_routing(args: argparse.Namespace, settings: Settings) -> int:
    from bot.routing.evaluation import evaluate
    from bot.services.problems import embedder_for, load_index
    from bot.store import Store

    try:
        questions = _read_lines(args.questions, "问题")
        chatter = _read_lines(args.chatter, "闲聊") if args.chatter else []
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    store = await Store.open(settings.effective_database_url)
    try:
        if not await store.studios.count():
            print(
                "数据库中没有工作室，请先导入花名册（alliance-bot studios import 花名册.yaml）。",
                file=sys.stderr,
            )
            return 1
        index = await load_index(store, embedder_for(settings))
    finally:
        await store.close()
    result = evaluate(index, questions, chatter)
    print(f"questions: {result.questions}")
    print(f"top-1 accuracy: {result.top1:.3f}")
    print(f"top-3 accuracy: {result.top3:.3f}")
    print(f"judged problem: {result.judged_problem:.3f}")
    if result.judged_chatter is not None:
        print(f"chatter: {result.chatter}")
        print(f"judged chatter: {result.judged_chatter:.3f}")
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``route``, ``problems`` and ``eval`` subcommands."""
    route = sub.add_parser(
        "route", help="recommend studios for a question (roster and history from the database)"
    )
    route.add_argument("text", nargs="?", default="", help="the question (or use --stdin)")
    route.add_argument("--stdin", action="store_true", help="read one question per line from standard input")
    route.add_argument("--json", action="store_true", help="print one JSON object per question")
    route.set_defaults(run=_route)

    problems = sub.add_parser("problems", help="technical problems").add_subparsers(
        dest="action", required=True
    )
    imp = problems.add_parser(
        "import", help='import solved problems from JSON lines: {"id", "text", "studio", "answer"}'
    )
    imp.add_argument("file")
    imp.set_defaults(run=_problems_import)

    evaluation = sub.add_parser("eval", help="evaluate routing").add_subparsers(dest="what", required=True)
    routing = evaluation.add_parser(
        "routing", help="top-1/top-3 accuracy and chatter share on labelled files"
    )
    routing.add_argument("--questions", required=True, help='JSON lines: {"id", "text", "expect", "also"}')
    routing.add_argument("--chatter", help='JSON lines: {"id", "text"} (messages that are not problems)')
    routing.set_defaults(run=_eval_routing)
