"""Admin commands: ``/jobs`` (scheduled jobs), ``/grant`` (roles not in the roster)."""

from __future__ import annotations

from datetime import datetime

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError
from bot.core.scheduler import JobRegistry, JobStatus
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


@router.command(
    "grant",
    "授权",
    summary="授予成员角色（联盟负责人需指定联盟）",
    usage="/授权 账号 角色 [联盟]，角色为 成员/工作室负责人/联盟负责人/管理员，例如 /授权 wanggong 联盟负责人 隧道",
    role=Role.ADMIN,
)
async def handle_grant(ctx: Context) -> str:
    """Grant a role to a user who is not in the roster (e.g. union staff)."""
    parts = ctx.args.split()
    if len(parts) < 2:
        raise UsageError()
    user_id, role_word, *rest = parts
    try:
        role = Role.parse(role_word)
    except ValueError:
        raise UsageError(f"不认识的角色「{role_word}」。") from None
    alliance_id = None
    if role == Role.ALLIANCE_LEAD:
        if not rest:
            raise UsageError("授予联盟负责人时请指定联盟。")
        alliance = await ctx.runtime.store.alliances.find(rest[0])
        if alliance is None:
            raise UserError(f"没有找到联盟「{rest[0]}」。")
        alliance_id = alliance.id
    await ctx.runtime.store.members.grant(
        user_id, MemberRole(role.name.lower()).value, alliance_id=alliance_id
    )
    return f"已将 {user_id} 设为「{role.label}」" + (f"（{alliance_id}）" if alliance_id else "") + "。"
