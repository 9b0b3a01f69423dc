"""Store: aware UTC timestamps on every backend, deduplication, outbox claims, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.app import BotApp
from bot.core.messages import Outbound, Target, TargetKind
from bot.store.engine import create_engine, current_revisions, upgrade_database
from bot.store.outbox import OutboxStatus


async def test_timestamps_round_trip_as_aware_utc(bot: BotApp) -> None:
    local = datetime(2026, 11, 24, 18, 30, tzinfo=timezone(timedelta(hours=8)))
    await bot.store.members.record_seen("u1", local)
    member = await bot.store.members.get("u1")
    assert member is not None
    assert member.last_seen_at.tzinfo is not None
    assert member.last_seen_at == local
    assert member.last_seen_at.utcoffset() == timedelta(0)


async def test_naive_timestamps_are_refused(bot: BotApp) -> None:
    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError):
        await bot.store.members.record_seen("u2", datetime(2026, 1, 1))


async def test_dedupe_claim_is_once(bot: BotApp) -> None:
    assert await bot.store.dedupe.claim("aibot:m1")
    assert not await bot.store.dedupe.claim("aibot:m1")
    await bot.store.dedupe.release("aibot:m1")
    assert await bot.store.dedupe.claim("aibot:m1")
    removed = await bot.store.dedupe.prune(datetime.now(UTC) + timedelta(days=1))
    assert removed >= 1


async def test_outbox_dedupe_key_and_lease(bot: BotApp) -> None:
    outbox = bot.runtime.outbox
    message = Outbound(Target(TargetKind.USER, "u1"), "你好", dedupe_key="k1")
    assert await outbox.send(message) == 1
    assert await outbox.send(message) == 0
    now = bot.clock.now()
    first = await bot.store.outbox.claim_due(now)
    assert [m.text for m in first] == ["你好"]
    assert await bot.store.outbox.claim_due(now) == []  # leased to the first claimer
    later = await bot.store.outbox.claim_due(now + timedelta(minutes=5))
    assert len(later) == 1  # the lease expired: a crashed worker's message is picked up again
    assert first[0].id is not None
    await bot.store.outbox.mark_sent(first[0].id, now)
    assert await bot.store.outbox.claim_due(now + timedelta(hours=1)) == []
    counts = await bot.store.outbox.counts()
    assert counts == {OutboxStatus.SENT.value: 1}


async def test_announce_without_configured_group_goes_to_console_target(bot: BotApp) -> None:
    assert await bot.runtime.outbox.announce("tunnel", "通知") == 1
    pending = await bot.store.outbox.listing()
    assert [(m.target_kind, m.target) for m in pending] == [("console", "隧道联盟群")]


async def test_migrations_are_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revisions(engine) == set()
        await upgrade_database(engine)
        heads = await current_revisions(engine)
        assert "0001_core" in heads or heads
        await upgrade_database(engine)
        assert await current_revisions(engine) == heads
    finally:
        await engine.dispose()
