"""Joint research topics: ``/propose`` (``/立项``), ``/support`` (``/附议``), ``/join T-N`` (``/加入攻关``),
``/progress``, ``/conclude``, ``/topics`` and ``/topic``; the feature's setup (service and quorum sweep).

Topic numbers are written ``T-3``; every command also takes ``3``, ``t3`` or ``#T-3``. ``/join`` is shared with
events: ``/join T-3`` joins a topic's team, ``/join 3`` signs up for event 3 (``/加入攻关 3`` is always a topic).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from apscheduler.triggers.cron import CronTrigger

from bot.core.dispatcher import Context, Role, Router, UsageError, UserError, first_word, fold
from bot.core.runtime import Runtime
from bot.services.achievements.novelty import NEAR_DUPLICATE, describe
from bot.services.achievements.service import AchievementService
from bot.services.benefits import topic_chain_lines
from bot.services.studios import studio_list
from bot.services.topics import SWEEP_JOB, TopicService, cn_day, topic_label
from bot.store.studios import Studio
from bot.store.topics import Topic, TopicProgress, TopicStatus

if TYPE_CHECKING:
    from bot.app import BotApp

router = Router("联合攻关")

MAX_TITLE = 200
MIN_TITLE = 4  # a topic worth a quorum of studios is named in more than a word or two
MAX_TEXT = 2000
_TOPIC_ID = re.compile(r"^#?(?:t-?)?(\d{1,9})$", re.IGNORECASE)
_STUDIO_OPT = re.compile(r"(?:^|\s)[@＠](\S+)")
_MINE = ("mine", "我的", "本工作室")


def service_of(ctx: Context) -> TopicService:
    """The topics service."""
    return ctx.runtime.feature(TopicService)


def is_topic_ref(args: str) -> bool:
    """Whether ``/join`` arguments name a topic (``T-3``, ``t3``, ``#T-3``) rather than an event."""
    return fold(args).lstrip("#").upper().startswith("T")


def parse_topic_id(text: str) -> int:
    """``3``, ``T-3``, ``t3`` or ``#T-3`` → 3; raises ``UsageError``."""
    word = first_word(text)[0]
    match = _TOPIC_ID.match(word)
    if not match:
        raise UsageError("请写课题编号，例如 T-3。发送 /课题列表 查看编号。")
    return int(match.group(1))


def split_title(text: str) -> tuple[str, str]:
    """``标题 说明…`` → (标题, 说明); a colon or a line break ends a title that contains spaces."""
    text = text.strip()
    for separator in ("\n", ":", "："):
        if separator in text:
            title, _, rest = text.partition(separator)
            return title.strip(), rest.strip()
    parts = text.split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) > 1 else (text, "")


async def choose_studio(ctx: Context, args: str) -> tuple[Studio, str]:
    """The studio the caller acts for (``@B1`` picks one) and the arguments without the option."""
    store = ctx.runtime.store
    match = _STUDIO_OPT.search(args)
    if match:
        word = match.group(1)
        args = (args[: match.start()] + " " + args[match.end() :]).strip()
        studio = await store.studios.find(word)
        if studio is None:
            raise UserError(f"没有编号为 {word} 的工作室。发送 /工作室 查看编号。")
        allowed = (
            studio.id in ctx.caller.studios
            or ctx.caller.at_least(Role.ADMIN)
            or studio.alliance_id in ctx.caller.alliances
        )
        if not allowed:
            raise UserError(f"您不是{studio.name}（{studio.id}）的负责人，不能代表它操作。")
        return studio, args
    if len(ctx.caller.studios) == 1:
        studio = await store.studios.get(ctx.caller.studios[0])
        assert studio is not None
        return studio, args
    if ctx.caller.studios:
        raise UsageError(
            f"您负责多个工作室（{'、'.join(ctx.caller.studios)}），请用 @工作室编号 指明，例如 @{ctx.caller.studios[0]}。"
        )
    raise UserError(
        "您没有负责的工作室。请用 @工作室编号 指明代表哪个工作室（联盟负责人可代本联盟的工作室操作）。"
    )


