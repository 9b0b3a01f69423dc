"""``/outbox`` (admins) and ``alliance-bot outbox``: messages still to send and messages that failed."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.dispatcher import Context, Role, Router
from bot.core.messages import TargetKind
from bot.store.outbox import OutboxMessage, OutboxStatus

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


def preview(text: str, length: int = 40) -> str:
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
            line += f"\n  错误：{preview(message.last_error, 80)}"
        lines.append(line + f"\n  内容：{preview(message.text)}")
    if len(messages) > SHOWN:
        lines.append(f"……另有 {len(messages) - SHOWN} 条未列出，完整列表请用命令行 alliance-bot outbox。")
    return "\n".join(lines)


@router.command("outbox", "发件箱", summary="查看待发送和发送失败的消息", role=Role.ADMIN)
async def handle_outbox(ctx: Context) -> str:
    """Show pending and failed outbound messages."""
    store = ctx.runtime.store
    return format_outbox(await store.outbox.counts(), await store.outbox.listing(), ctx.runtime.settings.tz)


async def setup(bot: BotApp) -> None:
    """Register ``/outbox``."""
    bot.add_router(router)









