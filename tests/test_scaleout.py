"""Scale-out on PostgreSQL: several real ``alliance-bot serve`` processes on one database and one fake WeCom.

Checked across processes: a callback delivered to both is acted on once (shared deduplication), one access
token is fetched for all of them, every outbox message is delivered exactly once while both workers run, and
an exclusive scheduled job fires once. Reminders firing once are checked in ``test_reminders_processes``.
The fake WeCom listens on one port per process, so each recorded call shows which process made it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.core.messages import Outbound, Target, TargetKind
from bot.core.outbox import Outbox
from bot.store import Store
from bot.store.activities import Activity
from bot.store.dedupe import ProcessedMessage
from bot.store.jobs import JobRun
from bot.store.outbox import OutboxMessage
from tests.fake_wecom import Recorded, aibot_text, app_text
from tests.harness import PG_URL, POSTGRES, ROOT, fresh_postgres_database
from tests.probe_job import ESCALATE, LAUNCHER, PROBES
from tests.processes import (
    LEADS,
    RoutedFake,
    ServeProcess,
    announcing_roster,
    prepare_database,
    tracebacks,
    until,
    wecom_env,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason=f"scale-out runs on PostgreSQL: {POSTGRES.reason}"),
]


@dataclass
class Cluster:
    """Bot processes on one PostgreSQL database, the fake WeCom they call, and an HTTP client."""

    url: str
    fake: RoutedFake
    processes: list[ServeProcess]
    http: aiohttp.ClientSession

    async def scalar(self, statement: Any) -> Any:
        """One value from the shared database."""
        store = await Store.open(self.url, migrate=False)
        try:
            async with store.sessions() as session:
                return (await session.exec(statement)).one()
        finally:
            await store.close()

    async def events_titled(self, title: str) -> int:
        """How many calendar events have this title."""
        return int(
            await self.scalar(
                select(func.count()).select_from(Activity).where(col(Activity.title) == title)
            )
        )

    async def outbox_settled(self) -> bool:
        """Nothing left to deliver (pending) and nothing given up on."""
        counts = dict(
            await _all(
                self.url,
                select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status)),
            )
        )
        assert counts.get("failed", 0) == 0, counts
        return counts.get("pending", 0) == 0


async def _all(url: str, statement: Any) -> list[Any]:
    store = await Store.open(url, migrate=False)
    try:
        async with store.sessions() as session:
            return list((await session.exec(statement)).all())
    finally:
        await store.close()


def content(recorded: Recorded) -> str:
    """The text of a recorded message send."""
    body = recorded.body if isinstance(recorded.body, dict) else {}
    part = body.get("text") or body.get("markdown") or {}
    return str(part.get("content", ""))


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@asynccontextmanager
async def _cluster(
    tmp_path: Path, url: str, count: int, *, launcher: bool = False, **extra: str
) -> AsyncIterator[Cluster]:
    await prepare_database(url, announcing_roster(tmp_path))
    fake = RoutedFake()
    bases = await fake.start_ports(count)
    processes = []
    for index, base in enumerate(bases):
        env = wecom_env(url, base, **extra)
        if launcher:
            env["PYTHONPATH"] = str(ROOT)
        processes.append(
            ServeProcess(
                f"bot{index}", tmp_path / f"bot{index}", env, module=LAUNCHER if launcher else ("-m", "bot")
            )
        )
    try:
        await asyncio.gather(*(p.start() for p in processes))
        async with aiohttp.ClientSession() as http:
            yield Cluster(url, fake, processes, http)
    finally:
        await asyncio.gather(*(p.stop() for p in processes))
        await fake.close()
    for process in processes:
        assert tracebacks(process.log()) == [], f"{process.name} logged a traceback"


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    async with _cluster(tmp_path, postgres_url, 2) as running:
        yield running


async def test_a_callback_delivered_to_both_processes_is_acted_on_once(cluster: Cluster) -> None:
    # WeCom retries a callback it got no timely answer for; behind a load balancer the retry (or a duplicate
    # delivery) may reach another process while the first is still handling it.
    (aibot_a, app_a), (aibot_b, app_b) = (p.callbacks(cluster.http) for p in cluster.processes)
    aibot_title, app_title = f"去重-群-{uuid.uuid4().hex[:6]}", f"去重-应用-{uuid.uuid4().hex[:6]}"
    aibot_msg = aibot_text(
        f"@联盟助手 /活动 添加 讲座 2030-12-05 09:30 {aibot_title}",
        user=LEADS["tunnel"],
        msg_id="dup-aibot-1",
    )
    aibot_call = aibot_a.aibot_body(aibot_msg)
    app_call = app_a.app_body(
        app_text(f"/活动 添加 讲座 2030-12-06 09:30 {app_title}", user=LEADS["urban"], msg_id="7000000001")
    )
    answers = await asyncio.gather(
        *(client.post_raw(*aibot_call) for client in (aibot_a, aibot_b, aibot_a, aibot_b)),
        *(client.post_raw(*app_call) for client in (app_a, app_b, app_a, app_b)),
    )
    # a copy that arrives while another is being handled gets 503 (WeCom tries it again later); the others 200
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503} and 200 in statuses[:4] and 200 in statuses[4:], statuses
    replies = [
        _shown(aibot_a.open_aibot_reply(text))
        for status, text, _ in answers[:4]
        if status == 200 and text
    ]
    assert any("已添加活动" in r for r in replies), replies  # the delivery that acted answers with its result
    app_replies = [
        app_a.open_app_reply(text)["Content"] for status, text, _ in answers[4:] if status == 200 and text
    ]
    assert any("已添加活动" in r for r in app_replies), app_replies  # later copies get the same answer

    assert await cluster.events_titled(aibot_title) == 1
    assert await cluster.events_titled(app_title) == 1
    keys = set(await _all(cluster.url, select(ProcessedMessage.key)))
    assert {"aibot:dup-aibot-1", "app:7000000001"} <= keys
    # each announcement went out once, to each of the alliance's two groups
    await until(cluster.outbox_settled, within=30, what="announcements delivered")
    for title in (aibot_title, app_title):
        assert len([r for r in cluster.fake.sends() if title in content(r)]) == 2, title


async def test_one_access_token_is_fetched_for_all_processes(cluster: Cluster) -> None:
    clients = [p.callbacks(cluster.http)[1] for p in cluster.processes]
    ports = [RoutedFake.port_of(base) for base in _bases(cluster)]
    alliances = list(LEADS)
    round_ = 0

    async def both_sent() -> bool:
        # each process announces what it was told to add at once (its outbox worker is woken locally), so
        # a few rounds make both of them call appchat/send, which needs the token
        nonlocal round_
        calls = []
        for index, client in enumerate(clients):
            alliance = alliances[(2 * round_ + index) % len(alliances)]
            text = f"/活动 添加 讲座 2030-12-0{1 + round_ % 9} 10:00 令牌-{round_}-{index}"
            calls.append(client.post_raw(*client.app_body(app_text(text, user=LEADS[alliance]))))
        statuses = [status for status, _, _ in await asyncio.gather(*calls)]  # both at once: a token race
        assert statuses == [200, 200]
        round_ += 1
        await until(cluster.outbox_settled, within=30, what="announcements delivered")
        senders = {r.port for r in cluster.fake.delivered("/cgi-bin/appchat/send")}
        return senders == set(ports)

    await until(both_sent, within=60, what="both processes sending through appchat/send", every=0)
    assert round_ <= 10
    assert cluster.fake.token_fetches == 1
    tokens = {r.query["access_token"] for r in cluster.fake.delivered("/cgi-bin/appchat/send")}
    assert len(tokens) == 1


def _bases(cluster: Cluster) -> list[str]:
    return [p.env["BOT_WECOM_API_BASE"] for p in cluster.processes]


async def test_every_outbox_message_is_delivered_once_by_two_workers(cluster: Cluster) -> None:
    n = 200
    # each send takes 20 ms, so one worker alone would need 4 s: the other one (polling every second) joins in
    cluster.fake.slow_next(0.02, path="/cgi-bin/message/send", times=n)
    store = await Store.open(cluster.url, migrate=False)
    try:
        outbox = Outbox(store, now=lambda: datetime.now(UTC))
        messages = [Outbound(Target(TargetKind.USER, f"user{i:03d}"), f"第 {i} 条通知") for i in range(n)]
        for start in range(0, n, 50):
            assert await outbox.send(*messages[start : start + 50]) == 50
    finally:
        await store.close()
    await until(cluster.outbox_settled, within=60, what=f"{n} messages delivered")

    sends = cluster.fake.delivered("/cgi-bin/message/send")
    delivered = Counter((r.body["touser"], content(r)) for r in sends)
    assert len(delivered) == n
    assert set(delivered.values()) == {1}, [k for k, v in delivered.items() if v > 1]
    by_port = Counter(r.port for r in sends)
    assert set(by_port) == {RoutedFake.port_of(b) for b in _bases(cluster)}, by_port  # both workers delivered
    sent = await cluster.scalar(
        select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.attempts) == 1)
    )
    assert sent == n


async def test_an_exclusive_job_fires_once_across_processes(tmp_path: Path, postgres_url: str) -> None:
    fire_at = time.time() + 8  # both processes are up by then (they start in about 2 s)
    async with _cluster(tmp_path, postgres_url, 3, launcher=True, PROBE_JOBS_AT=str(fire_at)) as cluster:

        async def all_fired() -> bool:
            return all(p.log().count("probe fired") == len(PROBES) for p in cluster.processes)

        await until(all_fired, within=40, what="every process's scheduler firing every probe")
        await until(cluster.outbox_settled, within=30, what="probe messages delivered")
        runs = await _all(postgres_url, select(JobRun).where(col(JobRun.name).in_(PROBES)))
        assert sorted(r.name for r in runs) == sorted(PROBES)
        assert {r.outcome for r in runs} == {"ok"}
        probes = [r for r in cluster.fake.delivered("/cgi-bin/message/send") if "探针任务执行" in content(r)]
        assert len(probes) == len(PROBES)
        assert [r.body["touser"] for r in probes] == ["admin1"] * len(PROBES)


PROBLEMS = (
    "盾构始发时土压波动大，怎么调掘进参数？（{i}）",
    "连续梁悬臂浇筑线形偏差超标，如何调整立模标高？（{i}）",
    "地铁车站深基坑支撑轴力报警，该怎么处置？（{i}）",
    "接触网吊弦断裂频繁，可能是什么原因？（{i}）",
)


async def test_each_problem_is_escalated_once_when_every_process_sweeps_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    # The escalation job is exclusive; beneath that, each problem's escalation is a conditional update, so
    # even sweeps running in every process at the same instant escalate each problem once.
    now = time.time()
    sweep_at = now + 25  # three processes start and eight problems are logged well before
    if sweep_at % 600 < 30 or sweep_at % 600 > 580:  # keep clear of the regular */10 min escalation job
        sweep_at += 60
    env = {"PROBE_JOBS_AT": str(now + 3600), "PROBE_ESCALATE_AT": str(sweep_at), "BOT_CLAIM_HOURS": "0.001"}
    async with _cluster(tmp_path, postgres_url, 3, launcher=True, **env) as cluster:
        _, app = cluster.processes[0].callbacks(cluster.http)
        for i in range(8):
            text = "/提问 " + PROBLEMS[i % len(PROBLEMS)].format(i=i)
            status, reply, _ = await app.post_raw(*app.app_body(app_text(text, user=f"member{i}")))
            assert status == 200 and "已登记技术问题" in app.open_app_reply(reply)["Content"], reply
        assert time.time() < sweep_at - 4  # logged, and due (3.6 s unclaimed) by the time of the sweep

        async def all_swept() -> bool:
            return all(f"probe fired: {ESCALATE}" in p.log() for p in cluster.processes)

        try:
            await until(all_swept, within=60, what="every process running the escalation sweep")
        except AssertionError:
            tails = "\n---\n".join(p.log()[-2000:] for p in cluster.processes)
            raise AssertionError(f"not every process swept:\n{tails}") from None
        await until(cluster.outbox_settled, within=30, what="escalation notices delivered")
        keys = await _all(
            postgres_url,
            select(OutboxMessage.dedupe_key).where(
                col(OutboxMessage.dedupe_key).like("problem:%:escalated:%")
            ),
        )
        per_problem_lead = Counter(":".join(key.split(":")[:4]) for key in keys)
        assert len({k.split(":")[1] for k in per_problem_lead}) == 8, (
            per_problem_lead
        )  # every problem escalated
        assert set(per_problem_lead.values()) == {1}, per_problem_lead  # by one process only


def _shown(reply: dict[str, Any]) -> str:
    """What an AI-bot passive reply shows: a stream's content, or a card's text (a reply offering /报名 N)."""
    if reply.get("msgtype") == "template_card":
        return str(reply["template_card"]["sub_title_text"])
    return str(reply["stream"]["content"])
