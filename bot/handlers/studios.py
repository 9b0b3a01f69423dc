"""``/studios`` and ``/studio``: the alliance's studios from the roster."""

from __future__ import annotations

from bot.core.dispatcher import Context, Router, UsageError, UserError, fold
from bot.store.studios import Studio

router = Router("工作室")


def stars(count: int) -> str:
    """A star rating as stars, e.g. ★★★★☆ for 4."""
    return "★" * count + "☆" * (5 - count)


@router.command(
    "studios",
    "工作室",
    "工作室列表",
    summary="按联盟列出工作室（星级、负责人）",
    usage="/工作室 [联盟]，例如 /工作室 隧道",
)
async def handle_studios(ctx: Context) -> str:
    """List studios grouped by alliance, optionally of one alliance."""
    store = ctx.runtime.store
    alliances = await store.alliances.all()
    if ctx.args:
        alliance = await store.alliances.find(ctx.args)
        record = len(ctx.args.split()) > 1 and fold(ctx.args.split()[1]) in ("档案", "record")
        if alliance is None and (record or await store.studios.get(fold(ctx.args.split()[0])) is not None):
            return str(await handle_studio(ctx))
        if alliance is None:
            names = "、".join(a.name for a in alliances) or "（尚未导入花名册）"
            raise UserError(f"没有找到联盟「{ctx.args}」。现有联盟：{names}")
        alliances = [alliance]
    studios = await store.studios.all()
    if not studios:
        return "还没有工作室数据。请管理员先导入花名册：alliance-bot studios import 花名册.yaml"
    by_alliance: dict[str, list[Studio]] = {}
    for studio in studios:
        by_alliance.setdefault(studio.alliance_id, []).append(studio)
    lines: list[str] = []
    shown: list[Studio] = []
    for alliance in alliances:
        members = by_alliance.get(alliance.id, [])
        lines.append(f"【{alliance.name}】{len(members)} 个工作室")
        shown.extend(members)
        for studio in members:
            lines.append(f"  {studio.id} {studio.name} {stars(studio.stars)} 负责人：{studio.lead_name}")
    example = (shown or studios)[0].id  # an example from the list the reader has in front of them
    lines.append(f"发送 /工作室 编号 查看详情，例如 /工作室 {example}")
    return "\n".join(lines)


@router.command(
    "studio",
    "工作室详情",
    summary="查看一个工作室的简介和专长",
    usage="/studio 编号，例如 /studio T1；/studio 编号 档案 查看历年档案和「八有」",
)
async def handle_studio(ctx: Context) -> str:
    """Show one studio's profile."""
    if not ctx.args:
        raise UsageError()
    key = fold(ctx.args.split()[0])
    if len(ctx.args.split()) > 1 and fold(ctx.args.split()[1]) in ("档案", "record"):
        from bot.handlers.evaluations import handle_record  # the evaluations feature's studio record

        return await handle_record(ctx, key)
    store = ctx.runtime.store
    studio = await store.studios.get(key)
    if studio is None:
        candidates = [s for s in await store.studios.all() if key in s.name]
        if len(candidates) == 1:
            studio = candidates[0]
        elif candidates:
            listing = "\n".join(f"  {s.id} {s.name}" for s in candidates[:10])
            return f"有多个工作室名称包含「{key}」，请用编号查询：\n{listing}"
        else:
            raise UserError(f"没有编号为 {key} 的工作室。发送 /工作室 查看全部工作室。")
    alliance = await store.alliances.get(studio.alliance_id)
    return "\n".join(
        [
            f"{studio.name}（{studio.id}）",
            f"联盟：{alliance.name if alliance else studio.alliance_id}",
            f"单位：{studio.unit}",
            f"类型：{studio.type}  星级：{stars(studio.stars)}",
            f"负责人：{studio.lead_name}",
            f"专长：{'、'.join(studio.expertise)}",
            f"简介：{studio.description or '（暂无）'}",
        ]
    )
