"""Admin commands: ``/jobs`` (scheduled jobs), ``/grant`` (roles not in the roster)."""

from __future__ import annotations

from datetime import datetime

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, fold
from bot.core.scheduler import JobRegistry, JobStatus
from bot.services.studios import display_names
from bot.store.studios import MemberRole

router = Router("管理")

_OUTCOMES = {"ok": "成功", "error": "出错", "running": "进行中"}


def format_job_status(statuses: list[JobStatus], tz: object) -> str:
    """The ``/jobs`` table as Chinese text."""
    if not statuses:
        return "当前没有定时任务。"
    lines = ["定时任务（下次运行 / 上次结果）："]
    for status in statuses:
        nxt = _fmt(status.next_run, tz) if status.next_run else "—"
        if status.last_run is None:
            last = "尚未运行"
        else:
            outcome = _OUTCOMES.get(status.last_run.outcome, status.last_run.outcome)
            last = f"{_fmt(status.last_run.started_at, tz)} {outcome}"
            if status.last_run.detail:
                last += f"（{status.last_run.detail[:60]}）"
        lines.append(f"· {status.description}\n  下次：{nxt}；上次：{last}")
    return "\n".join(lines)


def _fmt(when: datetime, tz: object) -> str:
    return when.astimezone(tz).strftime("%m-%d %H:%M")  # type: ignore[arg-type]


def registry_of(ctx: Context) -> JobRegistry:
    """The job registry, registered by the composition root as a feature service."""
    return ctx.runtime.feature(JobRegistry)


@router.command("jobs", "定时任务", summary="查看定时任务的下次运行时间和上次结果", role=Role.ADMIN)
async def handle_jobs(ctx: Context) -> str:
    """Show what is scheduled next and what ran last."""
    return await job_report(registry_of(ctx), ctx.runtime.settings.tz)


async def job_report(registry: JobRegistry, tz: object) -> str:
    """The job table followed by the features' notes (e.g. the next reminders)."""
    return "\n".join([format_job_status(await registry.status(), tz), *await registry.report()])


GRANT_USAGE = (
    "/授权 账号 角色 [联盟或工作室]，角色为 成员/工作室负责人/联盟负责人/管理员；工作室负责人要写工作室，"
    "联盟负责人要写联盟，例如 /授权 wanggong 联盟负责人 隧道、/授权 lisi 工作室负责人 T1、/授权 lisi 成员（撤销）"
)


async def person_label(ctx: Context, user_id: str) -> str:
    """``陈掘进（chenjuejin）`` when the roster or the members table knows the name, else the account alone."""
    name = (await display_names(ctx.runtime.store, [user_id]))[user_id]
    return f"{name}（{user_id}）" if name != user_id else user_id


@router.command(
    "grant",
    "授权",
    summary="授予或撤销成员角色（工作室负责人需指定工作室，联盟负责人需指定联盟）",
    usage=GRANT_USAGE,
    role=Role.ADMIN,
)
async def handle_grant(ctx: Context) -> str:
    """Grant a role to a user who is not in the roster (e.g. union staff), or take it back (成员)."""
    parts = ctx.args.split()
    if len(parts) < 2:
        raise UsageError()
    user_id, role_word, *rest = parts
    user_id = fold(user_id)
    try:
        role = Role.parse(fold(role_word))
    except ValueError:
        raise UsageError(f"不认识的角色「{role_word}」。") from None
    store = ctx.runtime.store
    alliance_id = studio_id = None
    scope = ""
    if role == Role.ALLIANCE_LEAD:
        if not rest:
            raise UsageError("授予联盟负责人时请指定联盟，例如 隧道。")
        alliance = await store.alliances.find(rest[0])
        if alliance is None:
            names = "、".join(a.name for a in await store.alliances.all())
            raise UserError(f"没有找到联盟「{rest[0]}」。现有联盟：{names}")
        alliance_id, scope = alliance.id, f"：{alliance.name}"
    elif role == Role.STUDIO_LEAD:
        if not rest:
            raise UsageError("授予工作室负责人时请指定工作室（编号或名称），例如 T1。")
        studio = await store.studios.find(rest[0])
        if studio is None:
            raise UserError(f"没有找到工作室「{rest[0]}」。发送 /工作室 查看编号。")
        studio_id, scope = studio.id, f"：{studio.name}（{studio.id}）"
    await store.members.grant(
        user_id, MemberRole(role.name.lower()).value, alliance_id=alliance_id, studio_id=studio_id
    )
    who = await person_label(ctx, user_id)
    gap = "" if who.endswith("）") else " "
    if role == Role.MEMBER:
        return f"已撤销 {who}{gap}的授权，现为「成员」（花名册里登记的负责人身份不受影响）。"
    return f"已将 {who}{gap}设为「{role.label}」{scope}。"
