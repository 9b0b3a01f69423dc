"""Log hygiene: a flood of one identical line (a misbehaving client, a dead peer) is summarised, not written
out a million times."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RepeatFilter(logging.Filter):
    """Let at most ``burst`` records with the same logger, level and message template through per ``window``
    seconds; when the window ends, one record says how many were suppressed."""

    def __init__(self, burst: int = 20, window: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        started, count = self._seen.get(key, (now, 0))
        if now - started >= self.window:
            if count > self.burst:
                record.msg = f"{record.msg} [the same message was suppressed {count - self.burst} times in {self.window:.0f} s]"
            started, count = now, 0
        count += 1
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (started, count)
        return count <= self.burst


def install_repeat_filter(burst: int = 20, window: float = 10.0) -> RepeatFilter:
    """Put one ``RepeatFilter`` on every handler of the root logger."""
    repeat = RepeatFilter(burst, window)
    for handler in logging.getLogger().handlers:
        handler.addFilter(repeat)
    return repeat
