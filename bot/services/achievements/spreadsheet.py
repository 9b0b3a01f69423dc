"""Bulk import of achievements from the union's spreadsheets (XLSX or CSV).

The first row is the header: ``类型, 名称, 工作室, 年份, 奖励金额`` (any order; ``奖励金额`` may be left out).
``工作室`` holds studio ids or names separated by 、 , ; / or spaces; ``奖励金额`` is yuan (``20000``, ``2万``) and,
when present, records an award of that year on the achievement. A bad row is reported as ``第 N 行：…`` (N is
the spreadsheet's row number, the header being row 1) and the other rows are still imported; an achievement
already on record (same type, name and year) is skipped, so importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.store.achievements import Achievement, AchievementRepo, AchievementType, Award
from bot.store.studios import Studio

REQUIRED = ("类型", "名称", "工作室", "年份")
OPTIONAL = ("奖励金额",)
_HEADER_ALIASES = {
    "成果类型": "类型",
    "成果名称": "名称",
    "完成工作室": "工作室",
    "年度": "年份",
    "奖励": "奖励金额",
    "金额": "奖励金额",
    "奖励金额(元)": "奖励金额",
}
_STUDIO_SEPARATORS = re.compile(r"[、,;/\s]+")
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?)(万)?元?$")
MAX_AMOUNT = 10_000_000


class ImportFileError(Exception):
    """The file cannot be read at all (format, header); the message is Chinese."""


@dataclass(slots=True, frozen=True)
class SheetRow:
    """One data row: its spreadsheet row number and its cells by header name."""

    number: int
    cells: dict[str, Any]


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    added: int = 0
    awards: int = 0
    award_total: int = 0
    skipped: list[str] = field(default_factory=list)  # already on record
    errors: list[str] = field(default_factory=list)  # 第 N 行：…


def _clean_header(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).strip().replace(" ", "")
    return _HEADER_ALIASES.get(text, text)


def read_rows(path: Path) -> tuple[int, Iterator[SheetRow]]:
    """The number of data rows and the rows of an ``.xlsx`` or ``.csv`` file; raises ``ImportFileError``."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImportFileError(f"找不到文件 {path}")
    if suffix in (".xlsx", ".xlsm"):
        table = _xlsx_table(path)
    elif suffix == ".csv":
        table = _csv_table(path)
    else:
        raise ImportFileError(f"不支持的文件类型「{path.suffix}」，请用 .xlsx 或 .csv。")
    if not table:
        raise ImportFileError("文件是空的：第 1 行应为表头（类型, 名称, 工作室, 年份, 奖励金额）。")
    header = [_clean_header(h) for h in table[0]]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise ImportFileError(
            f"第 1 行表头缺少：{'、'.join(missing)}。表头应为：类型, 名称, 工作室, 年份, 奖励金额（奖励金额可省略）。"
        )
    columns = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}
    body = [
        (number, values)
        for number, values in enumerate(table[1:], start=2)
        if any(v not in (None, "") and str(v).strip() for v in values)
    ]

    def rows() -> Iterator[SheetRow]:
        for number, values in body:
            cells = {name: values[index] if index < len(values) else None for name, index in columns.items()}
            yield SheetRow(number, cells)

    return len(body), rows()


MAX_ROWS = 20_000  # an achievements sheet is a few hundred rows; more is a mistake or an attack
MAX_COLUMNS = 50
MAX_UNPACKED = 50 * 1024 * 1024  # bytes of XML inside the .xlsx (a zip): a small file can unpack to gigabytes


def _xlsx_table(path: Path) -> list[list[Any]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"无法读取 Excel 文件 {path.name}：不是有效的 .xlsx 文件") from exc
    if unpacked > MAX_UNPACKED:
        raise ImportFileError(f"Excel 文件 {path.name} 解压后超过 {MAX_UNPACKED // 1024 // 1024} MB，请拆分后再导入。")
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a damaged or mislabelled file
        raise ImportFileError(f"无法读取 Excel 文件 {path.name}：{type(exc).__name__}") from exc
    try:
        sheet = book.worksheets[0]
        # the sheet's declared dimension (A1:XFD1048576 fits in 5 KB): refuse before iterating over it
        rows, columns = sheet.max_row or 0, sheet.max_column or 0
        if rows > MAX_ROWS + 1 or columns > MAX_COLUMNS:
            raise ImportFileError(
                f"Excel 文件 {path.name} 的工作表声明了 {rows} 行、{columns} 列，超过上限（{MAX_ROWS} 行、"
                f"{MAX_COLUMNS} 列）。请删除多余的空行空列（或把数据复制到新表）后再导入。"
            )
        table: list[list[Any]] = []
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            table.append(list(row))
            if len(table) > MAX_ROWS + 1:
                raise ImportFileError(f"Excel 文件 {path.name} 超过 {MAX_ROWS} 行，请拆分后再导入。")
        return table
    finally:
        book.close()


