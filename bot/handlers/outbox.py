"""``/outbox`` (admins) and ``alliance-bot outbox``: messages still to send and messages that failed."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.dispatcher import Context, Role, Router
from bot.events import TargetKind
from bot.settings import Settings
from bot.store.models import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("管理")

_KIND_LABELS = {
    TargetKind.USER.value: "私信",
    TargetKind.APPCHAT.value: "应用群聊",
    TargetKind.WEBHOOK.value: "群机器人",
    TargetKind.RESPONSE_URL.value: "智能机器人回复",
    TargetKind.CONSOLE.value: "控制台群",
}
_STATUS_LABELS = {OutboxStatus.PENDING.value: "待发送", OutboxStatus.FAILED.value: "发送失败"}
SHOWN = 20


def shown_target(message: OutboxMessage) -> str:
    """The target as it may be shown: webhook keys and response URLs are secrets and are shortened."""
    if message.target_kind == TargetKind.WEBHOOK.value:
        return f"{message.target[:4]}…"
    if message.target_kind == TargetKind.RESPONSE_URL.value:
        return "（回复地址）"
    return message.target


def _preview(text: str, length: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def _when(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M:%S")


def format_outbox(counts: dict[str, int], messages: list[OutboxMessage], tz: ZoneInfo) -> str:
    """The outbox report in Chinese: counts, then each pending or failed message."""
    pending, failed = counts.get(OutboxStatus.PENDING.value, 0), counts.get(OutboxStatus.FAILED.value, 0)
    if not messages:
        return f"发件箱是空的：没有待发送或发送失败的消息（已发送 {counts.get(OutboxStatus.SENT.value, 0)} 条）。"
    lines = [f"发件箱：待发送 {pending} 条，发送失败 {failed} 条。"]
    for message in messages[:SHOWN]:
        kind = _KIND_LABELS.get(message.target_kind, message.target_kind)
        status = _STATUS_LABELS.get(message.status, message.status)
        line = f"· #{message.id} {status} → {kind} {shown_target(message)}，已尝试 {message.attempts} 次"
        if message.status == OutboxStatus.PENDING.value:
            line += f"，下次 {_when(message.next_attempt_at, tz)}"
        if message.last_error:
            line += f"\n  错误：{_preview(message.last_error, 80)}"
        lines.append(line + f"\n  内容：{_preview(message.text)}")
    if len(messages) > SHOWN:
        lines.append(f"……另有 {len(messages) - SHOWN} 条未列出，完整列表请用命令行 alliance-bot outbox。")
    return "\n".join(lines)


@router.command("outbox", "发件箱", summary="查看待发送和发送失败的消息", role=Role.ADMIN)
async def handle_outbox(ctx: Context) -> str:
    """Show pending and failed outbound messages."""
    store = ctx.services.store
    return format_outbox(await store.outbox.counts(), await store.outbox.listing(), ctx.services.settings.tz)


async def setup(bot: BotApp) -> None:
    """Register ``/outbox``."""
    bot.add_router(router)


# -- command line ------------------------------------------------------------------------------------


def _row(message: OutboxMessage, tz: ZoneInfo) -> dict[str, Any]:
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
    from bot.store import Store

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
                    _preview(m.last_error or "-", 80),
                    _preview(m.text, 60),
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