async def topic_or_error(ctx: Context, args: str) -> Topic:
    """The topic the first argument names."""
    topic_id = parse_topic_id(args)
    topic = await service_of(ctx).topics.get(topic_id)
    if topic is None:
        raise UserError(f"没有编号为 T-{topic_id} 的课题。发送 /课题列表 查看课题。")
    return topic


def _rest(args: str) -> str:
    parts = args.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _not_active(topic: Topic) -> str:
    if topic.state == TopicStatus.PROPOSED:
        return f"课题 {topic_label(topic)}还在征集附议，尚未立项（可发送 /附议 T-{topic.id} 支持）。"
    return f"课题 {topic_label(topic)}{topic.state.label}。"


def may_manage(ctx: Context, topic: Topic) -> bool:
    """The proposer, leads of the topic's alliance and admins may conclude a topic."""
    caller = ctx.caller
    return (
        caller.user_id == topic.proposer
        or caller.at_least(Role.ADMIN)
        or (caller.at_least(Role.ALLIANCE_LEAD) and topic.alliance_id in caller.alliances)
    )


# -- commands --------------------------------------------------------------------------------------

PROPOSE_USAGE = (
    "/立项 标题 [说明…]，例如 /立项 盾构管片拼装质量控制 研究错台和破损的成因与对策；"
    "标题含空格时用冒号分开标题和说明。发现相近课题或成果时，确认仍要立项请用 /立项! 标题 说明"
)


@router.command(
    "propose",
    "立项",
    "提出课题",
    summary="提出联合攻关课题（先查重，再征集其他工作室附议）",
    usage=PROPOSE_USAGE,
    role=Role.STUDIO_LEAD,
)
async def handle_propose(ctx: Context) -> str:
    """Propose a topic; near-duplicates are shown first and need ``/propose!`` to go ahead."""
    args = ctx.args
    confirmed = False
    if args.startswith(("!", "！")):
        confirmed, args = True, args[1:].strip()
    return await _propose(ctx, args, confirmed=confirmed)


@router.command(
    "propose!",
    "立项!",
    summary="确认立项（已看过相近课题和成果）",
    usage="/立项! 标题 [说明…]",
    role=Role.STUDIO_LEAD,
    hidden=True,
)
async def handle_propose_confirmed(ctx: Context) -> str:
    """Propose a topic even though similar ones exist."""
    return await _propose(ctx, ctx.args, confirmed=True)


async def _propose(ctx: Context, args: str, *, confirmed: bool) -> str:
    studio, args = await choose_studio(ctx, args)
    title, description = split_title(args)
    if not title:
        raise UsageError("请写上课题标题。")
    if len(title) < MIN_TITLE:
        raise UsageError(
            f"课题标题「{title}」太短，请至少写 {MIN_TITLE} 个字，说清攻关对象，例如「盾构管片拼装质量控制」。"
        )
    if len(title) > MAX_TITLE or len(description) > MAX_TEXT:
        raise UsageError(f"标题请不超过 {MAX_TITLE} 字，说明不超过 {MAX_TEXT} 字。")
    service = service_of(ctx)
    if not confirmed:
        matches = await ctx.runtime.feature(AchievementService).similar(f"{title}\n{description}", title=title)
        close = [m for m in matches if m.score >= NEAR_DUPLICATE]
        if close:
            lines = [f"发现与「{title}」相近的课题或成果，请先看看是否已有人在做："]
            lines.extend(describe(close))
            lines.append(
                "如可合作，可发送 /附议 或 /加入攻关 加入已有课题；"
                f"确认仍要单独立项，请发送：/立项! {args}；不发送即视为撤回。"
            )
            return "\n".join(lines)
    topic, approved = await service.propose(
        title=title, description=description, studio=studio, user_id=ctx.caller.user_id
    )
    if approved is not None:
        return f"已立项课题 {topic_label(topic)}（{studio.name}）。"
    deadline = service.local(topic.deadline)
    return (
        f"已提出课题 {topic_label(topic)}，提出方：{studio.name}。\n"
        f"需 {service.quorum} 个工作室支持（含本工作室）方可立项，征集截止 {deadline.year}年{cn_day(deadline)}"
        f"（截止前 3 天会提醒您）。\n已在联盟群征集附议；其他工作室负责人发送 /附议 T-{topic.id} 即可支持。"
    )


