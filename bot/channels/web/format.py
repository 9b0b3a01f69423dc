"""Jinja filters of the console: local times, short texts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import pass_context

from bot.services.problems import short


@pass_context
def local_time(context: Any, when: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time in the bot's time zone."""
    if when is None:
        return "—"
    return when.astimezone(context["tz"]).strftime(pattern)


def shorten(text: str | None, limit: int = 40) -> str:
    """One line of at most ``limit`` characters."""
    return short(text or "", limit)


FILTERS: dict[str, Callable[..., Any]] = {"local": local_time, "short": shorten}
