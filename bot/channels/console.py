"""The local console channel: each input line is a message from one user; replies and deliveries are printed."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TextIO

from bot.app import BotApp
from bot.core.messages import Event, Target, TargetKind

_TARGET_LABELS = {
    TargetKind.USER: "私信",
    TargetKind.APPCHAT: "应用群聊",
    TargetKind.WEBHOOK: "群机器人",
    TargetKind.RESPONSE_URL: "回复",
    TargetKind.CONSOLE: "群",
    TargetKind.USER_FILE: "私信文件",
    TargetKind.LONGCONN: "长连接",
}


class ConsoleSender:
    """Delivers outbound messages by printing them with their target."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def send(self, target: Target, text: str) -> None:
        """Print the message under a header naming its target."""
        label = _TARGET_LABELS.get(target.kind, target.kind.value)
        self._out.write(f"  ↪ [{label} → {target.address}]\n{_indent(text, '    ')}\n")
        self._out.flush()


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


async def run_console(
    bot: BotApp,
    *,
    user_id: str,
    group: str | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Read lines until end of input; dispatch each as a message from ``user_id`` (in ``group``)."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    worker = bot.use_senders({kind: ConsoleSender(out) for kind in TargetKind})
    interactive = stdin.isatty()
    if interactive:
        where = f"群「{group}」" if group else "单聊"
        who = f"{user_id}（管理员）" if user_id in bot.settings.admins else user_id
        out.write(
            f"工作室联盟助手（控制台）· 以 {who} 的身份在{where}中对话，输入 /帮助 开始，Ctrl-D 退出。\n"
        )
    await bot.start(scheduler=False, outbox=False, recovery=False, warm=interactive)
    count = 0
    while True:
        if interactive:
            out.write("你> ")
            out.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        count += 1
        event = Event(
            channel="console",
            user_id=user_id,
            text=text,
            received_at=bot.clock.now(),
            chat_id=group,
            msg_id=uuid.uuid4().hex,
        )
        reply = await bot.handle(event)
        await bot.drain()
        if reply is not None and reply.text:  # an empty reply is the bot keeping quiet (e.g. after 收到)
            out.write(f"助手：{_indent(reply.text, '      ').lstrip()}\n")
        await worker.run_once()
        out.flush()
    return count
