"""Real processes: two ``alliance-bot serve`` on one database send every reminder exactly once; the CLI's JSON
contracts for events and reminders.

These tests start real processes, so they wait for them (polling the database, bounded); they never rely on
timing for correctness.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.services.studios import load_roster
from bot.store import Store
from bot.store.activities import Activity, ActivityReminder, ActivityRepo, ReminderStatus
from bot.store.outbox import OutboxMessage
from tests.harness import EXAMPLE_ROSTER
from tests.processes import clean_env, free_port

ALLIANCES = ("bridge", "tunnel", "urban", "power")


async def seed(url: str, now: datetime) -> tuple[list[int], int, list[int]]:
    """Events with reminders already due (event still ahead), one due soon, and one whose event started."""
    store = await Store.open(url)
    try:
        await store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        repo = ActivityRepo(store.sessions)
        reminders: list[ActivityReminder] = []
        for n in range(60):
            activity = await repo.create(
                Activity(
                    type="讲座",
                    title=f"讲座 {n}",
                    alliance_id=ALLIANCES[n % 4],
                    start=now + timedelta(days=2, minutes=n),
                    organizer="seed",
                )
            )
            assert activity.id is not None
            reminders.append(
                ActivityReminder(
                    activity_id=activity.id,
                    kind="group:1d",
                    target=f"alliance:{activity.alliance_id}",
                    due=now - timedelta(seconds=30),
                )
            )
            due = now + timedelta(seconds=6) if n % 10 == 0 else now - timedelta(seconds=20)
            reminders.append(
                ActivityReminder(activity_id=activity.id, kind="attendee:1d", target=f"user:u{n}", due=due)
            )
        started = await repo.create(
            Activity(
                type="会议",
                title="已开始的会议",
                alliance_id="tunnel",
                start=now - timedelta(minutes=5),
                organizer="seed",
            )
        )
        assert started.id is not None
        reminders.append(
            ActivityReminder(
                activity_id=started.id, kind="group:2h", target="alliance:tunnel", due=now - timedelta(hours=2)
            )
        )
        await repo.add_reminders(reminders)
        rows = await repo.pending_reminders()
        soon = [r.id for r in rows if r.due > now and r.id is not None]
        return [r.id for r in rows if r.id is not None], started.id, soon
    finally:
        await store.close()


SWEEP = 600  # the interval sweep's period in these processes: only the armed date job fires on time


async def start_serve(tmp_path: Path, url: str, name: str) -> asyncio.subprocess.Process:
    workdir = tmp_path / name
    workdir.mkdir()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=workdir,
        env=clean_env(
            BOT_PORT=str(free_port()), BOT_DATABASE_URL=url, BOT_REMINDER_SWEEP_SECONDS=str(SWEEP)
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return process


@pytest.fixture
async def processes(tmp_path: Path, database_url: str) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                process.terminate()
        for process in started:
            await asyncio.wait_for(process.wait(), timeout=30)


async def test_two_processes_send_each_reminder_once(
    tmp_path: Path, database_url: str, processes: list[asyncio.subprocess.Process]
) -> None:
    now = datetime.now(UTC)
    ids, started_event, soon = await seed(database_url, now)
    assert len(ids) == 121 and len(soon) == 6
    for name in ("a", "b"):
        processes.append(await start_serve(tmp_path, database_url, name))
    for process in processes:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        assert "serving on" in banner
    ready = datetime.now(UTC)  # a loaded machine may take longer to start than the 6 s to the first due time

    store = await Store.open(database_url, migrate=False)
    try:
        repo = ActivityRepo(store.sessions)
        deadline = asyncio.get_running_loop().time() + 60
        while await repo.pending_reminders():
            assert asyncio.get_running_loop().time() < deadline, "reminders still pending after 60 s"
            await asyncio.sleep(0.2)
        async with store.sessions() as session:
            rows = list((await session.exec(select(ActivityReminder))).all())
            outbox = dict(
                (
                    await session.exec(
                        select(OutboxMessage.dedupe_key, func.count())
                        .where(col(OutboxMessage.dedupe_key).like("reminder:%"))
                        .group_by(col(OutboxMessage.dedupe_key))
                    )
                ).all()
            )
    finally:
        await store.close()

    by_id = {r.id: r for r in rows}
    assert set(by_id) == set(ids)
    (late,) = [r for r in rows if r.activity_id == started_event]
    assert late.status == ReminderStatus.DROPPED.value
    sent = [r for r in rows if r.activity_id != started_event]
    assert {r.status for r in sent} == {ReminderStatus.SENT.value}
    assert {r.attempts for r in rows} == {1}  # every reminder was claimed by exactly one process
    # exactly one outbox message per reminder (an announcement's key is "reminder:ID|target")
    per_reminder: dict[int, int] = {}
    for key, count in outbox.items():
        match = re.fullmatch(r"reminder:(\d+)(\|.*)?", key or "")
        assert match is not None
        per_reminder[int(match.group(1))] = per_reminder.get(int(match.group(1)), 0) + count
    assert per_reminder == {r.id: 1 for r in sent}
    # the reminders that fell due after start-up were fired by the date job armed at their due time: the
    # interval sweep runs every SWEEP seconds here, so it cannot have sent them within the minute (the slack is
    # for a loaded machine; one that fell due while the processes were still starting fires when they are up)
    for reminder_id in soon:
        reminder = by_id[reminder_id]
        assert reminder.finished_at is not None
        due = max(reminder.due.replace(tzinfo=UTC) if reminder.due.tzinfo is None else reminder.due, ready)
        finished = reminder.finished_at
        finished = finished.replace(tzinfo=UTC) if finished.tzinfo is None else finished
        assert finished - due < timedelta(seconds=60) < timedelta(seconds=SWEEP)
    workers = {r.claimed_by for r in rows}
    assert len(workers) in (1, 2)


def run_cli(args: list[str], cwd: Path, *, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(**env),
        check=False,
    )


def test_cli_json_contracts(tmp_path: Path) -> None:
    assert run_cli(["studios", "import", str(EXAMPLE_ROSTER)], tmp_path).returncode == 0
    added = run_cli(
        ["chat", "--user", "mushandong"],
        tmp_path,
        stdin="/活动 添加 讲座 2030-12-05 09:30 盾构施工新技术 地点 郑州 名额 30\n/活动 添加 年会 2030-12-20 9:00 年会\n",
    )
    assert "已添加活动 #1" in added.stdout and "2030年12月5日（星期四）09:30" in added.stdout, added.stderr
    assert "报名成功" in run_cli(["chat", "--user", "u1"], tmp_path, stdin="/报名 1\n").stdout

    result = run_cli(["events", "list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    activities = json.loads(result.stdout)
    assert activities[0] == {
        "id": 1,
        "type": "讲座",
        "title": "盾构施工新技术",
        "alliance": "tunnel",
        "start": "2030-12-05T09:30:00+08:00",
        "place": "郑州",
        "capacity": 30,
        "attendees": 1,
    }
    assert [e["id"] for e in activities] == [1, 2] and activities[1]["capacity"] is None

    result = run_cli(["reminders", "list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    reminders = json.loads(result.stdout)
    assert reminders[0] == {
        "event_id": 1,
        "kind": "group:7d",
        "due": "2030-11-28T09:30:00+08:00",
        "target": "alliance:tunnel",
    }
    assert {
        "event_id": 1,
        "kind": "attendee:1d",
        "due": "2030-12-04T09:30:00+08:00",
        "target": "user:u1",
    } in (reminders)
    assert [r["due"] for r in reminders] == sorted(r["due"] for r in reminders)
    assert len(reminders) == 7

    # UTC configured: the same instants, with the configured offset
    utc = json.loads(run_cli(["events", "list", "--json"], tmp_path, BOT_TIMEZONE="UTC").stdout)
    assert utc[0]["start"] == "2030-12-05T01:30:00+00:00"
    text = run_cli(["events", "list"], tmp_path).stdout
    assert "2030-12-05T09:30:00+08:00" in text and "1/30" in text
    jobs = run_cli(["jobs"], tmp_path).stdout
    assert "联盟周报" in jobs and "接下来的提醒：" in jobs
