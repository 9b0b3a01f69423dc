"""The outbox delivering through the WeCom senders: pacing to the platform limits, restarts, /outbox and CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import BotApp
from bot.channels.console import run_console
from bot.channels.wecom.client import WeComClient
from bot.core.clock import ManualClock
from bot.core.messages import Outbound, Target, TargetKind
from bot.core.outbox import OutboxWorker
from bot.services.studios import load_roster
from bot.store.outbox import OutboxStatus, RateLimit
from tests.fake_wecom import (
    ADMIN,
    APPCHAT_ID,
    WEBHOOK_KEY,
    FakeWeCom,
    deliver_due,
    roster_with_announce,
    wecom_settings,
)

HOOK = "/cgi-bin/webhook/send"
SEND = "/cgi-bin/message/send"
APPCHAT = "/cgi-bin/appchat/send"


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeWeCom]:
    """A running fake WeCom API (enforcing 20/min per robot by the test clock)."""
    server = await FakeWeCom(now=clock.now).start()
    try:
        yield server
    finally:
        await server.close()


async def _bot(database_url: str, fake: FakeWeCom, clock: ManualClock, tmp_path: Path) -> BotApp:
    bot = await BotApp.create(wecom_settings(database_url, fake.url), clock=clock)
    await bot.store.studios.import_roster(load_roster(roster_with_announce(tmp_path)))
    bot.runtime.feature(WeComClient).backoff = 0.01
    return bot


@pytest.fixture
async def bot(
    database_url: str, fake: FakeWeCom, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[BotApp]:
    """A bot (not serving: the test runs the outbox worker) whose senders talk to the fake."""
    app = await _bot(database_url, fake, clock, tmp_path)
    try:
        yield app
    finally:
        await app.close()


def _max_in_window(times: list[datetime], window: timedelta = timedelta(seconds=60)) -> int:
    return max((sum(1 for u in times if t - window < u <= t) for t in times), default=0)


async def test_a_burst_of_100_announcements_is_paced_to_the_robot_limit(
    bot: BotApp, fake: FakeWeCom, clock: ManualClock
) -> None:
    for i in range(100):
        await bot.runtime.outbox.announce("tunnel", f"公告 {i:03d}", dedupe_key=f"burst-{i}")
    await bot.runtime.outbox.notify_user("chenjuejin", "请认领问题 #1")  # queued behind the burst
    assert bot.worker is not None
    passes = 0
    started = clock.now()
    while (await bot.store.outbox.counts()).get(OutboxStatus.PENDING.value):
        await bot.worker.run_once()
        passes += 1
        if passes == 1:
            assert len(fake.delivered(SEND)) == 1  # other targets are not held up by the backlog
        clock.advance(seconds=10)
        assert passes < 100
    hooks = fake.delivered(HOOK)
    texts = [r.body["markdown"]["content"] for r in hooks]
    assert texts == [f"公告 {i:03d}" for i in range(100)]  # each once, in order
    assert {r.query["key"] for r in hooks} == {WEBHOOK_KEY}
    assert _max_in_window([r.at for r in hooks]) == 20
    assert not [r for r in fake.calls(HOOK) if r.answer and r.answer["errcode"] == 45009]
    assert clock.now() - started >= timedelta(minutes=4)  # 100 at 20/min: five windows
    chats = fake.delivered(APPCHAT)
    assert [r.body["chatid"] for r in chats] == [APPCHAT_ID] * 100
    assert _max_in_window([r.at for r in chats]) == 30
    rows = await bot.store.outbox.listing(statuses=(OutboxStatus.SENT.value,), limit=1000)
    assert len(rows) == 201
    assert {r.attempts for r in rows} == {1}  # waiting for a slot is not a failed attempt


async def test_two_processes_share_the_robot_budget(
    database_url: str, fake: FakeWeCom, clock: ManualClock, tmp_path: Path
) -> None:
    first = await _bot(database_url, fake, clock, tmp_path)
    second = await _bot(database_url, fake, clock, tmp_path)
    try:
        target = Target(TargetKind.WEBHOOK, WEBHOOK_KEY)
        await first.runtime.outbox.send(*(Outbound(target, f"群消息 {i}") for i in range(50)))
        assert first.worker is not None and second.worker is not None
        for _ in range(3):
            await asyncio.gather(first.worker.run_once(), second.worker.run_once())
            clock.advance(seconds=60)
        texts = Counter(r.body["markdown"]["content"] for r in fake.delivered(HOOK))
        assert len(texts) == 50 and set(texts.values()) == {1}
        assert _max_in_window([r.at for r in fake.delivered(HOOK)]) == 20
    finally:
        await first.close()
        await second.close()


async def test_restart_with_messages_in_the_outbox_loses_nothing_and_repeats_nothing(
    database_url: str, fake: FakeWeCom, clock: ManualClock, tmp_path: Path
) -> None:
    first = await _bot(database_url, fake, clock, tmp_path)
    for i in range(12):  # to one lead: delivered in order, one at a time
        await first.runtime.outbox.notify_user("lead", f"私信 {i}")
    for i in range(8):
        await first.runtime.outbox.send(Outbound(Target(TargetKind.WEBHOOK, WEBHOOK_KEY), f"群 {i}"))
    # the serving process: its worker is stopped (shutdown) while a slow message is in flight
    fake.slow_next(0.3, path=SEND, times=100)
    await first.start(scheduler=False)
    await asyncio.sleep(0.4)
    await first.close()  # stops the worker: the message in flight is recorded, the rest handed back
    sent_before = Counter(r.body["text"]["content"] for r in fake.delivered(SEND))
    assert 1 <= sum(sent_before.values()) < 12
    # a process that crashed holding a lease on some messages (never sent them)
    crashed = await _bot(database_url, fake, clock, tmp_path)
    leased = await crashed.store.outbox.claim_due(clock.now(), limit=3)
    assert len(leased) == 3
    await crashed.store.close()  # gone without a word

    fake._faults.clear()
    restarted = await _bot(database_url, fake, clock, tmp_path)
    try:
        await deliver_due(restarted, wait_for_leased=False)
        assert len(fake.delivered(SEND)) + len(fake.delivered(HOOK)) == 17  # all but the crashed one's three
        clock.advance(seconds=61)  # the crashed process's lease runs out
        await deliver_due(restarted)
    finally:
        await restarted.close()
    users = Counter(r.body["text"]["content"] for r in fake.delivered(SEND))
    hooks = Counter(r.body["markdown"]["content"] for r in fake.delivered(HOOK))
    assert users == Counter(f"私信 {i}" for i in range(12))  # each exactly once
    assert hooks == Counter(f"群 {i}" for i in range(8))


async def test_console_shows_the_same_outbound_messages(bot: BotApp) -> None:
    await bot.runtime.outbox.announce("tunnel", "明天下午三点 盾构新技术讲座")
    out = io.StringIO()
    await run_console(bot, user_id=ADMIN, stdin=io.StringIO("/发件箱\n"), out=out)
    text = out.getvalue()
    assert "发件箱：待发送 2 条" in text
    assert f"[群机器人 → {WEBHOOK_KEY}]" in text
    assert f"[应用群聊 → {APPCHAT_ID}]" in text
    assert "盾构新技术讲座" in text


async def test_outbox_command_for_admins(bot: BotApp) -> None:
    assert "发件箱是空的" in await _say_without_delivery(bot, ADMIN, "/outbox")
    await bot.runtime.outbox.notify_user("someone", "待发的私信")
    await bot.runtime.outbox.send(Outbound(Target(TargetKind.WEBHOOK, WEBHOOK_KEY), "群通知"))
    reply = await _say_without_delivery(bot, ADMIN, "/发件箱")
    assert "待发送 2 条" in reply
    assert "私信 someone" in reply and "群机器人 hook…" in reply
    assert WEBHOOK_KEY not in reply  # the key is a secret; a group may see this
    assert "管理员" in await _say_without_delivery(bot, "zhangsan", "/outbox")


async def _say_without_delivery(bot: BotApp, user: str, text: str) -> str:
    from bot.core.messages import Event

    reply = await bot.handle(
        Event(
            channel="test", user_id=user, text=text, received_at=bot.clock.now(), msg_id=os.urandom(6).hex()
        )
    )
    return reply.text if reply else ""


def test_outbox_cli_lists_pending_and_failed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    db = tmp_path / "bot.db"
    env["BOT_DATABASE_URL"] = f"sqlite:///{db}"
    script = (
        "import asyncio\n"
        "from datetime import UTC, datetime\n"
        "from bot.store import Store\n"
        "from bot.store.outbox import OutboxMessage\n"
        "async def main():\n"
        f"    store = await Store.open('sqlite+aiosqlite:///{db}')\n"
        "    now = datetime.now(UTC)\n"
        "    await store.outbox.add([\n"
        "        OutboxMessage(target_kind='user', target='chenjuejin', text='请认领问题', created_at=now, next_attempt_at=now),\n"
        "        OutboxMessage(target_kind='webhook', target='secretkey123', text='群公告', created_at=now, next_attempt_at=now,\n"
        "                      status='failed', attempts=8, last_error='webhook: WeCom error 93000'),\n"
        "    ])\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=60)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "outbox"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "待发送 1 条，发送失败 1 条" in result.stdout
    assert "user:chenjuejin" in result.stdout and "请认领问题" in result.stdout
    assert "webhook:secr…" in result.stdout and "secretkey123" not in result.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "bot", "outbox", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    rows = json.loads(as_json.stdout)
    assert [(r["status"], r["target_kind"]) for r in rows] == [("pending", "user"), ("failed", "webhook")]


async def test_each_alliance_announces_to_the_groups_its_roster_entry_names(
    bot: BotApp, fake: FakeWeCom, tmp_path: Path
) -> None:
    import yaml

    from bot.services.studios import parse_roster

    data = yaml.safe_load(roster_with_announce(tmp_path).read_text(encoding="utf-8"))
    for alliance in data["alliances"]:
        if alliance["id"] == "bridge":
            alliance["announce"] = {"webhooks": ["hook-bridge-1", "hook-bridge-2"]}
        if alliance["id"] == "urban":
            alliance["announce"] = {"appchats": ["wrchat-urban"]}
    await bot.store.studios.import_roster(parse_roster(data))

    await bot.runtime.outbox.announce("tunnel", "隧道联盟通知")
    await bot.runtime.outbox.announce("bridge", "桥梁联盟通知")
    await bot.runtime.outbox.announce("urban", "城轨联盟通知")
    await bot.runtime.outbox.announce("power", "电力联盟通知")  # no announce entry in the roster
    await deliver_due(bot)

    hooks = {(r.query["key"], r.body["markdown"]["content"]) for r in fake.delivered(HOOK)}
    assert hooks == {
        (WEBHOOK_KEY, "隧道联盟通知"),
        ("hook-bridge-1", "桥梁联盟通知"),
        ("hook-bridge-2", "桥梁联盟通知"),
    }
    chats = {(r.body["chatid"], r.body["text"]["content"]) for r in fake.delivered(APPCHAT)}
    assert chats == {(APPCHAT_ID, "隧道联盟通知"), ("wrchat-urban", "城轨联盟通知")}
    # an alliance with nowhere to announce is not silently dropped: it shows as failed in /outbox
    [failed] = await bot.store.outbox.listing(statuses=(OutboxStatus.FAILED.value,))
    assert failed.text == "电力联盟通知" and failed.target_kind == TargetKind.CONSOLE.value
    assert "电力联盟通知" in await _say_without_delivery(bot, ADMIN, "/outbox")


async def test_personal_messages_are_paced_per_member(
    bot: BotApp, fake: FakeWeCom, clock: ManualClock
) -> None:
    for i in range(45):
        await bot.runtime.outbox.notify_user("chenjuejin", f"请认领问题 #{i}")
    await bot.runtime.outbox.notify_user("mushandong", "另一位负责人")
    assert bot.worker is not None
    await bot.worker.run_once()
    to = Counter(r.body["touser"] for r in fake.delivered(SEND))
    assert to == {"chenjuejin": 30, "mushandong": 1}  # one member's limit does not hold up another
    clock.advance(seconds=30)
    await bot.worker.run_once()
    assert len(fake.delivered(SEND)) == 31  # the window has not moved on yet
    clock.advance(seconds=31)
    await deliver_due(bot)
    texts = [r.body["text"]["content"] for r in fake.delivered(SEND) if r.body["touser"] == "chenjuejin"]
    assert texts == [f"请认领问题 #{i}" for i in range(45)]
    assert _max_in_window([r.at for r in fake.delivered(SEND) if r.body["touser"] == "chenjuejin"]) == 30


async def test_one_slow_target_does_not_hold_up_the_others(bot: BotApp) -> None:
    """Messages to one target go in order, one at a time; other targets are served meanwhile."""
    release = asyncio.Event()
    log: list[str] = []

    class GatedSender:
        async def send(self, target: Target, text: str) -> None:
            log.append(f"start {target.address} {text}")
            if target.address == "slow":
                await release.wait()
            log.append(f"done {target.address} {text}")

    worker = OutboxWorker(bot.store, {TargetKind.USER: GatedSender()}, now=bot.clock.now)
    await bot.runtime.outbox.notify_user("slow", "一")
    await bot.runtime.outbox.notify_user("slow", "二")
    await bot.runtime.outbox.notify_user("fast", "三")
    run = asyncio.create_task(worker.run_once())
    for _ in range(200):
        if "done fast 三" in log:
            break
        await asyncio.sleep(0.01)
    assert "done fast 三" in log and "start slow 二" not in log  # fast went while slow's first was stuck
    release.set()
    assert await asyncio.wait_for(run, 10) == 3
    slow = [entry for entry in log if " slow " in entry]
    assert slow == ["start slow 一", "done slow 一", "start slow 二", "done slow 二"]


async def test_a_window_that_frees_up_during_a_pass_is_used(bot: BotApp) -> None:
    """A worker pass that goes on (new messages keep coming) sends again once a paced target's window frees."""
    sent: list[str] = []

    class Sender:
        limits = (RateLimit(2, 60),)

        async def send(self, target: Target, text: str) -> None:
            sent.append(text)
            if text == "o1":  # a minute passes while the pass goes on, and another message comes in
                bot.clock.advance(seconds=61)
                await bot.runtime.outbox.notify_user("lead", "m3")

    class Unpaced(Sender):
        limits = ()

    outbox = bot.runtime.outbox
    worker = OutboxWorker(
        bot.store, {TargetKind.USER: Sender(), TargetKind.WEBHOOK: Unpaced()}, now=bot.clock.now
    )
    for i in range(3):
        await outbox.notify_user("lead", f"m{i}")
    await asyncio.wait_for(worker.run_once(), 10)
    assert sent == ["m0", "m1"]  # m2 waits for the window
    bot.clock.advance(seconds=1)
    await outbox.notify_user("lead", "m5")  # saturated at once in the next pass…
    await outbox.send(Outbound(Target(TargetKind.WEBHOOK, "other"), "o1"))  # …which this keeps going
    await asyncio.wait_for(worker.run_once(), 10)
    assert sent == ["m0", "m1", "o1", "m2", "m5"]  # m3 waits for the next window


