"""The topics feature's logic: joint research topics from proposal to conclusion.

Registered as a feature service (``runtime.feature(TopicService)``). Approval happens when a support brings a
topic to ``BOT_TOPIC_QUORUM`` studios; the ``topics-quorum-sweep`` job lets topics lapse at their deadline,
reminds proposers three days before it, and approves topics whose quorum was reached otherwise (e.g. after the
quorum setting was lowered). Every state change is a conditional update that exactly one caller wins, and every
message carries a dedupe key, so a retry or a second process never announces twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.runtime import Runtime
from bot.store.studios import Studio
from bot.store.topics import Topic, TopicRepo

log = logging.getLogger(__name__)

SWEEP_JOB = "topics-quorum-sweep"
REMIND_BEFORE = timedelta(days=3)


def topic_label(topic: Topic) -> str:
    """``#T-3「盾构管片拼装质量控制」``."""
    return f"#T-{topic.id}「{topic.title}」"




def cn_day(when: datetime) -> str:
    """``12月8日``."""
    return f"{when.month}月{when.day}日"


@dataclass(slots=True, frozen=True)
class SupportResult:
    """What a support did: how many studios back the topic now, and whether this approved it."""

    added: bool
    count: int
    approved: Topic | None


class TopicService:
    """Topics from proposal to conclusion, with the announcements they cause."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.topics = TopicRepo(runtime.store.sessions)

    @property
    def quorum(self) -> int:
        """How many studios (proposer included) must back a topic."""
        return self.runtime.settings.topic_quorum

    @property
    def window(self) -> timedelta:
        """How long a topic gathers support."""
        return timedelta(days=self.runtime.settings.topic_days)

    def local(self, when: datetime) -> datetime:
        """``when`` in the configured time zone."""
        return when.astimezone(self.runtime.settings.tz)

    async def studio_names(self) -> dict[str, Studio]:
        """Every studio by id."""
        return {s.id: s for s in await self.runtime.store.studios.all()}

    async def propose(
        self, *, title: str, description: str, studio: Studio, user_id: str
    ) -> tuple[Topic, Topic | None]:
        """Create a topic for ``studio``; the second value is the topic again if a quorum of one approved it."""
        now = self.runtime.clock.now()
        topic = await self.topics.create(
            Topic(
                title=title,
                description=description,
                studio_id=studio.id,
                alliance_id=studio.alliance_id,
                proposer=user_id,
                created_at=now,
                deadline=now + self.window,
            ),
            user_id=user_id,
        )
        approved = await self._approve_if_quorum(topic, now) if self.quorum <= 1 else None
        if approved is None:
            await self.runtime.outbox.announce(
                topic.alliance_id,
                f"【课题征集附议】{studio.name}提出联合攻关课题 {topic_label(topic)}"
                + (f"：{description}" if description else "")
                + f"\n需 {self.quorum} 个工作室支持（含提出方），截止 {cn_day(self.local(topic.deadline))}。"
                f"其他工作室负责人发送 /附议 T-{topic.id} 即可支持。",
                dedupe_key=f"topic:{topic.id}:proposed",
                meta={"card": "topic", "topic": str(topic.id)},  # a 附议 button where cards are shown
            )
        return topic, approved

    async def support(self, topic: Topic, *, studio: Studio, user_id: str) -> SupportResult:
        """Add a studio's support and approve the topic when it reaches the quorum."""
        assert topic.id is not None
        now = self.runtime.clock.now()
        added = await self.topics.add_support(topic.id, studio_id=studio.id, user_id=user_id, at=now)
        count = (await self.topics.support_counts([topic.id])).get(topic.id, 0)
        approved = None
        if added:
            approved = await self._approve_if_quorum(topic, now, count=count)
            if approved is None:
                await self.runtime.outbox.notify_user(
                    topic.proposer,
                    f"{studio.name}附议了您的课题 {topic_label(topic)}，目前 {count}/{self.quorum} 个工作室支持。",
                    dedupe_key=f"topic:{topic.id}:support:{studio.id}",
                )
        return SupportResult(added, count, approved)

    async def _approve_if_quorum(
        self, topic: Topic, now: datetime, *, count: int | None = None
    ) -> Topic | None:
        assert topic.id is not None
        if count is None:
            count = (await self.topics.support_counts([topic.id])).get(topic.id, 0)
        if count < self.quorum:
            return None
        approved = await self.topics.approve(topic.id, at=now)
        if approved is not None:
            await self._announce_approval(approved)
        return approved

    async def _announce_approval(self, topic: Topic) -> None:
        assert topic.id is not None
        detail = await self.topics.detail(topic.id)
        assert detail is not None
        studios = await self.studio_names()
        team = [studios[m.studio_id] for m in detail.members if m.studio_id in studios]
        names = "、".join(s.name for s in team)
        text = (
            f"【联合攻关立项】课题 {topic_label(topic)}已获 {len(detail.supports)} 个工作室支持，正式立项。\n"
            f"攻关团队：{names}\n其他工作室可发送 /加入攻关 T-{topic.id} 加入；进展请用 /进展 T-{topic.id} 内容 记录。"
        )
        for alliance_id in _unique(s.alliance_id for s in team) or [topic.alliance_id]:
            await self.runtime.outbox.announce(alliance_id, text, dedupe_key=f"topic:{topic.id}:approved")
        await self.runtime.outbox.notify_user(
            topic.proposer,
            f"好消息：您的课题 {topic_label(topic)}已正式立项。",
            dedupe_key=f"topic:{topic.id}:approved:proposer",
        )

    async def join(self, topic: Topic, *, studio: Studio, user_id: str) -> bool:
        """Put a studio on an approved topic's team; False if it already is."""
        assert topic.id is not None
        added = await self.topics.add_member(
            topic.id, studio_id=studio.id, user_id=user_id, at=self.runtime.clock.now()
        )
        if added:
            await self.runtime.outbox.notify_user(
                topic.proposer,
                f"{studio.name}加入了课题 {topic_label(topic)}的攻关团队。",
                dedupe_key=f"topic:{topic.id}:joined:{studio.id}",
            )
        return added

    async def conclude(self, topic: Topic, *, text: str) -> Topic | None:
        """Close an approved topic and tell the team's alliances; None if it was not approved any more."""
        assert topic.id is not None
        closed = await self.topics.conclude(topic.id, text=text, at=self.runtime.clock.now())
        if closed is None:
            return None
        detail = await self.topics.detail(topic.id)
        assert detail is not None
        studios = await self.studio_names()
        alliances = _unique(
            studios[m.studio_id].alliance_id for m in detail.members if m.studio_id in studios
        )
        for alliance_id in alliances or [closed.alliance_id]:
            await self.runtime.outbox.announce(
                alliance_id,
                f"【课题结题】{topic_label(closed)}：{text}",
                dedupe_key=f"topic:{topic.id}:concluded",
            )
        return closed

    async def withdraw(self, topic: Topic, *, reason: str) -> Topic | None:
        """Withdraw a topic still gathering support and tell the groups that were asked to support it, and
        the studios that already did; None if it was not proposed any more."""
        assert topic.id is not None
        withdrawn = await self.topics.withdraw(topic.id, reason=reason, at=self.runtime.clock.now())
        if withdrawn is None:
            return None
        why = f"（{reason}）" if reason else ""
        await self.runtime.outbox.announce(
            withdrawn.alliance_id,
            f"【课题撤回】{topic_label(withdrawn)}已由提出方撤回{why}，不再征集附议。",
            dedupe_key=f"topic:{topic.id}:withdrawn",
        )
        detail = await self.topics.detail(topic.id)
        for supporter in _unique(s.user_id for s in detail.supports) if detail else []:
            if supporter != withdrawn.proposer:
                await self.runtime.outbox.notify_user(
                    supporter,
                    f"您附议的课题 {topic_label(withdrawn)}已由提出方撤回{why}。",
                    dedupe_key=f"topic:{topic.id}:withdrawn:{supporter}",
                )
        return withdrawn

    # -- the sweep -------------------------------------------------------------------------------

    async def sweep(self, now: datetime) -> str:
        """Approve topics at quorum, let overdue ones lapse, remind proposers three days before the deadline."""
        approved = lapsed = reminded = 0
        topics = await self.topics.proposed()
        counts = await self.topics.support_counts(t.id for t in topics if t.id is not None)
        for topic in topics:
            assert topic.id is not None
            count = counts.get(topic.id, 0)
            if count >= self.quorum:  # supports arrive before the deadline only
                if await self._approve_if_quorum(topic, now, count=count) is not None:
                    approved += 1
            elif topic.deadline <= now:
                closed = await self.topics.lapse(topic.id, at=now)
                if closed is not None:
                    lapsed += 1
                    await self.runtime.outbox.notify_user(
                        topic.proposer,
                        f"您的课题 {topic_label(topic)}在 {self.runtime.settings.topic_days} 天内获得 "
                        f"{count}/{self.quorum} 个工作室支持，未达到立项要求，已失效。如需继续，可修改后重新 /立项。",
                        dedupe_key=f"topic:{topic.id}:lapsed",
                    )
            elif topic.deadline - REMIND_BEFORE <= now and topic.reminded_at is None:
                if await self.topics.mark_reminded(topic.id, at=now):
                    reminded += 1
                    await self.runtime.outbox.notify_user(
                        topic.proposer,
                        f"提醒：您的课题 {topic_label(topic)}将于 {cn_day(self.local(topic.deadline))} "
                        f"截止征集附议，目前 {count}/{self.quorum} 个工作室支持，还差 {self.quorum - count} 个。"
                        f"可请其他工作室负责人发送 /附议 T-{topic.id}。",
                        dedupe_key=f"topic:{topic.id}:reminder",
                    )
        return f"approved {approved}, lapsed {lapsed}, reminded {reminded}"


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
