"""Conversation tests for the funding ledger (``/经费``): income and spending, earmarking and budgets with
their refusals and the admin's override, awards counted once, edits with their audit trail, exactly-once per
message, and the spreadsheet import (all or nothing, row-numbered errors)."""

from __future__ import annotations

from pathlib import Path

from bot.app import BotApp
from bot.services.funds import FundService
from bot.store.audit import AuditRepo
from bot.store.funds import FundRepo
from tests.conftest import ADMIN
from tests.harness import Chat

TUNNEL_LEAD = "mushandong"
BRIDGE_LEAD = "gaojiaqiao"
T1_LEAD = "chenjuejin"


async def test_income_spending_and_the_summary(chat: Chat) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助 10万 2026-03-01 年度活动经费")
    assert "已登记隧道联盟收入 #1 公司补助 100,000 元（2026-03-01）：年度活动经费" in reply
    await chat.say(TUNNEL_LEAD, "/经费 收入 工会 3万 3月2日")
    await chat.say(TUNNEL_LEAD, "/经费 收入 行政资助 20000")
    reply = await chat.say(TUNNEL_LEAD, "/经费 支出 培训 8000 3月15日 盾构培训班")
    assert "支出 #4 学习培训 8,000 元（2026-03-15）：盾构培训班" in reply
    assert "尚未设预算" in reply
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "【隧道联盟2026年经费】" in summary
    assert "收入合计 150,000 元" in summary
    assert "· 牵头单位工会补助 30,000 元" in summary
    assert "· 本单位行政资助 20,000 元" in summary
    assert "支出合计 8,000 元" in summary
    assert "结余 142,000 元" in summary
    # another year is empty; another alliance's lead may not look
    assert "收入合计 0 元" in await chat.say(TUNNEL_LEAD, "/经费 2025")
    assert "只有桥梁联盟的联盟负责人和管理员" in await chat.say(TUNNEL_LEAD, "/经费 桥梁")
    assert "只有隧道联盟的联盟负责人和管理员" in await chat.say(BRIDGE_LEAD, "/经费 隧道")
    # members and studio leads are told the role it needs
    assert "需要「联盟负责人」" in await chat.say(T1_LEAD, "/经费")
    # an admin sees every alliance, and one in detail
    overview = await chat.say(ADMIN, "/经费")
    assert "· 隧道联盟：收入 150,000 元，支出 8,000 元，结余 142,000 元" in overview
    assert "收入合计 150,000 元" in await chat.say(ADMIN, "/经费 隧道 2026")


async def test_earmarking_and_budgets_refuse_with_a_reason_unless_an_admin_overrides(chat: Chat) -> None:
    reply = await chat.say(TUNNEL_LEAD, "/经费 预算 学习培训 1万")
    assert reply == "隧道联盟2026年「学习培训」预算设为 10,000 元；已支出 0 元。"
    assert "已登记" in await chat.say(TUNNEL_LEAD, "/经费 支出 学习培训 6000")
    refused = await chat.say(TUNNEL_LEAD, "/经费 支出 学习培训 5000 第二期")
    assert refused.startswith("未登记。超出预算")
    assert "预算 10,000 元，已支出 6,000 元，本笔 5,000 元后将达 11,000 元（超 1,000 元）" in refused
    # outside the earmarked categories
    refused = await chat.say(TUNNEL_LEAD, "/经费 支出 餐饮 500")
    assert "「餐饮」不在经费允许的支出范围内" in refused and "专款专用" in refused
    # only an admin may override
    assert "只有管理员可以特批" in await chat.say(TUNNEL_LEAD, "/经费 支出 学习培训 5000 特批 急需")
    reply = await chat.say(ADMIN, "/经费 支出 学习培训 5000 @隧道 第二期 特批 集团培训计划追加")
    assert "已登记隧道联盟支出 #2 学习培训 5,000 元" in reply
    assert "管理员特批：超出预算" in reply
    reply = await chat.say(ADMIN, "/经费 支出 餐饮 500 @隧道 特批 会议工作餐")
    assert "支出 #3 其他 500 元" in reply
    entries = await chat.say(TUNNEL_LEAD, "/经费 明细")
    assert "（特批：集团培训计划追加）" in entries
    # nothing was recorded by the refusals
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "· 学习培训 11,000 / 预算 10,000 元，执行 110%" in summary
    assert "支出合计 11,500 元" in summary
    # budgets: only known categories, changes are audited
    assert "不是经费的支出类别" in await chat.say(TUNNEL_LEAD, "/经费 预算 餐饮 1000")
    assert "由 10,000 元改为 20,000 元" in await chat.say(TUNNEL_LEAD, "/经费 预算 培训 2万")
    trail = await AuditRepo(chat.bot.store.sessions).history("fund_budget", "tunnel:2026:学习培训")
    assert [(e.action, e.after["amount"]) for e in trail] == [("create", 10_000), ("edit", 20_000)]