async def test_a_send_found_in_flight_is_marked_and_a_person_gets_it_once(
    bot: BotApp, fake: FakeWeCom, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """What a worker killed while waiting for WeCom's answer leaves behind: its messages leased and marked in
    flight, and WeCom having acted on the send. The worker that takes them over once the lease runs out counts
    each in doubt and sends it again; WeCom's duplicate check on message/send keeps the person from getting
    it twice. (The real kill: tests/test_faults.py.)"""
    await bot.runtime.outbox.notify_user("chenjuejin", "请认领问题 #7")
    (claimed,) = await bot.store.outbox.claim_due(clock.now(), limit=10, lease=timedelta(seconds=60))
    assert claimed.id is not None and claimed.sending_since is None
    await bot.store.outbox.mark_sending(claimed.id, clock.now())
    assert bot.worker is not None
    await bot.worker._senders[TargetKind.USER].send(Target(TargetKind.USER, "chenjuejin"), claimed.text)
    assert len(fake.delivered(SEND)) == 1  # WeCom delivered it; the dead worker never recorded that
    clock.advance(seconds=30)
    assert await bot.worker.run_once() == 0  # still leased to the dead worker
    clock.advance(seconds=90)
    with caplog.at_level("WARNING"):
        await deliver_due(bot)
    assert f"outbox message {claimed.id} to user was in flight when its worker stopped" in caplog.text
    (row,) = await bot.store.outbox.listing([OutboxStatus.SENT])
    assert (row.in_doubt, row.sending_since, row.attempts) == (1, None, 1)
    calls = [r for r in fake.calls(SEND) if r.body["text"]["content"] == "请认领问题 #7"]
    assert len(calls) == 2 and [r.repeat for r in calls] == [False, True]
    assert all(r.body["enable_duplicate_check"] == 1 for r in calls)
    assert len(fake.delivered(SEND)) == 1  # the person got it once


async def test_a_send_recorded_normally_is_never_in_doubt(bot: BotApp, fake: FakeWeCom) -> None:
    await bot.runtime.outbox.notify_user("chenjuejin", "请认领问题 #8")
    await bot.runtime.outbox.announce("tunnel", "【新活动】讲座「盾构施工新技术」")
    await deliver_due(bot)
    rows = await bot.store.outbox.listing([OutboxStatus.SENT])
    assert len(rows) >= 2 and all(r.in_doubt == 0 and r.sending_since is None for r in rows)
