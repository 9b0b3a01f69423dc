"""Exactly-once handling: a message's effects, its outbound messages and its "done" mark commit together.

Each test injects a fault where the old design split a message over several transactions (a commit that
fails after the effects, a handler that fails half-way, a process that dies after answering "later", two
first messages of a new user at two processes) and checks what is on record afterwards — on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.core.delivery import Delivery
from bot.core.dispatcher import Context, Router
from bot.core.messages import Event, Target, TargetKind
from bot.core.middleware import APOLOGY, ServiceUnavailable
from bot.services.studios import load_roster
from bot.settings import Settings
from bot.store.achievements import Award
from bot.store.dedupe import CLAIM_LEASE, RECOVERY_AFTER
from bot.store.studios import Member
from bot.store.topics import Topic
from tests.conftest import ADMIN
from tests.harness import EXAMPLE_ROSTER, Chat

TUNNEL_LEAD = "mushandong"
T1_LEAD = "chenjuejin"


def event(
    text_: str, msg_id: str, *, user: str = TUNNEL_LEAD, at: Any = None, channel: str = "test"
) -> Event:
    return Event(channel=channel, user_id=user, text=text_, received_at=at, msg_id=msg_id)


async def count(bot: BotApp, model: Any) -> int:
    async with bot.store.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one()[0])


class FailOnce:
    """Make ``DedupeRepo.finish`` (the last write of a message's transaction) fail once, as a database that
    drops at the worst moment would."""

    def __init__(self, bot: BotApp) -> None:
        self.repo = bot.store.dedupe
        self.real = self.repo.finish
        self.failed = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> bool:
        if not self.failed:
            self.failed += 1
            raise OperationalError("UPDATE processed_message", {}, ConnectionResetError("connection lost"))
        return await self.real(*args, **kwargs)


async def test_a_commit_that_fails_leaves_nothing_and_the_retry_acts_once(bot: BotApp, chat: Chat) -> None:
    clock = bot.clock
    assert isinstance(clock, ManualClock)
    fail = FailOnce(bot)
    bot.store.dedupe.finish = fail  # type: ignore[method-assign]
    award = event("/奖励 T1 1万 2026 优秀成果奖", "award-1", at=clock.now())
    with pytest.raises(ServiceUnavailable):
        await bot.handle(award)  # the channel answers 503: WeCom retries
    assert fail.failed == 1
    assert await count(bot, Award) == 0  # the award was rolled back with the failed "done" mark
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 1)
    reply = await bot.handle(event("/奖励 T1 1万 2026 优秀成果奖", "award-1", at=clock.now()))
    assert reply is not None and "10,000" in reply.text
    assert await count(bot, Award) == 1
    # and every later retry gets the recorded answer without acting again
    again = await bot.handle(event("/奖励 T1 1万 2026 优秀成果奖", "award-1", at=clock.now()))
    assert again == reply
    assert await count(bot, Award) == 1


async def test_a_proposal_whose_commit_fails_is_proposed_once_with_its_notices(
    bot: BotApp, chat: Chat
) -> None:
    clock = bot.clock
    assert isinstance(clock, ManualClock)
    bot.store.dedupe.finish = FailOnce(bot)  # type: ignore[method-assign]
    proposal = "/立项 盾构管片拼装质量控制 研究管片错台、破损的成因与对策"
    with pytest.raises(ServiceUnavailable):
        await bot.handle(event(proposal, "topic-1", user=T1_LEAD, at=clock.now()))
    assert await count(bot, Topic) == 0
    pending = await bot.store.outbox.counts()
    assert pending.get("pending", 0) == 0  # the studios' invitations went with it
    clock.advance(seconds=5)
    reply = await bot.handle(event(proposal, "topic-1", user=T1_LEAD, at=clock.now()))
    assert (
        reply is not None and "已提出课题" in reply.text
    )  # (PostgreSQL's sequences skip the rolled-back id)
    assert await count(bot, Topic) == 1
    invited = (await bot.store.outbox.counts()).get("pending", 0)
    assert invited >= 1
    await bot.handle(event(proposal, "topic-1", user=T1_LEAD, at=clock.now()))
    assert (await bot.store.outbox.counts()).get("pending", 0) == invited


failing = Router("test-failing")


@failing.command("halfway", summary="测试：写了一半就出错的命令")
async def halfway(ctx: Context) -> str:
    await ctx.runtime.store.members.grant("victim", "alliance_lead", alliance_id="tunnel")
    await ctx.runtime.outbox.notify_user("victim", "您已成为联盟负责人")
    raise RuntimeError("a bug after the first writes")


@pytest.fixture
async def failing_bot(settings: Settings, clock: ManualClock) -> AsyncIterator[BotApp]:
    app = await BotApp.create(settings, clock=clock)
    app.add_router(failing)
    await app.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
    try:
        yield app
    finally:
        await app.close()


async def test_a_handler_bug_rolls_back_its_writes_and_the_apology_is_recorded(failing_bot: BotApp) -> None:
    bot = failing_bot
    reply = await bot.handle(event("/halfway", "bug-1", user=ADMIN, at=bot.clock.now()))
    assert reply is not None and reply.text == APOLOGY
    member = await bot.store.members.get("victim")
    assert member is None or member.role == "member"  # the grant was rolled back
    assert (await bot.store.outbox.counts()).get("pending", 0) == 0  # and so was its notice
    assert await bot.store.dedupe.answer_of("test:bug-1") == (True, APOLOGY)
    retry = await bot.handle(event("/halfway", "bug-1", user=ADMIN, at=bot.clock.now()))
    assert retry == reply  # the retry gets the apology; the handler does not run again


async def test_a_message_stranded_by_a_crash_is_finished_by_the_recovery_worker(
    bot: BotApp, chat: Chat
) -> None:
    clock = bot.clock
    assert isinstance(clock, ManualClock)
    routed: list[tuple[str, str]] = []

    async def late_route(ev: Event, answer: str) -> None:
        routed.append((ev.msg_id or "", answer))
        await bot.runtime.outbox.notify_user(ev.user_id, answer, dedupe_key=f"late:{ev.msg_id}")

    bot.runtime.late_routes["test"] = late_route
    # the process claimed the message, answered the callback "later" and died before handling it
    crashed = event("/奖励 T1 2万 2026 优秀成果奖", "crash-1", at=clock.now())
    claimed = await bot.store.dedupe.claim("test:crash-1", clock.now(), event=crashed.to_record())
    assert claimed.new
    await bot.store.dedupe.acknowledged("test:crash-1", clock.now())
    # a retry does not take over a message answered "later"
    assert await bot.handle(event(crashed.text, "crash-1", at=clock.now() + CLAIM_LEASE * 2)) is None
    assert await bot.recover_once() == 0  # too early: the handler may still be at work
    clock.advance(seconds=RECOVERY_AFTER.total_seconds() + 1)
    assert await bot.recover_once() == 1
    assert await count(bot, Award) == 1
    assert routed == [("crash-1", routed[0][1])] and "20,000" in routed[0][1]
    assert await bot.store.dedupe.answer_of("test:crash-1") == (True, "")  # it went out late, not inline
    clock.advance(seconds=RECOVERY_AFTER.total_seconds() + 1)
    assert await bot.recover_once() == 0
    delivered = [d for d in await chat.delivered() if d.target == Target(TargetKind.USER, TUNNEL_LEAD)]
    assert [d.text for d in delivered] == [routed[0][1]]


async def test_a_late_answer_is_queued_with_the_effects_or_not_at_all(bot: BotApp, chat: Chat) -> None:
    clock = bot.clock
    assert isinstance(clock, ManualClock)
    routed: list[str] = []

    async def late_route(ev: Event, answer: str) -> None:
        routed.append(answer)
        await bot.runtime.outbox.notify_user(ev.user_id, answer, dedupe_key=f"late:{ev.msg_id}")

    bot.runtime.late_routes["test"] = late_route
    bot.store.dedupe.finish = FailOnce(bot)  # type: ignore[method-assign]
    late = event("/奖励 T1 5000 2026 优秀成果奖", "late-1", at=clock.now())
    await bot.store.dedupe.claim("test:late-1", clock.now(), event=late.to_record())
    claimed = await bot.store.dedupe.claim(
        "test:late-1", clock.now() + RECOVERY_AFTER * 2, lease=RECOVERY_AFTER
    )
    with pytest.raises(ServiceUnavailable):
        await bot.handle(late, delivery=Delivery.late(), claimed=claimed)
    assert routed and (await bot.store.outbox.counts()).get("pending", 0) == 0  # queued, then rolled back
    assert await count(bot, Award) == 0
    clock.advance(seconds=RECOVERY_AFTER.total_seconds() * 4)
    assert await bot.recover_once() == 1
    assert await count(bot, Award) == 1
    assert len(chat.to_user(TUNNEL_LEAD)) == 0
    await chat.delivered()
    assert len(chat.to_user(TUNNEL_LEAD)) == 1


async def test_a_new_users_first_messages_at_two_processes_are_both_handled(
    settings: Settings, clock: ManualClock
) -> None:
    first = await BotApp.create(settings, clock=clock)
    second = await BotApp.create(settings, clock=clock, migrate=False)
    try:
        await first.store.studios.import_roster(load_roster(EXAMPLE_ROSTER))
        for trial in range(50):
            user = f"newcomer{trial}"
            replies = await asyncio.gather(
                first.handle(event("/帮助", f"n{trial}-a", user=user, at=clock.now())),
                second.handle(event("/帮助", f"n{trial}-b", user=user, at=clock.now())),
            )
            for reply in replies:
                assert reply is not None and reply.text != APOLOGY and "/提问" in reply.text
        await first.store.members.flush()
        await second.store.members.flush()
        async with first.store.engine.connect() as conn:
            seen = (
                await conn.execute(text("SELECT count(*) FROM member WHERE user_id LIKE 'newcomer%'"))
            ).scalar()
            done = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM processed_message WHERE key LIKE 'test:n%' AND answered_at IS NOT NULL"
                    )
                )
            ).scalar()
        assert seen == 50
        assert done == 100
    finally:
        await second.close()
        await first.close()


async def test_last_seen_is_an_upsert_that_never_fails(bot: BotApp) -> None:
    at = bot.clock.now()
    await asyncio.gather(
        *(bot.store.members.record_seen("racer", at + timedelta(seconds=i)) for i in range(5))
    )
    member = await bot.store.members.get("racer")
    assert isinstance(member, Member) and member.last_seen_at == at + timedelta(seconds=4)
    await bot.store.members.record_seen("racer", at + timedelta(hours=1))
    member = await bot.store.members.get("racer")
    assert member is not None and member.first_seen_at <= at + timedelta(seconds=4)
    assert member.last_seen_at == at + timedelta(hours=1)
