"""The async WeCom API client and the senders against the fake WeCom API: tokens, retries, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import BotApp
from bot.channels.wecom.client import WeComClient, WeComError
from bot.channels.wecom.senders import UserSender, clip
from bot.core.clock import ManualClock
from bot.core.messages import Target, TargetKind
from bot.core.outbox import DeliveryError
from bot.store.outbox import OutboxStatus
from bot.store.wecom import TokenRepo
from tests.fake_wecom import CORP_ID, SECRET, FakeWeCom, deliver_due, wecom_settings

SEND = "/cgi-bin/message/send"


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeWeCom]:
    """A running fake WeCom API."""
    server = await FakeWeCom(now=clock.now).start()
    try:
        yield server
    finally:
        await server.close()


async def _bot(database_url: str, fake: FakeWeCom, clock: ManualClock) -> BotApp:
    bot = await BotApp.create(wecom_settings(database_url, fake.url), clock=clock)
    bot.runtime.feature(WeComClient).backoff = 0.01
    return bot


@pytest.fixture
async def bot(database_url: str, fake: FakeWeCom, clock: ManualClock) -> AsyncIterator[BotApp]:
    """A bot (not serving) whose senders talk to the fake."""
    app = await _bot(database_url, fake, clock)
    try:
        yield app
    finally:
        await app.close()


def _user_sender(bot: BotApp) -> UserSender:
    sender = bot.senders[TargetKind.USER]
    assert isinstance(sender, UserSender)
    return sender


async def test_token_is_cached_and_refreshed_once_when_it_expires_mid_run(
    bot: BotApp, fake: FakeWeCom
) -> None:
    for i in range(3):
        await bot.runtime.outbox.notify_user(f"user{i}", f"消息 {i}")
    await deliver_due(bot)
    assert fake.token_fetches == 1
    assert len(fake.delivered(SEND)) == 3

    fake.expire_tokens()  # the token dies while the bot runs: the next calls get 42001
    sender = _user_sender(bot)
    await asyncio.gather(*(sender.send(Target(TargetKind.USER, f"late{i}"), "并发") for i in range(10)))
    assert fake.token_fetches == 2  # ten concurrent calls, one refresh
    assert len(fake.delivered(SEND)) == 13
    expired = [r for r in fake.calls(SEND) if r.answer and r.answer["errcode"] == 42001]
    assert 1 <= len(expired) <= 10  # each failed call was retried once with the new token


async def test_token_is_refreshed_shortly_before_it_expires(
    bot: BotApp, fake: FakeWeCom, clock: ManualClock
) -> None:
    sender = _user_sender(bot)
    await sender.send(Target(TargetKind.USER, "u1"), "一")
    clock.advance(seconds=7200 - 299)  # within the refresh margin (300 s) of expiry
    await sender.send(Target(TargetKind.USER, "u1"), "二")
    assert fake.token_fetches == 2
    assert all(r.answer and r.answer["errcode"] == 0 for r in fake.calls(SEND))


async def test_processes_share_one_token_and_one_refresh(
    database_url: str, fake: FakeWeCom, clock: ManualClock
) -> None:
    first, second = await _bot(database_url, fake, clock), await _bot(database_url, fake, clock)
    try:
        await _user_sender(first).send(Target(TargetKind.USER, "u1"), "来自一号进程")
        await _user_sender(second).send(Target(TargetKind.USER, "u2"), "来自二号进程")
        assert fake.token_fetches == 1  # the second process found the token in the database
        fake.expire_tokens()
        await asyncio.gather(
            _user_sender(first).send(Target(TargetKind.USER, "u1"), "过期后一"),
            _user_sender(second).send(Target(TargetKind.USER, "u2"), "过期后二"),
        )
        assert fake.token_fetches == 2
        assert len(fake.delivered(SEND)) == 4
    finally:
        await first.close()
        await second.close()


async def test_frequency_limit_and_server_errors_back_off_and_retry(bot: BotApp, fake: FakeWeCom) -> None:
    sender = _user_sender(bot)
    fake.fail_next(errcode=45009)
    await sender.send(Target(TargetKind.USER, "u1"), "限频后重试")
    assert [r.answer["errcode"] if r.answer else None for r in fake.calls(SEND)] == [45009, 0]

    fake.fail_next(status=502, times=2)
    await sender.send(Target(TargetKind.USER, "u1"), "两次 502")
    assert len(fake.calls(SEND)) == 5 and len(fake.delivered(SEND)) == 2

    fake.fail_next(errcode=-1)  # system busy
    await sender.send(Target(TargetKind.USER, "u1"), "系统繁忙")
    assert len(fake.delivered(SEND)) == 3


async def test_retries_are_bounded_and_the_outbox_tries_again_later(
    bot: BotApp, fake: FakeWeCom, clock: ManualClock
) -> None:
    fake.fail_next(status=500, times=100)
    await bot.runtime.outbox.notify_user("u1", "一直 500")
    await deliver_due(bot)
    client = bot.runtime.feature(WeComClient)
    assert len(fake.calls(SEND)) == client.max_attempts  # bounded
    [pending] = await bot.store.outbox.listing()
    assert pending.status == OutboxStatus.PENDING.value
    assert pending.attempts == 1 and pending.last_error and "HTTP 500" in pending.last_error
    assert pending.next_attempt_at > clock.now()
    fake._faults.clear()
    clock.set(pending.next_attempt_at)
    await deliver_due(bot)
    assert len(fake.delivered(SEND)) == 1
    assert (await bot.store.outbox.counts()).get("sent") == 1


async def test_permanent_errors_fail_at_once(bot: BotApp, fake: FakeWeCom) -> None:
    fake.fail_next(errcode=40003)  # invalid user id
    await bot.runtime.outbox.notify_user("nobody", "发不出去")
    await deliver_due(bot)
    assert len(fake.calls(SEND)) == 1
    [failed] = await bot.store.outbox.listing()
    assert failed.status == OutboxStatus.FAILED.value
    assert failed.last_error and "40003" in failed.last_error


async def test_a_slow_answer_times_out_and_is_retried(fake: FakeWeCom, clock: ManualClock) -> None:
    client = WeComClient(
        base_url=fake.url, corp_id=CORP_ID, secret=SECRET, now=clock.now, timeout=0.3, backoff=0.01
    )
    try:
        fake.slow_next(1.0, path=SEND)
        await client.api(SEND, {"touser": "u1", "msgtype": "text", "agentid": 1, "text": {"content": "慢"}})
        assert len(fake.calls(SEND)) == 2  # the first one timed out on our side and was retried
    finally:
        await client.close()


async def test_a_wrong_secret_is_retryable_so_messages_survive_a_fix(
    fake: FakeWeCom, clock: ManualClock
) -> None:
    client = WeComClient(base_url=fake.url, corp_id=CORP_ID, secret="wrong", now=clock.now, backoff=0.01)
    sender = UserSender(client, "1000002")
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send(Target(TargetKind.USER, "u1"), "x")
        assert caught.value.retry_after is not None
    finally:
        await client.close()


async def test_token_lease_in_the_database(bot: BotApp, clock: ManualClock) -> None:
    tokens = TokenRepo(bot.store.sessions)
    assert await tokens.try_lease("k", "a", clock.now(), lease=timedelta(seconds=30))
    assert not await tokens.try_lease("k", "b", clock.now(), lease=timedelta(seconds=30))
    clock.advance(seconds=31)
    assert await tokens.try_lease("k", "b", clock.now(), lease=timedelta(seconds=30))


def test_clip_keeps_utf8_within_the_limit() -> None:
    text = "盾" * 1000  # 3000 bytes
    clipped = clip(text, 2048)
    assert len(clipped.encode()) <= 2048 and clipped.endswith("已截断）")
    assert clip("短", 2048) == "短"


def test_errors_say_whether_to_retry() -> None:
    assert WeComError(45009, "x", retryable=True).retryable
    assert "40003" in str(WeComError(40003, "invalid userid", retryable=False))


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
@pytest.mark.parametrize("path", [SEND, "/cgi-bin/appchat/send"])
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried_once(
    bot: BotApp, fake: FakeWeCom, errcode: int, path: str
) -> None:
    kind = TargetKind.USER if path == SEND else TargetKind.APPCHAT
    sender = bot.senders[kind]
    await sender.send(Target(kind, "first"), "取得令牌")
    assert fake.token_fetches == 1
    fake.fail_next(errcode=errcode, path=path)
    await sender.send(Target(kind, "second"), "令牌被拒后重试")
    assert fake.token_fetches == 2  # one refresh
    codes = [r.answer["errcode"] if r.answer else None for r in fake.calls(path)]
    assert codes == [0, errcode, 0]  # one retry
    tokens = [r.query["access_token"] for r in fake.calls(path)]
    assert tokens[1] == tokens[0] and tokens[2] != tokens[1]  # the retry used the new token


async def test_a_token_rejected_again_after_the_refresh_is_not_refreshed_in_a_loop(
    bot: BotApp, fake: FakeWeCom
) -> None:
    fake.fail_next(errcode=42001, path=SEND, times=100)
    with pytest.raises(DeliveryError) as caught:
        await _user_sender(bot).send(Target(TargetKind.USER, "u1"), "x")
    assert caught.value.retry_after is not None  # the outbox tries again later
    assert fake.token_fetches == 2  # the first token, then exactly one refresh
    assert len(fake.calls(SEND)) == 2


async def test_a_persistent_frequency_limit_backs_off_and_gives_up_after_a_bounded_number_of_calls(
    bot: BotApp, fake: FakeWeCom
) -> None:
    client = bot.runtime.feature(WeComClient)
    client.backoff = 0.05
    fake.fail_next(errcode=45009, path=SEND, times=100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeliveryError) as caught:
        await _user_sender(bot).send(Target(TargetKind.USER, "u1"), "x")
    elapsed = loop.time() - started
    assert len(fake.calls(SEND)) == client.max_attempts
    assert caught.value.retry_after is not None and "45009" in str(caught.value)
    # it backed off between the calls: 4 × (0.05 + 0.1 + 0.2) s; not after the last, which would only hold
    # up the outbox worker (the outbox retries the message later)
    assert elapsed >= 4 * (0.05 + 0.1 + 0.2)
    assert elapsed < 4 * (0.05 + 0.1 + 0.2 + 0.4)
    assert fake.token_fetches == 1  # a frequency limit is not a token problem
