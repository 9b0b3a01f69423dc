"""The problems feature's service: log technical problems, route them to studios and follow them until solved.

Registered as a feature service (``runtime.feature(ProblemService)``). It keeps one ``RoutingIndex`` built from
the studios table and the solved problems; the index is refreshed cheaply before use (a roster import changes
the studios' signature, another process's solve changes the solved-problems signature) and updated
incrementally when this process solves or reopens a problem, so history never needs a full rebuild.

Scheduled jobs: ``problems-escalation`` (every 10 minutes) asks the next-ranked studio about a problem nobody
claimed within ``BOT_CLAIM_HOURS`` and tells the alliance lead; ``problems-digest`` (09:00) posts each alliance's
problems open for more than a day to its groups. A studio asked ``BOT_STUDIO_DAILY_CAP`` times in a local day is
skipped for further problems that day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import col, select

from bot.core.dispatcher import Caller, Role
from bot.core.messages import Outbound, Target, TargetKind
from bot.core.middleware import DATABASE_ERRORS, is_outage
from bot.core.runtime import Runtime
from bot.routing import Judgement, RoutingIndex, SimilarMatch, SolvedProblem, StudioDoc, StudioMatch, judge
from bot.routing.semantic import Embedder, load_embedder
from bot.routing.text import use_cache_dir
from bot.settings import Settings
from bot.store import Store
from bot.store.feedback import FeedbackRepo, ProblemFeedback
from bot.store.problems import (
    ACTIVE,
    UNCLAIMED,
    Problem,
    ProblemRepo,
    ProblemStatus,
)
from bot.store.studios import Alliance, MemberRole, Studio

log = logging.getLogger(__name__)

ESCALATION_JOB = "problems-escalation"
DIGEST_JOB = "problems-digest"
TODO_JOB = "problems-todo"
RECOMMEND = 3
MAX_TEXT = 2000
REPOST_DAYS = 14  # a question re-posted within this many days while the first is open links to it
REPOST_CANDIDATES = 100
DIGEST_AGE = timedelta(days=1)
# How long the routing index is trusted before it is checked against the database again (seconds).
FRESH_FOR = 5.0
# Up to this many solved problems the index is built before the first answer; more are read in the background.
BUILD_INLINE = 2000


# -- labels ----------------------------------------------------------------------------------------


def short(text: str, limit: int = 40) -> str:
    """The text on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def problem_label(problem: Problem, limit: int = 40) -> str:
    """``#5「盾构掘进时土压波动大…」``."""
    return f"#{problem.id}「{short(problem.text, limit)}」"


def studio_label(studio: Studio | None, studio_id: str | None) -> str:
    """``盾构掘进控制劳模创新工作室（T1）``, or the bare id for an unknown studio."""
    if studio is None:
        return studio_id or "—"
    return f"{studio.name}（{studio.id}）"