async def test_bad_input_gets_a_chinese_message(chat: Chat) -> None:
    assert "不认识的经费来源「捐款」" in await chat.say(TUNNEL_LEAD, "/经费 收入 捐款 100")
    assert "金额要大于 0" in await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助 0")
    assert "请写明金额" in await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助")
    assert "日期「2026-02-30」不存在" in await chat.say(TUNNEL_LEAD, "/经费 收入 公司补助 100 2026-02-30")
    assert "没有编号为 99 的活动" in await chat.say(TUNNEL_LEAD, "/经费 支出 会议 100 活动99")
    assert "没有编号为 T-7 的课题" in await chat.say(TUNNEL_LEAD, "/经费 支出 攻关 100 课题T-7")
    assert "没有找到联盟「月球」" in await chat.say(ADMIN, "/经费 收入 公司补助 100 @月球")
    assert "请写明联盟" in await chat.say(ADMIN, "/经费 收入 公司补助 100")
    assert "用法" in await chat.say(TUNNEL_LEAD, "/经费 收入")
    assert "没有编号为 #5 的经费记录" in await chat.say(TUNNEL_LEAD, "/经费 撤销 5")


async def test_an_award_appears_in_the_ledger_once(chat: Chat) -> None:
    # a joint achievement of a tunnel (T1) and a bridge (B1) studio, awarded 20,000: 10,000 each
    await chat.say(ADMIN, "/成果 登记 工法 盾构管片拼装质量控制工法 T1 B1 2026")
    await chat.say(ADMIN, "/奖励 1 20000 2026 优秀成果奖")
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "· 奖励 10,000 元（未设预算）" in summary
    assert "每项奖励在经费台账中只计一次" in summary
    # linking the award takes its share as the amount and replaces the derived line
    reply = await chat.say(TUNNEL_LEAD, "/经费 支出 奖励 奖励#1 4月1日 颁奖")
    assert "支出 #1 奖励 10,000 元（2026-04-01）" in reply
    assert "奖励 #1（按本联盟分摊份额计）" in reply
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "支出合计 10,000 元" in summary
    # a second link is refused, in either alliance's ledger only once
    refused = await chat.say(TUNNEL_LEAD, "/经费 支出 奖励 奖励#1")
    assert "已计入经费台账" in refused and "不重复登记" in refused
    assert "支出合计 10,000 元" in await chat.say(BRIDGE_LEAD, "/经费")
    # an award of no studio of the alliance cannot be linked to it; an award only to a 奖励 entry
    await chat.say(ADMIN, "/奖励 B1 30000 2026 五星级工作室")
    assert "没有隧道联盟的份额" in await chat.say(TUNNEL_LEAD, "/经费 支出 奖励 奖励#2")
    assert "只能是「奖励」类支出" in await chat.say(TUNNEL_LEAD, "/经费 支出 会议 奖励#1")
    assert "支出合计 40,000 元" in await chat.say(BRIDGE_LEAD, "/经费")
    # voiding the linked entry brings the derived line back: still once
    await chat.say(TUNNEL_LEAD, "/经费 撤销 1 重复")
    summary = await chat.say(TUNNEL_LEAD, "/经费")
    assert "支出合计 10,000 元" in summary
    ledger = await chat.bot.runtime.feature(FundService).ledger(
        (await chat.bot.store.alliances.get("tunnel")),
        2026,  # type: ignore[arg-type]
    )
    assert [(line.entry_id, line.award_id, line.amount) for line in ledger.lines] == [(None, 1, 10_000)]


async def test_edits_are_audited_and_a_message_counts_once(chat: Chat) -> None:
    await chat.say(TUNNEL_LEAD, "/经费 预算 会议 1万")
    first = await chat.say(TUNNEL_LEAD, "/经费 支出 会议 3000 年会场地", msg_id="dup-1")
    again = await chat.say(TUNNEL_LEAD, "/经费 支出 会议 3000 年会场地", msg_id="dup-1")
    assert "已登记" in first
    assert len(await FundRepo(chat.bot.store.sessions).entries(year=2026)) == 1
    assert again in ("", first)
    assert "已修改：支出 #1 会议组织 4,000 元" in await chat.say(
        TUNNEL_LEAD, "/经费 修改 1 金额 4000 发票更正"
    )
    assert "超出预算" in await chat.say(TUNNEL_LEAD, "/经费 修改 1 金额 12000")
    assert "（2026-05-06）" in await chat.say(TUNNEL_LEAD, "/经费 修改 1 日期 5月6日")
    assert "不能改到另一年" in await chat.say(TUNNEL_LEAD, "/经费 修改 1 日期 2025-05-06")
    await chat.say(TUNNEL_LEAD, "/经费 修改 1 备注 年会场地租赁")
    assert "只能修改本联盟" in await chat.say(BRIDGE_LEAD, "/经费 撤销 1")
    history = await chat.say(TUNNEL_LEAD, "/经费 记录 1")
    assert "mushandong 登记：会议组织 3000 元" in history
    assert "amount 3000 → 4000（理由：发票更正）" in history
    assert "date 2026-11-24 → 2026-05-06" in history
    assert "note 年会场地 → 年会场地租赁" in history
    trail = await AuditRepo(chat.bot.store.sessions).history("fund_entry", 1)
    assert [e.action for e in trail] == ["create", "edit", "edit", "edit"]