@router.command(
    "support",
    "附议",
    summary="附议其他工作室提出的课题",
    usage="/附议 课题编号 [@工作室]，例如 /附议 T-3",
    role=Role.STUDIO_LEAD,
)
async def handle_support(ctx: Context) -> str:
    """Back a proposed topic for the caller's studio."""
    if not ctx.args.strip():
        raise UsageError()
    topic = await topic_or_error(ctx, ctx.args)
    studio, _ = await choose_studio(ctx, _rest(ctx.args))
    service = service_of(ctx)
    if topic.state != TopicStatus.PROPOSED:
        if topic.state == TopicStatus.APPROVED:
            raise UserError(
                f"课题 {topic_label(topic)}已经立项，无需附议；如想参与，请发送 /加入攻关 T-{topic.id}。"
            )
        raise UserError(f"课题 {topic_label(topic)}{topic.state.label}，不能再附议。")
    if topic.deadline <= ctx.runtime.clock.now():
        raise UserError(
            f"课题 {topic_label(topic)}的附议征集已于 {cn_day(service.local(topic.deadline))} 截止。"
        )
    if studio.id == topic.studio_id:
        raise UserError("这是您工作室自己提出的课题，无需附议；请邀请其他工作室的负责人附议。")
    result = await service.support(topic, studio=studio, user_id=ctx.caller.user_id)
    if not result.added:
        return f"{studio.name}已经附议过课题 {topic_label(topic)}（目前 {result.count}/{service.quorum}）。"
    if result.approved is not None:
        return (
            f"附议成功！课题 {topic_label(topic)}已获 {result.count} 个工作室支持，正式立项，已在联盟群公布。"
        )
    return f"附议成功：{studio.name}支持课题 {topic_label(topic)}，目前 {result.count}/{service.quorum} 个工作室支持。"


@router.command(
    "join",
    "加入攻关",
    summary="所在工作室加入已立项课题的攻关团队",
    usage="/加入攻关 课题编号 [@工作室]，例如 /加入攻关 T-3 或 /join T-3（/join 3 不带 T 是报名活动）",
    role=Role.STUDIO_LEAD,
    accepts=is_topic_ref,
)
async def handle_join_topic(ctx: Context) -> str:
    """Put the caller's studio on an approved topic's team."""
    if not ctx.args.strip():
        raise UsageError()
    topic = await topic_or_error(ctx, ctx.args)
    studio, _ = await choose_studio(ctx, _rest(ctx.args))
    if topic.state != TopicStatus.APPROVED:
        raise UserError(_not_active(topic))
    if not await service_of(ctx).join(topic, studio=studio, user_id=ctx.caller.user_id):
        return f"{studio.name}已在课题 {topic_label(topic)}的攻关团队中。"
    return f"{studio.name}已加入课题 {topic_label(topic)}的攻关团队。进展请用 /进展 T-{topic.id} 内容 记录。"


@router.command(
    "progress",
    "进展",
    "攻关进展",
    summary="记录课题攻关进展",
    usage="/进展 课题编号 内容，例如 /进展 T-3 完成现场试验段 200 环数据采集",
    role=Role.STUDIO_LEAD,
)
async def handle_progress(ctx: Context) -> str:
    """Record progress on an approved topic (team studios' leads, the proposer, alliance leads, admins)."""
    if not ctx.args.strip():
        raise UsageError()
    topic = await topic_or_error(ctx, ctx.args)
    text = _rest(ctx.args)
    if not text:
        raise UsageError("请写上进展内容。")
    if len(text) > MAX_TEXT:
        raise UsageError(f"进展内容请不超过 {MAX_TEXT} 字。")
    if topic.state != TopicStatus.APPROVED:
        raise UserError(_not_active(topic))
    service = service_of(ctx)
    assert topic.id is not None
    detail = await service.topics.detail(topic.id)
    assert detail is not None
    team = [m.studio_id for m in detail.members]
    studio_id = next((s for s in ctx.caller.studios if s in team), None)
    if studio_id is None and not may_manage(ctx, topic):
        raise UserError(
            f"只有攻关团队的工作室负责人可以记录进展；如想参与，请先发送 /加入攻关 T-{topic.id}。"
        )
    await service.topics.add_progress(
        TopicProgress(
            topic_id=topic.id,
            user_id=ctx.caller.user_id,
            studio_id=studio_id,
            text=text,
            created_at=ctx.runtime.clock.now(),
        )
    )
    count = await service.topics.progress_count(topic.id)
    return f"已记录课题 {topic_label(topic)}的第 {count} 条进展。"


