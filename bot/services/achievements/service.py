"""The achievements feature's logic: the novelty lookups over achievements and topics."""

from __future__ import annotations

from bot.core.runtime import Runtime
from bot.services.achievements.novelty import Document, Match, rank
from bot.services.topics import topic_label
from bot.store.achievements import Achievement, AchievementRepo
from bot.store.studios import Studio
from bot.store.topics import TopicRepo


def achievement_label(achievement: Achievement) -> str:
    """``成果 #5 发明专利「…」（2025）``."""
    return f"成果 #{achievement.id} {achievement.type}「{achievement.title}」（{achievement.year}）"


class AchievementService:
    """The achievements database and its awards, and the novelty check over achievements and topics."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.achievements = AchievementRepo(runtime.store.sessions)
        self.topics = TopicRepo(runtime.store.sessions)

    async def studio_names(self) -> dict[str, Studio]:
        """Every studio by id."""
        return {s.id: s for s in await self.runtime.store.studios.all()}

    async def corpus(
        self, *, exclude_achievement: int | None = None, exclude_topic: int | None = None
    ) -> list[Document]:
        """Achievements and topics (lapsed ones too: an idea tried before is worth knowing) as documents."""
        documents = [
            Document("achievement", a.id, achievement_label(a), a.title, a.description)
            for a in await self.achievements.all()
            if a.id is not None and a.id != exclude_achievement
        ]
        documents.extend(
            Document(
                "topic",
                t.id,
                f"课题 {topic_label(t)}（{t.state.label}）",
                t.title,
                f"{t.description}\n{t.conclusion}".strip(),
            )
            for t in await self.topics.all()
            if t.id is not None and t.id != exclude_topic
        )
        return documents

    async def similar(
        self,
        text: str,
        *,
        title: str | None = None,
        limit: int = 5,
        minimum: float | None = None,
        exclude_achievement: int | None = None,
        exclude_topic: int | None = None,
        kinds: tuple[str, ...] = ("achievement", "topic"),
    ) -> list[Match]:
        """The achievements and/or topics most similar to ``text``."""
        documents = [
            d
            for d in await self.corpus(exclude_achievement=exclude_achievement, exclude_topic=exclude_topic)
            if d.kind in kinds
        ]
        if minimum is None:
            return rank(text, documents, title=title, limit=limit)
        return rank(text, documents, title=title, limit=limit, minimum=minimum)
