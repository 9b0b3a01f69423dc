"""The services handlers and jobs share: settings, store, clock and outbox, plus feature services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from bot.outbox import Outbox
from bot.settings import Settings
from bot.store import Store

T = TypeVar("T")


class Clock(Protocol):
    """Where "now" comes from; tests inject a controllable one."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (for tests and simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """The clock's current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``."""
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` (or ``timedelta(**kwargs)``) and return the new time."""
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


@dataclass(slots=True)
class Services:
    """Everything a handler or job needs, built once by the composition root."""

    settings: Settings
    store: Store
    clock: Clock
    outbox: Outbox
    features: dict[type, Any] = field(default_factory=dict)

    def add_feature(self, service: Any) -> None:
        """Register a feature service (e.g. the problem tracker) under its class."""
        self.features[type(service)] = service

    def feature(self, cls: type[T]) -> T:
        """The registered service of class ``cls``."""
        try:
            return self.features[cls]
        except KeyError:
            raise LookupError(f"feature {cls.__name__} is not registered") from None

    def local_now(self) -> datetime:
        """The current time in the configured time zone."""
        return self.clock.now().astimezone(self.settings.tz)
