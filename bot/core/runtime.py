"""What handlers and jobs share (the runtime): settings, store, clock and outbox, plus the feature services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from bot.core.clock import Clock
from bot.core.delivery import LateRoute
from bot.core.messages import Event, Target
from bot.core.outbox import Outbox
from bot.settings import Settings
from bot.store import Store

T = TypeVar("T")


@dataclass(slots=True)
class Runtime:
    """Everything a handler or job needs, built once by the composition root."""

    settings: Settings
    store: Store
    clock: Clock
    outbox: Outbox
    features: dict[type, Any] = field(default_factory=dict)
    # per channel: how an answer that missed the callback's deadline reaches its sender (see core.delivery)
    late_routes: dict[str, LateRoute] = field(default_factory=dict)
    # per channel: the address of a group chat its messages came from, for a channel that can post to it
    group_targets: dict[str, Callable[[str], Target]] = field(default_factory=dict)
    # heavy, side-effect-free preparation run before a message's transaction opens (e.g. embedding its text)
    warmers: list[Callable[[Event], Awaitable[None]]] = field(default_factory=list)

    def add_feature(self, service: Any) -> None:
        """Register a feature service (e.g. the problem tracker) under its class."""
        self.features[type(service)] = service

    def feature(self, cls: type[T]) -> T:
        """The registered service of class ``cls``."""
        try:
            return self.features[cls]
        except KeyError:
            raise LookupError(f"feature {cls.__name__} is not registered") from None

    async def warm(self, event: Event) -> None:
        """Run the warmers for ``event`` (failures only cost speed)."""
        for warmer in self.warmers:
            try:
                await warmer(event)
            except Exception:  # a warmer only saves time later; the handler does the work anyway
                continue

    def local_now(self) -> datetime:
        """The current time in the configured time zone."""
        return self.clock.now().astimezone(self.settings.tz)