def _csv_table(path: Path) -> list[list[Any]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK unless told otherwise
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError(f"无法识别 {path.name} 的文字编码，请另存为 UTF-8 的 CSV 或 .xlsx。")
    return [list(row) for row in csv.reader(text.splitlines())]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_year(value: Any) -> int:
    """A year cell: ``2025``, ``2025.0``, ``"2025年"`` or a date; raises ``ValueError``."""
    if isinstance(value, datetime | date):
        return value.year
    text = _text(value).removesuffix("年")
    if not re.fullmatch(r"(19|20)\d\d", text):
        raise ValueError(text)
    return int(text)


def parse_amount(value: Any) -> int:
    """An amount cell in yuan: ``20000``, ``"20,000"``, ``"2万"``; 0 for an empty cell; raises ``ValueError``."""
    text = _text(value).replace(",", "")
    if not text:
        return 0
    match = _AMOUNT.fullmatch(text)
    if not match:
        raise ValueError(text)
    amount = float(match.group(1)) * (10_000 if match.group(2) else 1)
    if amount != int(amount) or amount > MAX_AMOUNT:
        raise ValueError(text)
    return int(amount)


def resolve_studios(value: Any, studios: dict[str, Studio]) -> tuple[list[str], list[str]]:
    """Studio ids for a ``工作室`` cell, and the words that matched no studio."""
    found: list[str] = []
    unknown: list[str] = []
    by_name = {s.name: s.id for s in studios.values()}
    by_id = {s.id.lower(): s.id for s in studios.values()}
    for word in (w for w in _STUDIO_SEPARATORS.split(_text(value)) if w):
        studio_id = by_id.get(word.lower()) or by_name.get(word)
        if studio_id is None:
            unknown.append(word)
        elif studio_id not in found:
            found.append(studio_id)
    return found, unknown


Progress = Callable[[int], None]


async def import_rows(
    rows: Iterator[SheetRow],
    *,
    repo: AchievementRepo,
    studios: dict[str, Studio],
    now: datetime,
    this_year: int,
    progress: Progress | None = None,
) -> ImportReport:
    """Import rows one by one; a bad row is recorded in ``errors`` and skipped."""
    report = ImportReport()
    for done, row in enumerate(rows, start=1):
        try:
            await _import_row(row, repo=repo, studios=studios, now=now, this_year=this_year, report=report)
        except ValueError as exc:
            report.errors.append(f"第 {row.number} 行：{exc}")
        if progress is not None:
            progress(done)
    return report


async def _import_row(
    row: SheetRow,
    *,
    repo: AchievementRepo,
    studios: dict[str, Studio],
    now: datetime,
    this_year: int,
    report: ImportReport,
) -> None:
    cells = row.cells
    type_text = _text(cells["类型"])
    try:
        kind = AchievementType.parse(type_text)
    except ValueError:
        raise ValueError(
            f"类型「{type_text}」不是成果类型（{'、'.join(k.value for k in AchievementType)}）"
            if type_text
            else "类型为空"
        ) from None
    title = _text(cells["名称"])
    if not title:
        raise ValueError("名称为空")
    if len(title) > 300:
        raise ValueError("名称超过 300 字")
    try:
        year = parse_year(cells["年份"])
    except ValueError:
        raise ValueError(f"年份「{_text(cells['年份'])}」不是四位年份") from None
    if not 1980 <= year <= this_year + 1:
        raise ValueError(f"年份 {year} 超出范围（1980—{this_year + 1}）")
    studio_ids, unknown = resolve_studios(cells["工作室"], studios)
    if unknown:
        raise ValueError(f"没有找到工作室「{'、'.join(unknown)}」（请写工作室编号或全称）")
    if not studio_ids:
        raise ValueError("工作室为空")
    try:
        amount = parse_amount(cells.get("奖励金额"))
    except ValueError as exc:
        raise ValueError(f"奖励金额「{exc}」不是金额（例如 20000 或 2万）") from None
    existing = await repo.find(type=kind.value, title=title, year=year)
    if existing is not None:
        report.skipped.append(f"第 {row.number} 行：已有成果 #{existing.id}「{title}」，跳过")
        return
    award = (
        Award(name="成果奖励", amount=amount, year=year, note="表格导入", created_by="import", created_at=now)
        if amount
        else None
    )
    await repo.add_with_award(
        Achievement(
            type=kind.value,
            title=title,
            studios=studio_ids,
            year=year,
            registered_by="import",
            source="import",
            created_at=now,
        ),
        award,
    )
    report.added += 1
    if award is not None:
        report.awards += 1
        report.award_total += amount


class ProgressBar:
    """A one-line progress bar on stderr: ``导入 [########------------] 40/100``."""

    def __init__(
        self, total: int, *, label: str = "导入", width: int = 30, stream: TextIO | None = None
    ) -> None:
        self.total = total
        self.label = label
        self.width = width
        self.stream = stream or sys.stderr

    def __call__(self, done: int) -> None:
        """Show ``done`` of ``total``; a newline after the last."""
        filled = self.width * done // self.total if self.total else self.width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total}")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
