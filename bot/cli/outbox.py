"""``alliance-bot outbox [--json] [--limit N]``: messages still to send and messages that failed."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the store, the handlers and the settings load when a command runs, not for --help
    from bot.settings import Settings
    from bot.store.outbox import OutboxMessage


def _row(message: OutboxMessage, tz: ZoneInfo) -> dict[str, Any]:
    from bot.handlers.outbox import shown_target

    return {
        "id": message.id,
        "status": message.status,
        "target_kind": message.target_kind,
        "target": shown_target(message),
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at.astimezone(tz).isoformat(),
        "last_error": message.last_error,
        "text": message.text,
    }


async def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.handlers.outbox import preview
    from bot.store import Store
    from bot.store.outbox import OutboxStatus

    store = await Store.open(settings.effective_database_url)
    try:
        messages = await store.outbox.listing(limit=args.limit)
        counts = await store.outbox.counts()
    finally:
        await store.close()
    tz = settings.tz
    if args.json:
        print(json.dumps([_row(m, tz) for m in messages], ensure_ascii=False, indent=2))
        return 0
    print(
        f"待发送 {counts.get(OutboxStatus.PENDING.value, 0)} 条，发送失败 {counts.get(OutboxStatus.FAILED.value, 0)} 条，"
        f"已发送 {counts.get(OutboxStatus.SENT.value, 0)} 条"
    )
    for m in messages:
        row = _row(m, tz)
        print(
            "\t".join(
                str(v)
                for v in (
                    row["id"],
                    row["status"],
                    f"{row['target_kind']}:{row['target']}",
                    row["attempts"],
                    row["next_attempt_at"],
                    preview(m.last_error or "-", 80),
                    preview(m.text, 60),
                )
            )
        )
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``alliance-bot outbox [--json] [--limit N]``."""
    parser = sub.add_parser("outbox", help="pending and failed outbound messages (same as /outbox)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many messages (default 1000)")
    parser.set_defaults(run=_outbox)