def cn_time(when: datetime, tz: ZoneInfo) -> str:
    """``11月24日 10:00`` in the configured time zone."""
    local = when.astimezone(tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def local_day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar day containing ``now``: its start and the next day's start."""
    day = now.astimezone(tz).date()
    return datetime.combine(day, time(), tzinfo=tz), datetime.combine(
        day + timedelta(days=1), time(), tzinfo=tz
    )


# -- who may do what (chat commands and the web console ask the same questions) -------------------


def leads_alliance(caller: Caller, problem: Problem) -> bool:
    """An admin, or a lead of the problem's alliance."""
    return caller.at_least(Role.ADMIN) or (
        caller.at_least(Role.ALLIANCE_LEAD) and problem.alliance_id in caller.alliances
    )


def close_refusal(caller: Caller, problem: Problem) -> str | None:
    """Why ``caller`` may not close ``problem`` (None: they may): the asker, a lead of its alliance or an admin."""
    if caller.user_id == problem.asker or leads_alliance(caller, problem):
        return None
    return "只有提问人、本联盟负责人或管理员可以关闭问题。"


def reopen_refusal(caller: Caller, problem: Problem) -> str | None:
    """Why ``caller`` may not reopen ``problem`` (None: they may): the same people who may close it."""
    if caller.user_id == problem.asker or leads_alliance(caller, problem):
        return None
    return "只有提问人、本联盟负责人或管理员可以重新打开问题。"


def transfer_refusal(caller: Caller, problem: Problem, studio: Studio | None = None) -> str | None:
    """Why ``caller`` may not hand ``problem`` to ``studio`` (None: they may): an admin, or an alliance lead of the
    problem's alliance or of the receiving studio's. Without ``studio``: whether they may transfer it at all."""
    if caller.at_least(Role.ADMIN):
        return None
    refusal = "只有本问题所属联盟（或接手工作室所属联盟）的负责人或管理员可以转派。"
    if not caller.at_least(Role.ALLIANCE_LEAD):
        return refusal
    if problem.alliance_id in caller.alliances:
        return None
    if studio is None:
        return None if caller.alliances else refusal
    return None if studio.alliance_id in caller.alliances else refusal


# -- routing from the store ------------------------------------------------------------------------


def studio_doc(studio: Studio, alliance: Alliance | None) -> StudioDoc:
    """A studio as routing sees it; the alliance's id and name hint at the discipline."""
    alliance_text = f"{studio.alliance_id} {alliance.name}" if alliance else studio.alliance_id
    return StudioDoc(
        id=studio.id,
        name=studio.name,
        alliance=alliance_text,
        expertise=tuple(studio.expertise),
        description=studio.description,
        type=studio.type,
        unit=studio.unit,
    )


def solved_problem(problem: Problem) -> SolvedProblem:
    """A solved problem as routing history."""
    assert problem.id is not None and problem.studio_id is not None
    return SolvedProblem(
        id=problem.id, ref=problem.ref, studio_id=problem.studio_id, text=problem.text, answer=problem.answer
    )


async def studio_docs(store: Store) -> list[StudioDoc]:
    """Every studio of the roster as a routing document."""
    alliances = {a.id: a for a in await store.alliances.all()}
    return [studio_doc(s, alliances.get(s.alliance_id)) for s in await store.studios.all()]


def embedder_for(settings: Settings) -> Embedder | None:
    """The sentence embedder routing uses, or None where it is switched off or cannot load; routing's caches
    (tokenizer, vectors) are kept under the data directory."""
    use_cache_dir(settings.effective_data_dir)
    if not settings.semantic_routing:
        return None
    return load_embedder(settings.effective_data_dir / "embeddings.sqlite")


async def load_index(store: Store, embedder: Embedder | None = None) -> RoutingIndex:
    """A routing index over the roster and every solved problem in the database (one build); its vectors
    are computed in a worker thread."""
    docs = await studio_docs(store)
    solved = await ProblemRepo(store.sessions).solved()
    index = RoutingIndex(docs, (solved_problem(p) for p in solved), embedder=embedder)
    await asyncio.to_thread(index.prepare)
    return index


def _add_history(index: RoutingIndex, rows: Sequence[tuple[int, str | None, str, str, str]]) -> None:
    """Add a page of ``solved_history`` rows to an index no one else uses yet (runs in a worker thread)."""
    for pid, ref, sid, text, answer in rows:
        index.add_solved(SolvedProblem(id=pid, ref=ref, studio_id=sid, text=text, answer=answer))


def expertise_terms(docs: Iterable[StudioDoc]) -> tuple[str, ...]:
    """The roster's expertise phrases: the judge counts them as domain terms."""
    return tuple(dict.fromkeys(e for d in docs for e in d.expertise))


def route_result(index: RoutingIndex, text: str, *, extra_terms: Sequence[str] = ()) -> dict[str, Any]:
    """The ``alliance-bot route --json`` object for one text (a contract other tools rely on)."""
    return {
        "is_problem": judge(text, extra_terms=extra_terms).is_problem,
        "studios": [
            {"id": m.id, "name": m.name, "score": m.score, "matched": list(m.matched)}
            for m in index.rank(text, limit=RECOMMEND)
        ],
        "similar": [
            {"id": s.id, "ref": s.ref, "score": s.score, "answer": s.answer} for s in index.similar(text)
        ],
    }


# -- the service -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Logged:
    """A newly logged problem: the studios asked (best first), those skipped for the daily cap, and an
    already solved problem asking the same."""

    problem: Problem
    studios: list[StudioMatch]
    capped: list[StudioMatch]
    similar: list[SimilarMatch]
    similar_problems: dict[int, Problem]
    # with no confident match: the alliance leads (or admins) it went to at once
    coordinators: list[str] = field(default_factory=list)


class ProblemService:
    """Problems from logging to solution, with the routing index and the messages each step causes."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.repo = ProblemRepo(runtime.store.sessions, tz=runtime.settings.tz)
        self._index: RoutingIndex | None = None
        self._docs: dict[str, StudioDoc] = {}
        self._terms: tuple[str, ...] = ()
        self._indexed: set[int] = set()
        self._studio_signature: tuple[Any, ...] | None = None
        self._solved_signature: tuple[int, datetime | None] | None = None
        self._lock = asyncio.Lock()
        # When the index was last checked against the database, and the roster generation it saw then.
        self._checked_at = -math.inf
        self._roles_seen: tuple[int, int] = (-1, -1)
        self._studios: dict[str, Studio] | None = None
        self._embedder_cache: Embedder | None = None
        self._embedder_loaded = False
        self._history_task: asyncio.Task[None] | None = None

    def _embedder(self) -> Embedder | None:
        if self._embedder_loaded is False:
            self._embedder_cache = embedder_for(self.runtime.settings)
            self._embedder_loaded = True
        return self._embedder_cache

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return self.runtime.settings.tz

    # -- the routing index ---------------------------------------------------------------------

    async def _studios_signature(self) -> tuple[Any, ...]:
        async with self.runtime.store.sessions() as session:
            row = (await session.exec(select(func.count(), func.max(Studio.updated_at)))).one()
            alliances = (await session.exec(select(func.count(), func.max(Alliance.updated_at)))).one()
        return (*row, *alliances)

    def _fresh(self) -> bool:
        return (
            self._index is not None
            and self._roles_seen == self.runtime.store.roles.value
            and monotonic() - self._checked_at < FRESH_FOR
        )

    async def index(self) -> RoutingIndex:
        """The routing index, brought up to date with the roster and the solved problems.

        Checked against the database at most every ``FRESH_FOR`` seconds (a burst of problems must not pay
        for it each time); at once after a roster import in this process; problems solved here are added as
        they are solved. A large history (more than ``BUILD_INLINE`` solved problems) is read into a fresh
        index in the background while questions are routed on the roster (``history_task``); a roster change
        is applied studio by studio, yielding to the event loop between them.
        """
        if self._fresh():
            assert self._index is not None
            return self._index
        if self._index is not None and self._lock.locked():
            return self._index  # being brought up to date right now: answer on what is there
        async with self._lock:
            if self._fresh():
                assert self._index is not None
                return self._index
            roles_seen = self.runtime.store.roles.value
            store = self.runtime.store
            signature = await self._studios_signature()
            if self._index is None or signature != self._studio_signature:
                docs = {d.id: d for d in await studio_docs(store)}
                changed = [d for sid, d in docs.items() if self._docs.get(sid) != d]
                removed = set(self._docs) - set(docs)
                self._terms = expertise_terms(docs.values())
                self._studios = {s.id: s for s in await store.studios.all()}
                if self._index is None or removed:
                    await self._rebuild(docs, signature)
                else:
                    for _ in self._index.upsert_studios(changed):
                        await asyncio.sleep(0)  # 5-20 ms a studio: a whole roster never holds the loop
                    self._docs = docs
                    self._studio_signature = signature
            if not self.building:
                solved_signature = await self.repo.solved_signature()
                if solved_signature != self._solved_signature:
                    await self._sync_solved()
                    self._solved_signature = solved_signature
            self._studios = {s.id: s for s in await store.studios.all()}
            assert self._index is not None
            await asyncio.to_thread(self._index.prepare, wait=False)
            self._checked_at, self._roles_seen = monotonic(), roles_seen
            return self._index

    async def ready(self) -> None:
        """Until the routing index is complete: built on the roster, and any large history read into it (the
        start-up warm-up; ``/healthz`` lists it under ``warming`` meanwhile). While the database is unavailable
        it tries again, every 1 s growing to 30 s: the first problem after the outage builds it anyway."""
        delay = 1.0
        while True:
            try:
                await self.index()
                break
            except DATABASE_ERRORS as exc:
                if not is_outage(exc):
                    raise
                log.warning(
                    "routing index: the database is unavailable (%s); trying again in %g s",
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        while (task := self._history_task) is not None and not task.done():
            await asyncio.shield(task)

    @property
    def building(self) -> bool:
        """Whether a large history is being read into a fresh index in the background."""
        return self._history_task is not None and not self._history_task.done()

    async def _rebuild(self, docs: dict[str, StudioDoc], signature: tuple[Any, ...]) -> None:
        """A new index over ``docs``: with a small history at once, with a large one on the roster first while
        the history is read into another index in the background and swapped in when complete."""
        if self._history_task is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._history_task
            self._history_task = None
        embedder = self._embedder()
        count, _ = await self.repo.solved_signature()
        roster = await asyncio.to_thread(RoutingIndex, list(docs.values()), embedder=embedder)
        self._index, self._indexed, self._solved_signature = roster, set(), None
        self._docs, self._studio_signature = docs, signature
        if count <= BUILD_INLINE:
            await self._sync_solved()
            return
        self._history_task = asyncio.create_task(
            self._read_history(docs, signature, count), name="routing-history"
        )

    async def _read_history(self, docs: dict[str, StudioDoc], signature: tuple[Any, ...], count: int) -> None:
        """Read every solved problem into a fresh index a page at a time (the analysis in a worker thread, so the
        event loop keeps answering), then swap it in; solves made meanwhile are caught up by the next check."""
        started = monotonic()
        log.info("routing index: reading %d solved problems in the background", count)
        full = await asyncio.to_thread(RoutingIndex, list(docs.values()), embedder=self._embedder())
        indexed: set[int] = set()
        after, reported = 0, 0
        while True:
            page = await self.repo.solved_history(after=after)
            if not page:
                break
            await asyncio.to_thread(_add_history, full, page)
            indexed.update(row[0] for row in page)
            after = page[-1][0]
            if len(indexed) - reported >= 20_000:
                reported = len(indexed)
                log.info("routing index: %d of %d solved problems read", reported, count)
        async with self._lock:
            self._index, self._indexed = full, indexed
            self._docs, self._studio_signature, self._solved_signature = docs, signature, None
            self._checked_at = -math.inf  # catch up with solves and roster changes made meanwhile
        log.info("routing index: %d solved problems in %.1f s", len(indexed), monotonic() - started)
        await asyncio.to_thread(full.prepare)  # sentence vectors of the history, as long as that takes

    async def stop_indexing(self) -> None:
        """Stop reading the history (shutdown)."""
        if self._history_task is not None:
            self._history_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._history_task

    async def _sync_solved(self) -> None:
        assert self._index is not None
        current = await self.repo.solved_ids()
        for problem_id in self._indexed - current:
            self._index.remove_solved(problem_id)
        missing = sorted(current - self._indexed)
        for start in range(0, len(missing), 50):
            for problem in await self.repo.by_ids(missing[start : start + 50]):
                self._index.add_solved(solved_problem(problem))
            await asyncio.sleep(0)  # ~1 ms a problem: many solved elsewhere never hold the loop
        self._indexed = current

    async def _learn(self, problem: Problem) -> None:
        """Add a problem this process just solved to the index (no rebuild)."""
        if self._index is None or problem.studio_id is None or problem.id is None:
            return
        if self._lock.locked() or self.building:
            self._checked_at = -math.inf  # the index is being updated: the next check catches it up
            return
        async with self._lock:
            self._index.add_solved(solved_problem(problem))
            self._indexed.add(problem.id)
            self._solved_signature = await self.repo.solved_signature()

    async def _forget(self, problem_id: int) -> None:
        """Withdraw a reopened problem from the index."""
        if self._index is None:
            return
        if self._lock.locked() or self.building:
            self._checked_at = -math.inf
            return
        async with self._lock:
            self._index.remove_solved(problem_id)
            self._indexed.discard(problem_id)
            self._solved_signature = await self.repo.solved_signature()

    async def judge(self, text: str) -> Judgement:
        """Is ``text`` a technical problem? The roster's expertise phrases count as domain terms."""
        await self.index()
        return judge(text, extra_terms=self._terms)

    # -- helpers ---------------------------------------------------------------------------------

    async def studios(self) -> dict[str, Studio]:
        """Every studio by id (as fresh as the index)."""
        await self.index()
        assert self._studios is not None
        return self._studios

    async def alliance_of_group(self, group: str | None) -> str | None:
        """The alliance whose configured groups include ``group`` (an app chat id or webhook key from the
        roster's ``announce``, or the alliance's id, name or console group name such as ``隧道联盟群``)."""
        if not group:
            return None
        for alliance in await self.runtime.store.alliances.all():
            announce = alliance.announce or {}
            configured = [
                str(v.get("id", "")) if isinstance(v, dict) else str(v)
                for key in ("appchats", "webhooks", "chats")
                for v in (announce.get(key) or [])
            ]
            if group in configured or group in (alliance.id, alliance.name, f"{alliance.name}群"):
                return alliance.id
        return None

    async def alliance_leads(self, alliance_id: str | None) -> list[str]:
        """Who hears about escalations: the alliance's lead, or the admins when it has none."""
        if alliance_id:
            alliance = await self.runtime.store.alliances.get(alliance_id)
            if alliance is not None and alliance.lead_userid:
                return [alliance.lead_userid]
        return list(self.runtime.settings.admins)

    async def capped_studios(self, now: datetime) -> set[str]:
        """Studios asked ``BOT_STUDIO_DAILY_CAP`` times or more today (local day)."""
        counts = await self.repo.asked_on(now)
        return {sid for sid, count in counts.items() if count >= self.runtime.settings.studio_daily_cap}

    def _ask_text(
        self, problem: Problem, studio: Studio, match: StudioMatch | None, *, escalated: bool
    ) -> str:
        lines = [
            f"【技术问题 #{problem.id} 请求协助】"
            + ("（前序工作室超时未认领，转请贵工作室）" if escalated else ""),
            f"提问人：{problem.asker}" + (f"（群：{problem.group}）" if problem.group else ""),
            f"问题：{problem.text}",
        ]
        if match is not None and match.matched:
            lines.append(f"推荐理由：与{studio.name}的专长匹配（{'、'.join(match.matched)}）")
        lines.append(
            f"如由贵工作室解答，请发送 /认领 {problem.id}，再用 /答复 {problem.id} 答复内容 回复提问人。"
        )
        return "\n".join(lines)

    def _refer_text(self, problem: Problem) -> str:
        return "\n".join(
            [
                f"【技术问题 #{problem.id} 需要协调】花名册中没有专业对口的工作室，请协调合适的工作室处理。",
                f"提问人：{problem.asker}" + (f"（群：{problem.group}）" if problem.group else ""),
                f"问题：{problem.text}",
                f"可由工作室负责人发送 /认领 {problem.id}，或由您代为认领：/认领 {problem.id} @工作室编号。",
            ]
        )

    async def open_duplicate(self, text: str, *, now: datetime) -> Problem | None:
        """An open problem of the last ``REPOST_DAYS`` days that asks the same as ``text``."""
        index = await self.index()
        recent = [
            p
            for p in await self.repo.find(statuses=ACTIVE, limit=REPOST_CANDIDATES)
            if p.created_at >= now - timedelta(days=REPOST_DAYS)
        ]
        texts = [p.text for p in recent]
        await asyncio.to_thread(index.prepare, text, *texts, wait=False)
        position = index.same_question(text, texts)
        return recent[position] if position is not None else None

    # -- logging ---------------------------------------------------------------------------------

    async def log(
        self, text: str, *, asker: str, group: str | None, message_key: str | None = None
    ) -> Logged:
        """Log a problem, ask the best studios (skipping those at today's cap) and notify their leads."""
        index = await self.index()
        await asyncio.to_thread(index.prepare, text, wait=False)  # the model runs off the event loop
        now = self.runtime.clock.now()
        studios = await self.studios()
        capped = await self.capped_studios(now)
        # the asker's own studio is not asked about the asker's problem
        own = {sid for sid, s in studios.items() if s.lead_userid == asker}
        best = [m for m in index.rank(text, limit=RECOMMEND, exclude=own) if m.confident]
        ranked = index.rank(text, limit=RECOMMEND, exclude=own | capped) if capped else best
        # only studios with real evidence are asked: filler studios use up nobody's daily cap
        chosen = [m for m in ranked if m.confident and m.id in studios]
        skipped = [m for m in best if m.id in capped]
        similar = index.similar(text, limit=1)
        alliance_id = await self.alliance_of_group(group)
        if alliance_id is None:
            top = next((studios[m.id] for m in [*best, *chosen] if m.id in studios), None)
            if top is None and (trade := index.trade_studio(text)) in studios:
                top = studios[trade]  # no studio does it, but the question names a trade: its alliance's lead
            alliance_id = top.alliance_id if top else None
        coordinators = [] if chosen else await self.alliance_leads(alliance_id)
        names = "、".join(studio_label(studios[m.id], m.id) for m in chosen)
        events = [("logged", asker, group or "单聊")]
        if chosen:
            events.append(("routed", "system", names))
        elif coordinators:
            events.append(("referred", "system", f"无对口工作室，转 {'、'.join(coordinators)} 协调"))
        problem = await self.repo.create(
            Problem(
                text=text,
                asker=asker,
                group=group,
                alliance_id=alliance_id,
                status=(ProblemStatus.ROUTED if chosen else ProblemStatus.OPEN).value,
                created_at=now,
                routed_at=now if chosen else None,
                message_key=message_key,
            ),
            requests=[(m.id, rank) for rank, m in enumerate(chosen, start=1)],
            events=events,
        )
        await self.runtime.outbox.send(
            *(
                Outbound(
                    Target(TargetKind.USER, studios[match.id].lead_userid),
                    self._ask_text(problem, studios[match.id], match, escalated=False),
                    dedupe_key=f"problem:{problem.id}:ask:{match.id}",
                    # channels with cards show buttons for the typed commands (bot.channels.wecom.cards)
                    meta={"card": "problem", "problem": str(problem.id)},
                )
                for match in chosen
            ),
            *(
                Outbound(
                    Target(TargetKind.USER, lead),
                    self._refer_text(problem),
                    dedupe_key=f"problem:{problem.id}:refer:{lead}",
                )
                for lead in coordinators
            ),
        )
        similar_problems = {
            p.id: p for p in await self.repo.by_ids(s.id for s in similar) if p.id is not None
        }
        return Logged(problem, chosen, skipped, similar, similar_problems, coordinators)

    # -- lifecycle -------------------------------------------------------------------------------

    async def claim(self, problem: Problem, *, studio: Studio, user_id: str) -> Problem | None:
        """A studio takes an unclaimed problem; None if it was taken (or ended) meanwhile."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        claimed = await self.repo.transition(
            problem.id,
            from_statuses=UNCLAIMED,
            values={
                "status": ProblemStatus.CLAIMED.value,
                "studio_id": studio.id,
                "claimed_by": user_id,
                "claimed_at": now,
            },
            action="claimed",
            actor=user_id,
            at=now,
            detail=studio_label(studio, studio.id),
        )
        if claimed is None:
            return None
        await self.repo.settle_requests(problem.id, claimed_by=studio.id)
        await self._tell_about_claim(claimed, studio=studio, user_id=user_id, at=now)
        if claimed.asker != user_id:
            await self.runtime.outbox.notify_user(
                claimed.asker,
                f"您的问题 {problem_label(claimed)}已由{studio.name}认领（负责人：{studio.lead_name}），"
                f"答复后会通知您。查看进展：/问题 {claimed.id}",
                dedupe_key=f"problem:{claimed.id}:claimed:{now.isoformat()}",
            )
        return claimed

    async def _tell_about_claim(
        self, problem: Problem, *, studio: Studio, user_id: str, at: datetime
    ) -> None:
        """The studio's lead hears when someone claimed for the studio; the other asked studios, that it is
        taken."""
        assert problem.id is not None
        if studio.lead_userid and studio.lead_userid != user_id:
            await self.runtime.outbox.notify_user(
                studio.lead_userid,
                f"问题 {problem_label(problem)}已由 {user_id} 代{studio.name}认领，请贵工作室答复："
                f"/答复 {problem.id} 答复内容。",
                dedupe_key=f"problem:{problem.id}:claimed-for:{studio.id}:{at.isoformat()}",
            )
        studios = await self.studios()
        for request in await self.repo.requests_of(problem.id):
            other = studios.get(request.studio_id)
            if (
                other is None
                or other.id == studio.id
                or not other.lead_userid
                or other.lead_userid == user_id
            ):
                continue
            await self.runtime.outbox.notify_user(
                other.lead_userid,
                f"问题 {problem_label(problem)}已由{studio.name}认领，贵工作室无需再处理。谢谢！",
                dedupe_key=f"problem:{problem.id}:taken:{other.id}:{at.isoformat()}",
            )

    async def transfer(self, problem: Problem, *, studio: Studio, user_id: str) -> Problem | None:
        """An alliance lead or admin hands an unclaimed or claimed (not yet answered) problem to ``studio``;
        None when it changed meanwhile."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        current = problem
        if problem.state == ProblemStatus.CLAIMED:
            released = await self.repo.transition(
                problem.id,
                from_statuses=(ProblemStatus.CLAIMED,),
                values={"status": ProblemStatus.ROUTED.value, "studio_id": None, "claimed_by": None},
                action="released",
                actor=user_id,
                at=now,
                detail=f"转派前释放（原认领：{problem.studio_id}）",
            )
            if released is None:
                return None
            current = released
        requests = await self.repo.requests_of(problem.id)
        won = await self.repo.escalate(
            problem.id,
            routed_at=current.routed_at,
            studio_id=studio.id,
            rank=max((r.rank for r in requests), default=0) + 1,
            at=now,
            detail=f"转派给 {studio_label(studio, studio.id)}",
            action="transferred",
            actor=user_id,
        )
        if not won:
            return None
        await self.runtime.outbox.notify_user(
            studio.lead_userid,
            self._ask_text(current, studio, None, escalated=False).replace(
                "请求协助】", f"请求协助】（由 {user_id} 转派）", 1
            ),
            dedupe_key=f"problem:{problem.id}:ask:{studio.id}:{now.isoformat()}",
        )
        if current.asker != user_id:
            await self.runtime.outbox.notify_user(
                current.asker,
                f"您的问题 {problem_label(current)}已转请{studio.name}处理。查看进展：/问题 {problem.id}",
                dedupe_key=f"problem:{problem.id}:transferred:{now.isoformat()}",
            )
        return await self.repo.get(problem.id)

    async def answer(self, problem: Problem, *, studio: Studio, user_id: str, text: str) -> Problem | None:
        """The claiming studio answers (again); None if the problem changed hands or ended meanwhile."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        answered = await self.repo.transition(
            problem.id,
            from_statuses=(ProblemStatus.CLAIMED, ProblemStatus.ANSWERED),
            values={
                "status": ProblemStatus.ANSWERED.value,
                "answer": text,
                "answered_by": user_id,
                "answered_at": now,
            },
            action="answered",
            actor=user_id,
            at=now,
            detail=f"{studio.name}：{text}",
            extra_where=[col(Problem.studio_id) == studio.id],
        )
        if answered is None:
            return None
        if answered.asker != user_id:
            await self.runtime.outbox.send(
                Outbound(
                    Target(TargetKind.USER, answered.asker),
                    f"{studio.name}答复了您的问题 {problem_label(answered)}：\n{text}\n"
                    f"如问题已解决，请发送 /解决 {answered.id}；如还没解决，请发送 /未解决 {answered.id} [说明]，"
                    f"也可直接联系{studio.lead_name}。",
                    dedupe_key=f"problem:{answered.id}:answered:{now.isoformat()}",
                    # channels with cards show 已解决 / 还没解决 buttons and 👍/👎 (bot.channels.wecom.cards)
                    meta={"card": "answer", "problem": str(answered.id)},
                )
            )
        return answered

    async def solve(self, problem: Problem, *, user_id: str) -> Problem | None:
        """Mark an active problem solved; a problem with a claiming studio becomes routing history."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        solved = await self.repo.transition(
            problem.id,
            from_statuses=ACTIVE,
            values={"status": ProblemStatus.SOLVED.value, "solved_at": now},
            action="solved",
            actor=user_id,
            at=now,
        )
        if solved is None:
            return None
        await self.repo.settle_requests(problem.id, claimed_by=solved.studio_id)
        await self._learn(solved)
        await self._tell_others(solved, user_id, f"问题 {problem_label(solved)}已标记为解决。", "solved", now)
        await self._tell_group(solved)
        return solved

    async def _tell_group(self, problem: Problem) -> None:
        """The group where a solved problem was asked gets one short line with the answer, once ever (so
        colleagues with the same question see it), where its channel can post to the group."""
        if not (problem.group and problem.studio_id and problem.message_key):
            return
        route = self.runtime.group_targets.get(problem.message_key.split(":", 1)[0])
        if route is None:
            return
        studio = (await self.studios()).get(problem.studio_id)
        name = studio.name if studio is not None else problem.studio_id
        summary = " ".join((problem.answer or "").split())
        if len(summary) > 60:
            summary = summary[:59] + "…"
        line = f"#{problem.id} 已由{name}解决" + (f"：{summary}" if summary else "。")
        await self.runtime.outbox.send(
            Outbound(route(problem.group), line, dedupe_key=f"problem:{problem.id}:solved-in-group")
        )

    async def close(self, problem: Problem, *, user_id: str, reason: str) -> Problem | None:
        """Close an active problem without a solution."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        closed = await self.repo.transition(
            problem.id,
            from_statuses=ACTIVE,
            values={"status": ProblemStatus.CLOSED.value, "closed_at": now, "close_reason": reason},
            action="closed",
            actor=user_id,
            at=now,
            detail=reason,
        )
        if closed is None:
            return None
        await self.repo.settle_requests(problem.id, claimed_by=closed.studio_id)
        text = (
            f"问题 {problem_label(closed)}已关闭（未解决）" + (f"，理由：{reason}" if reason else "") + "。"
        )
        await self._tell_others(closed, user_id, text, "closed", now)
        return closed

    async def reopen(self, problem: Problem, *, user_id: str) -> Problem | None:
        """Reopen a solved or closed problem: back to its studio if it had one, else back to routing."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        was_solved = problem.state == ProblemStatus.SOLVED
        if problem.studio_id:
            status = ProblemStatus.CLAIMED
        elif await self.repo.requests_of(problem.id):
            status = ProblemStatus.ROUTED
        else:
            status = ProblemStatus.OPEN
        reopened = await self.repo.transition(
            problem.id,
            from_statuses=(ProblemStatus.SOLVED, ProblemStatus.CLOSED),
            values={
                "status": status.value,
                "solved_at": None,
                "closed_at": None,
                "close_reason": "",
                "routed_at": now if status != ProblemStatus.CLAIMED else problem.routed_at,
            },
            action="reopened",
            actor=user_id,
            at=now,
        )
        if reopened is None:
            return None
        if was_solved:
            await self._forget(problem.id)
        await self._tell_others(
            reopened, user_id, f"问题 {problem_label(reopened)}已重新打开。", "reopened", now
        )
        return reopened

    async def rate(self, problem: Problem, *, user_id: str, rating: int, event_key: str) -> bool:
        """Record the asker's satisfaction with a problem's answer (1 satisfied, -1 not), once per event; the
        same tally as 👍/👎 on the relayed answer."""
        assert problem.id is not None
        return await FeedbackRepo(self.runtime.store.sessions).record(
            ProblemFeedback(
                problem_id=problem.id,
                user_id=user_id,
                rating=rating,
                event_key=event_key[:255],
                created_at=self.runtime.clock.now(),
            )
        )

    async def unsolved(
        self, problem: Problem, *, user_id: str, note: str, event_key: str
    ) -> tuple[Problem | None, bool]:
        """The asker says the answer did not solve the problem: dissatisfaction is recorded; a solved or closed
        problem is reopened (``reopen``), an active one stays open with a history entry, and the claiming
        studio's lead is told. The problem as it is now (None if it changed meanwhile) and whether it was
        reopened."""
        assert problem.id is not None
        now = self.runtime.clock.now()
        await self.rate(problem, user_id=user_id, rating=-1, event_key=event_key)
        if problem.state.final:
            return await self.reopen(problem, user_id=user_id), True
        await self.repo.add_event(problem.id, action="unsolved", actor=user_id, at=now, detail=note)
        why = f"：{note}" if note else "。"
        await self._tell_others(
            problem,
            user_id,
            f"提问人表示问题 {problem_label(problem)}还没有解决{why}\n"
            f"请继续跟进，可发送 /答复 {problem.id} 补充答复。",
            "unsolved",
            now,
        )
        return await self.repo.get(problem.id), False

    async def _tell_others(self, problem: Problem, actor: str, text: str, action: str, now: datetime) -> None:
        """Tell the asker and the claiming studio's lead about a change someone else made."""
        recipients = [problem.asker]
        if problem.studio_id:
            studio = await self.runtime.store.studios.get(problem.studio_id)
            if studio is not None:
                recipients.append(studio.lead_userid)
        for user in dict.fromkeys(recipients):
            if user != actor:
                await self.runtime.outbox.notify_user(
                    user, text, dedupe_key=f"problem:{problem.id}:{action}:{user}:{now.isoformat()}"
                )

    # -- scheduled work --------------------------------------------------------------------------

    async def escalate_due(self, now: datetime) -> str:
        """Ask the next-ranked studio about problems unclaimed for ``BOT_CLAIM_HOURS`` and tell the lead."""
        hours = self.runtime.settings.claim_hours
        due = await self.repo.due_for_escalation(now - timedelta(hours=hours))
        if not due:
            return "escalated 0"
        index = await self.index()
        studios = await self.studios()
        capped = await self.capped_studios(now)
        cap = self.runtime.settings.studio_daily_cap
        counts = await self.repo.asked_on(now)
        escalated = exhausted = 0
        for problem in due:
            assert problem.id is not None
            requests = await self.repo.requests_of(problem.id)
            asked = {r.studio_id for r in requests}
            candidates = index.rank(problem.text, limit=1, exclude=asked | capped)
            match = candidates[0] if candidates and candidates[0].id in studios else None
            studio = studios[match.id] if match else None
            before = ", ".join(r.studio_id for r in requests if r.outcome == "pending") or "—"
            detail = (
                f"{hours:g} 小时无人认领，转请 {studio_label(studio, studio.id)}（此前：{before}）"
                if studio
                else f"{hours:g} 小时无人认领，已无其他可转请的工作室"
            )
            won = await self.repo.escalate(
                problem.id,
                routed_at=problem.routed_at,
                studio_id=studio.id if studio else None,
                rank=max((r.rank for r in requests), default=0) + 1,
                at=now,
                detail=detail,
            )
            if not won:
                continue
            if studio is not None:
                escalated += 1
                counts[studio.id] = counts.get(studio.id, 0) + 1
                if counts[studio.id] >= cap:
                    capped.add(studio.id)
                await self.runtime.outbox.notify_user(
                    studio.lead_userid,
                    self._ask_text(problem, studio, match, escalated=True),
                    dedupe_key=f"problem:{problem.id}:ask:{studio.id}",
                )
                lead_text = (
                    f"【问题升级】{problem_label(problem)}提出已超过 {hours:g} 小时仍无工作室认领，"
                    f"已转请{studio.name}（负责人：{studio.lead_name}）协助。查看：/问题 {problem.id}"
                )
            else:
                exhausted += 1
                lead_text = (
                    f"【问题升级】{problem_label(problem)}提出已超过 {hours:g} 小时仍无工作室认领，"
                    f"推荐的工作室都已问过，请协调处理。查看：/问题 {problem.id}"
                )
            for lead in await self.alliance_leads(problem.alliance_id):
                await self.runtime.outbox.notify_user(
                    lead, lead_text, dedupe_key=f"problem:{problem.id}:escalated:{lead}:{now.isoformat()}"
                )
        return f"escalated {escalated}, no studio left {exhausted}"

    async def lead_todo(self, now: datetime) -> str:
        """Each studio lead's to-do by direct message: problems their studios were asked to take, and those
        they took and have not answered. Nothing is sent to a lead with nothing to do."""
        local = now.astimezone(self.tz)
        to_claim, to_answer = await self.repo.todo()
        studios = await self.studios()
        leads: dict[str, list[str]] = {}
        for studio in studios.values():
            leads.setdefault(studio.lead_userid, []).append(studio.id)
        for member in await self.runtime.store.members.granted(MemberRole.STUDIO_LEAD.value):
            if member.studio_id in studios:
                leads.setdefault(member.user_id, []).append(member.studio_id)
        sent = 0
        for user_id, studio_ids in sorted(leads.items()):
            claim = _unique_problems(p for s in studio_ids for p in to_claim.get(s, []))
            answer = _unique_problems(p for s in studio_ids for p in to_answer.get(s, []))
            if not claim and not answer:
                continue
            counts = "、".join(
                part
                for part in (
                    f"{len(claim)} 个问题待认领" if claim else "",
                    f"{len(answer)} 个问题待答复" if answer else "",
                )
                if part
            )
            lines = [f"【今日待办】{local.month}月{local.day}日，您有 {counts}："]
            for problem, what in [*((p, "待认领") for p in claim), *((p, "待答复") for p in answer)][:15]:
                days = (now - problem.created_at).days
                age = f"，已 {days} 天" if days else ""
                lines.append(f"· {problem_label(problem, 30)}｜{what}{age}")
            if len(claim) + len(answer) > 15:
                lines.append(f"……另有 {len(claim) + len(answer) - 15} 个，发送 /问题 我的 查看全部。")
            lines.append(
                "认领：/认领 编号；答复：/答复 编号 内容；不属于本工作室专业的可不认领，系统会转请其他工作室。"
            )
            sent += await self.runtime.outbox.notify_user(
                user_id, "\n".join(lines), dedupe_key=f"problems-todo:{user_id}:{local.date().isoformat()}"
            )
        return f"queued {sent} to-do messages"

    async def morning_digest(self, now: datetime) -> str:
        """Each alliance's groups: problems still open more than a day after they were logged."""
        local = now.astimezone(self.tz)
        studios = await self.studios()
        sent = 0
        for alliance in await self.runtime.store.alliances.all():
            problems = await self.repo.find(
                statuses=ACTIVE, alliance_id=alliance.id, created_before=now - DIGEST_AGE
            )
            if not problems:
                continue
            problems.sort(key=lambda p: p.created_at)
            lines = [
                f"【{alliance.name}未解决问题晨报】{local.month}月{local.day}日，超过一天仍未解决 {len(problems)} 个："
            ]
            for problem in problems[:20]:
                days = (now - problem.created_at).days
                who = (
                    f"，{studios[problem.studio_id].name}处理中"
                    if problem.studio_id and problem.studio_id in studios
                    else ""
                )
                lines.append(f"· {problem_label(problem, 30)}｜{problem.state.label}，已 {days} 天{who}")
            if len(problems) > 20:
                lines.append(f"……另有 {len(problems) - 20} 个未列出。")
            lines.append("工作室负责人可发送 /认领 编号 接手；/问题 编号 查看详情。")
            sent += await self.runtime.outbox.announce(
                alliance.id,
                "\n".join(lines),
                dedupe_key=f"problems-digest:{alliance.id}:{local.date().isoformat()}",
            )
        return f"queued {sent} digest messages"


def _unique_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems once each, in the order first seen."""
    return list({p.id: p for p in problems}.values())
