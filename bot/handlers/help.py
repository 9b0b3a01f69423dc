"""``/help`` and ``/whoami``."""

from __future__ import annotations

import weakref

from bot.core.dispatcher import Context, Dispatcher, Role, Router, UsageError

router = Router("基本")


@router.command(
    "help", "帮助", "h", summary="查看可用命令，或某个命令的用法", usage="/帮助 [命令]，例如 /帮助 studio"
)
async def handle_help(ctx: Context) -> str:
    """List the commands the caller may use, grouped; or one command's usage."""
    assert ctx.dispatcher is not None
    if ctx.args:
        word = ctx.args.split()[0].lstrip("/／")
        command = ctx.dispatcher.find(word)
        if command is None:
            hint = ctx.dispatcher.suggest(word)
            raise UsageError(f"没有 /{word} 这个命令。" + (f"您是不是想查 /{hint}？" if hint else ""))
        chinese = [w for w in command.words if not w.isascii()]
        english = [w for w in command.words if w.isascii()]
        names = "、".join(f"/{w}" for w in chinese or english)
        if chinese and english:
            names += f"（英文：{'、'.join('/' + w for w in english)}）"
        lines = [names, command.summary, f"用法：{command.usage}"]
        if command.role > Role.MEMBER:
            lines.append(f"权限：{command.role.label}及以上")
        return "\n".join(lines)
    return _overview(ctx.dispatcher, ctx.caller.role)


# The overview depends only on the commands (fixed once the dispatcher exists) and the caller's role.
_overviews: weakref.WeakKeyDictionary[Dispatcher, dict[Role, str]] = weakref.WeakKeyDictionary()


def _overview(dispatcher: Dispatcher, role: Role) -> str:
    cache = _overviews.setdefault(dispatcher, {})
    if role in cache:
        return cache[role]
    groups: dict[str, list[str]] = {}
    for command in dispatcher.commands:
        if command.hidden or role < command.role:
            continue
        alias = next((a for a in command.aliases if not a.isascii()), "")
        label = f"/{alias}（/{command.name}）" if alias else f"/{command.name}"  # Chinese first: who reads it
        groups.setdefault(command.group, []).append(f"  {label} — {command.summary}")
    lines = [f"工作室联盟助手 · 您的身份：{role.label}"]
    for group, entries in groups.items():
        lines.append(f"【{group}】")
        lines.extend(entries)
    lines.append("发送 /帮助 命令名 查看用法，例如 /帮助 认领；中英文命令均可，/工作室 与 /studios 相同。")
    cache[role] = text = "\n".join(lines)
    return text


@router.command("whoami", "我是谁", summary="查看我的账号、身份和所在工作室")
async def handle_whoami(ctx: Context) -> str:
    """Show the caller's user id, role, and the studios and alliances they lead."""
    store = ctx.runtime.store
    lines = [f"账号：{ctx.caller.user_id}", f"身份：{ctx.caller.role.label}"]
    for studio_id in ctx.caller.studios:
        studio = await store.studios.get(studio_id)
        if studio:
            lines.append(f"负责工作室：{studio.name}（{studio.id}）")
    for alliance_id in ctx.caller.alliances:
        alliance = await store.alliances.get(alliance_id)
        if alliance:
            lines.append(f"牵头联盟：{alliance.name}")
    if not ctx.caller.studios and not ctx.caller.alliances and ctx.caller.role == Role.MEMBER:
        lines.append("您还不是工作室负责人；如需登记，请联系联盟管理员。")
    return "\n".join(lines)