async def test_import_is_all_or_nothing_with_row_numbers(bot: BotApp, tmp_path: Path) -> None:
    from bot.services.funds import import_file

    good = tmp_path / "ledger.csv"
    good.write_text(
        "联盟,收支,类别,金额,日期,备注\n"
        "隧道,收入,公司补助,100000,2026-01-05,年度补助\n"
        "隧道,支出,学习培训,8000,2026-03-15,培训班\n"
        "桥梁,收入,工会补助,2万,2026-02-01,\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "联盟,收支,类别,金额,日期,备注\n"
        "隧道,收入,公司补助,100000,2026-01-05,年度补助\n"
        "隧道,支出,餐饮,800,2026-03-15,\n"
        "火星,收入,公司补助,1,2026-01-01,\n"
        "隧道,支出,学习培训,abc,2026-03-15,\n",
        encoding="utf-8",
    )
    result = await import_file(bot.runtime, bad, actor="cli")
    assert result.errors == [
        "第 3 行：「餐饮」不在经费允许的支出范围内（专款专用，只能用于会议组织、研讨交流、学习培训、专项攻关、奖励）",
        "第 4 行：没有找到联盟「火星」",
        "第 5 行：金额「abc」看不懂，请写元数，例如 20000 或 2万",
    ]
    assert result.added == 0
    assert await FundRepo(bot.store.sessions).entries(year=2026) == []
    result = await import_file(bot.runtime, good, actor="cli")
    assert (result.errors, result.added) == ([], 3)
    entries = await FundRepo(bot.store.sessions).entries(year=2026)
    assert [(e.alliance_id, e.category, e.amount, e.source) for e in entries] == [
        ("tunnel", "公司补助", 100_000, "import"),
        ("bridge", "牵头单位工会补助", 20_000, "import"),
        ("tunnel", "学习培训", 8_000, "import"),
    ]
    assert len(await AuditRepo(bot.store.sessions).recent(entity="fund_entry")) == 3
    # budgets hold in an import too, counting the file's own rows
    await FundRepo(bot.store.sessions).set_budget(
        alliance_id="tunnel", year=2026, category="学习培训", amount=10_000, by="x", at=bot.clock.now()
    )
    over = tmp_path / "over.csv"
    over.write_text(
        "联盟,收支,类别,金额,日期\n隧道,支出,培训,1000,2026-04-01\n隧道,支出,培训,1500,2026-04-02\n",
        encoding="utf-8",
    )
    result = await import_file(bot.runtime, over, actor="cli")
    assert len(result.errors) == 1 and result.errors[0].startswith("第 3 行：超出预算")
    assert (await import_file(bot.runtime, over, actor="cli", override="年度调整")).added == 2


def test_the_import_command_reports_bad_rows_and_exits_1(settings: object, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.harness import EXAMPLE_ROSTER, ROOT

    env = {**os.environ, "BOT_DATABASE_URL": settings.database_url}  # type: ignore[attr-defined]
    run = [sys.executable, "-m", "bot"]
    subprocess.run([*run, "studios", "import", str(EXAMPLE_ROSTER)], env=env, cwd=ROOT, check=True)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "联盟,收支,类别,金额,日期\n隧道,收入,公司补助,100,2026-01-05\n隧道,支出,餐饮,800,2026-03-15\n"
    )
    done = subprocess.run(
        [*run, "funds", "import", str(bad)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "第 3 行：「餐饮」不在经费允许的支出范围内" in done.stderr
    assert "未导入任何记录" in done.stderr
    done = subprocess.run(
        [*run, "funds", "import", str(bad), "--override", "会议工作餐"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "导入完成：新增经费记录 2 笔。")


async def test_import_reads_xlsx_with_dates_as_cells(bot: BotApp, tmp_path: Path) -> None:
    from datetime import datetime

    from openpyxl import Workbook

    from bot.services.funds import import_file

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["联盟", "收支", "类别", "金额", "日期", "备注"])
    sheet.append(["隧道联盟", "收入", "专项支持", 200000, datetime(2026, 6, 1), "盾构专项"])
    sheet.append(["tunnel", "支出", "专项攻关", "5万", "2026/6/20", None])
    path = tmp_path / "ledger.xlsx"
    book.save(path)
    result = await import_file(bot.runtime, path, actor="cli")
    assert (result.errors, result.added) == ([], 2)
    entries = await FundRepo(bot.store.sessions).entries(year=2026, alliance_id="tunnel")
    assert [(e.category, e.amount, e.on.isoformat(), e.note) for e in entries] == [
        ("专项支持", 200_000, "2026-06-01", "盾构专项"),
        ("专项攻关", 50_000, "2026-06-20", ""),
    ]