@router.command(
    "withdraw",
    "撤回课题",
    summary="撤回自己提出、尚未立项的课题",
    usage="/撤回课题 课题编号 [原因]，例如 /撤回课题 T-3 与 T-2 重复",
    role=Role.STUDIO_LEAD,
)
async def handle_withdraw(ctx: Context) -> str:
    """The proposer (or a lead of its alliance, or an admin) takes back a topic still gathering support."""
    if not ctx.args.strip():
        raise UsageError()
    topic = await topic_or_error(ctx, ctx.args)
    reason = _rest(ctx.args)[:MAX_TEXT]
    if not may_manage(ctx, topic):
        raise UserError("只有课题提出人、本联盟负责人或管理员可以撤回课题。")
    if topic.state != TopicStatus.PROPOSED:
        raise UserError(f"课题 {topic_label(topic)}{topic.state.label}，只有征集附议中的课题可以撤回。")
    withdrawn = await service_of(ctx).withdraw(topic, reason=reason)
    if withdrawn is None:
        raise UserError(f"课题 {topic_label(topic)}刚刚状态已变，未能撤回。发送 /课题 T-{topic.id} 查看。")
    return f"已撤回课题 {topic_label(withdrawn)}，已通知本联盟群和已附议的工作室。"


@router.command(
    "conclude",
    "结题",
    summary="课题结题（可随后登记为创新成果）",
    usage="/结题 课题编号 成果简述，例如 /结题 T-3 形成管片拼装质量控制工法一套",
    role=Role.STUDIO_LEAD,
)
async def handle_conclude(ctx: Context) -> str:
    """Close an approved topic and offer to register its result as an achievement."""
    if not ctx.args.strip():
        raise UsageError()
    topic = await topic_or_error(ctx, ctx.args)
    text = _rest(ctx.args)
    if not text:
        raise UsageError("请写上结题成果简述。")
    if len(text) > MAX_TEXT:
        raise UsageError(f"成果简述请不超过 {MAX_TEXT} 字。")
    if not may_manage(ctx, topic):
        raise UserError("只有课题提出人、本联盟负责人或管理员可以结题。")
    if topic.state != TopicStatus.APPROVED:
        raise UserError(_not_active(topic))
    service = service_of(ctx)
    closed = await service.conclude(topic, text=text)
    if closed is None:
        raise UserError(f"课题 {topic_label(topic)}刚刚已被结题。")
    assert closed.id is not None
    detail = await service.topics.detail(closed.id)
    assert detail is not None
    team = " ".join(m.studio_id for m in detail.members)
    year = ctx.runtime.local_now().year
    return (
        f"课题 {topic_label(closed)}已结题，已通知攻关团队所在联盟。\n"
        f"如需登记为创新成果，请发送（类型可选：发明专利、实用新型专利、工法、QC成果、科技进步奖、职工技术创新成果、管理创新成果）：\n"
        f"/成果 登记 工法 {closed.title} {team} {year} #T-{closed.id}"
    )


