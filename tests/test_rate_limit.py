"""Per-user rate limit: a polite notice once, then silence, and recovery after the window."""

from __future__ import annotations

from bot.app import BotApp
from bot.core.clock import ManualClock
from bot.core.middleware import RateLimiter
from tests.harness import Chat


async def test_runaway_user_is_limited_politely(bot: BotApp, clock: ManualClock) -> None:
    chat = Chat(bot)
    limit = bot.settings.rate_limit_per_min
    assert limit == 20
    replies = [await chat.say("runaway", "/whoami") for _ in range(limit)]
    assert all("账号：runaway" in r for r in replies)
    notice = await chat.say("runaway", "/whoami")
    assert "太频繁" in notice and "20" in notice
    assert await chat.say("runaway", "/whoami") == ""  # notified once; further messages are dropped
    assert "账号：calm" in await chat.say("calm", "/whoami")  # others are unaffected
    clock.advance(seconds=61)
    assert "账号：runaway" in await chat.say("runaway", "/whoami")


def test_sliding_window_and_disabled_limit() -> None:
    limiter = RateLimiter(3)
    assert [limiter.check("u", t) for t in (0, 1, 2)] == [True, True, True]
    assert limiter.check("u", 3) is False
    assert limiter.check("u", 30) is None
    assert limiter.check("u", 60.5) is True  # the hit at t=0 has left the window
    unlimited = RateLimiter(0)
    assert all(unlimited.check("u", float(t)) for t in range(1000))
