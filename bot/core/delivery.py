"""How the answer to a message reaches its sender: in the callback's own response, or later.

A WeCom callback must be answered within 5 s. The channel waits a few seconds for the handler; whichever
comes first decides, once, how the answer travels:

- the handler's unit of work, about to commit, calls ``keep_inline``: the channel will send the answer in
  its response (and waits the few milliseconds the commit takes);
- the channel, at its deadline, calls ``give_up_waiting``: the answer is queued in the outbox by the
  channel's late route (a personal message, an AI-bot stream and response URL) — inside the same
  transaction as the message's effects and its "done" mark, so it can be neither lost nor sent twice.

Both run on the event loop's one thread, so the decision cannot race. A message the recovery worker
finishes after a crash starts out late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from bot.core.messages import Event

LateRoute = Callable[[Event, str], Awaitable[None]]


class Path(StrEnum):
    """How an answer travels."""

    UNDECIDED = "undecided"
    INLINE = "inline"
    LATE = "late"


class Delivery:
    """The one-time decision between an inline and a late answer for one message."""

    def __init__(self, path: Path = Path.UNDECIDED) -> None:
        self.path = path

    @classmethod
    def late(cls) -> Delivery:
        """A message whose answer can only go out later (a recovered one)."""
        return cls(Path.LATE)

    def keep_inline(self) -> bool:
        """The handler is done: answer inline unless the channel has given up waiting already."""
        if self.path is Path.UNDECIDED:
            self.path = Path.INLINE
        return self.path is Path.INLINE

    def give_up_waiting(self) -> bool:
        """The channel's deadline: True when the answer will now go out late; False when the handler has
        already settled on answering inline (its commit is under way)."""
        if self.path is Path.UNDECIDED:
            self.path = Path.LATE
        return self.path is Path.LATE