@router.command(
    "topics",
    "课题列表",
    "课题",
    summary="查看联合攻关课题（可按联盟或只看本工作室）",
    usage="/课题列表 [联盟|我的]，例如 /课题列表 隧道、/课题列表 我的；/课题 T-3 查看详情",
)
async def handle_topics(ctx: Context) -> str:
    """Topics gathering support and in progress; an alliance's, or the caller's studios' (all states)."""
    word = ctx.args.strip()
    if word and parse_topic_ref(word) is not None:
        return await _details(ctx, word)
    service = service_of(ctx)
    store = ctx.runtime.store
    if not word:
        topics = await service.topics.all(statuses=[TopicStatus.PROPOSED, TopicStatus.APPROVED])
        heading = "进行中的联合攻关课题"
    elif word.lower() in _MINE:
        if not ctx.caller.studios:
            raise UserError("您没有负责的工作室，没有“我的课题”。发送 /课题列表 查看全部进行中的课题。")
        topics = await service.topics.all(studio_ids=ctx.caller.studios)
        heading = "本工作室参与的课题"
    else:
        alliance = await store.alliances.find(word)
        if alliance is None:
            names = "、".join(a.name for a in await store.alliances.all())
            raise UserError(f"没有找到联盟「{word}」。现有联盟：{names}")
        topics = await service.topics.all(alliance_id=alliance.id)
        heading = f"{alliance.name}的课题"
    if not topics:
        return f"{heading}：暂无。工作室负责人可发送 /立项 标题 说明 提出课题。"
    studios = await service.studio_names()
    counts = await service.topics.support_counts(t.id for t in topics if t.id is not None)
    lines = [f"{heading}（{len(topics)} 个）："]
    for topic in topics[:30]:
        assert topic.id is not None
        extra = ""
        if topic.state == TopicStatus.PROPOSED:
            extra = f"，附议 {counts.get(topic.id, 0)}/{service.quorum}，{cn_day(service.local(topic.deadline))}截止"
        lines.append(
            f"· {topic_label(topic)} {studio_list([topic.studio_id], studios)}｜{topic.state.label}{extra}"
        )
    if len(topics) > 30:
        lines.append(f"……另有 {len(topics) - 30} 个未列出。")
    lines.append("发送 /课题 T-编号 查看详情。")
    return "\n".join(lines)


def parse_topic_ref(word: str) -> int | None:
    """The topic number in ``word``, or None."""
    match = _TOPIC_ID.match(fold(word.split(maxsplit=1)[0]))
    return int(match.group(1)) if match else None


@router.command("topic", "课题详情", summary="查看一个课题的详情", usage="/课题 T-编号，例如 /课题 T-3")
async def handle_topic(ctx: Context) -> str:
    """One topic: status, supporters, team, progress, conclusion."""
    if not ctx.args.strip():
        raise UsageError()
    return await _details(ctx, ctx.args)


async def _details(ctx: Context, args: str) -> str:
    topic = await topic_or_error(ctx, args)
    service = service_of(ctx)
    assert topic.id is not None
    detail = await service.topics.detail(topic.id)
    assert detail is not None
    studios = await service.studio_names()
    created = service.local(topic.created_at)
    lines = [
        f"课题 {topic_label(topic)}",
        f"状态：{topic.state.label}",
        f"提出：{studio_list([topic.studio_id], studios)}，{created.year}年{cn_day(created)}",
    ]
    if topic.description:
        lines.append(f"说明：{topic.description}")
    supporters = [s.studio_id for s in detail.supports]
    lines.append(f"附议工作室（{len(supporters)}/{service.quorum}）：{studio_list(supporters, studios)}")
    if topic.state == TopicStatus.PROPOSED:
        lines.append(f"征集截止：{cn_day(service.local(topic.deadline))}；支持请发送 /附议 T-{topic.id}")
    if detail.members:
        lines.append(f"攻关团队：{studio_list([m.studio_id for m in detail.members], studios)}")
    if detail.progress:
        lines.append("最近进展：")
        for entry in detail.progress:
            when = service.local(entry.created_at)
            who = studio_list([entry.studio_id], studios) if entry.studio_id else entry.user_id
            lines.append(f"  {cn_day(when)} {who}：{entry.text}")
    if topic.state == TopicStatus.CONCLUDED:
        lines.append(f"结题：{topic.conclusion}")
    if topic.achievement_id is not None:
        lines.append(f"已登记成果：#{topic.achievement_id}（/成果 {topic.achievement_id}）")
    lines.extend(await topic_chain_lines(ctx.runtime, topic.id, topic.achievement_id))  # topic → results → benefit
    return "\n".join(lines)


# -- setup -----------------------------------------------------------------------------------------


async def _sweep(runtime: Runtime, now: datetime) -> str:
    return await runtime.feature(TopicService).sweep(now)


async def setup(bot: BotApp) -> None:
    """Register the topic commands, the topics service and the quorum sweep."""
    bot.runtime.add_feature(TopicService(bot.runtime))
    bot.add_router(router)
    bot.jobs.add(
        SWEEP_JOB,
        CronTrigger(minute="7,37", timezone=bot.settings.tz),
        _sweep,
        description="课题附议：到期未达人数的失效，截止前 3 天提醒提出人",
    )
