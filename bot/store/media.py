"""Photos attached to problems: the files, content-addressed under the data directory, and one row per photo.

A file is named by the SHA-256 of its content (``media/ab/abcdef….jpg``), so the same photo sent twice is stored
once; a row records which problem it belongs to, who sent it, from which chat, and the message it came in
(unique, so a message delivered twice attaches its photo once).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions, transaction
from bot.store.problems import ACTIVE, Problem
from bot.store.types import UTCDateTime, utcnow

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


class ProblemPhoto(SQLModel, table=True):
    """A photo a member sent for a problem."""

    __tablename__ = "problem_photo"
    __table_args__ = (
        UniqueConstraint("msg_key", name="uq_problem_photo_msg_key"),
        Index("ix_problem_photo_problem", "problem_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    problem_id: int
    sha256: str = Field(max_length=64)
    mime: str = Field(max_length=32)
    size: int
    user_id: str = Field(max_length=64)
    chat_id: str | None = Field(default=None, max_length=255)
    msg_key: str = Field(max_length=255)  # ``channel:msgid#n``: the message (and the image in it)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


def sniff_image(data: bytes) -> str | None:
    """The image type of ``data`` from its first bytes (JPEG, PNG, GIF, WebP); None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class MediaFiles:
    """Content-addressed files under ``<data dir>/media``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str, mime: str) -> Path:
        """Where the file with this digest lives."""
        return self.root / sha256[:2] / f"{sha256}.{EXTENSIONS.get(mime, 'bin')}"

    def put(self, data: bytes, mime: str) -> str:
        """Store ``data`` (once per content); its SHA-256. Written to a temporary name and renamed, so a
        reader never sees half a file."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest, mime)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.part")
            partial.write_bytes(data)
            partial.replace(path)
        return digest


class PhotoRepo:
    """Photo rows, and the problem a photo belongs to."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def attach(self, photo: ProblemPhoto) -> bool:
        """Record a photo; False when its message was recorded already (a repeat)."""
        table = ProblemPhoto.__table__  # type: ignore[attr-defined]
        engine = self._sessions.kw["bind"]
        insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        statement = insert(table).values(**photo.model_dump(exclude={"id"})).on_conflict_do_nothing()
        async with transaction(engine) as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def of_problem(self, problem_id: int) -> list[ProblemPhoto]:
        """A problem's photos, oldest first."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(ProblemPhoto)
                .where(col(ProblemPhoto.problem_id) == problem_id)
                .order_by(col(ProblemPhoto.id))
            )
            return list(rows.all())

    async def by_key(self, msg_key: str) -> ProblemPhoto | None:
        """The photo recorded under ``msg_key`` (``channel:msgid#n``), if any."""
        async with self._sessions() as session:
            rows = await session.exec(select(ProblemPhoto).where(col(ProblemPhoto.msg_key) == msg_key))
            return rows.first()

    async def problem_for(
        self,
        *,
        asker: str,
        chat_id: str | None,
        now: datetime,
        within: timedelta,
        message_key: str | None = None,
    ) -> Problem | None:
        """The problem a photo belongs to: the one its own message logged, else the asker's latest active one
        in the same chat, posted within ``within``."""
        async with self._sessions() as session:
            if message_key:
                own = (
                    await session.exec(select(Problem).where(col(Problem.message_key) == message_key))
                ).first()
                if own is not None:
                    return own
            same_chat = col(Problem.group).is_(None) if chat_id is None else col(Problem.group) == chat_id
            rows = await session.exec(
                select(Problem)
                .where(col(Problem.asker) == asker, same_chat)
                .where(col(Problem.status).in_([s.value for s in ACTIVE]))
                .where(col(Problem.created_at) >= now - within)
                .order_by(col(Problem.created_at).desc(), col(Problem.id).desc())
                .limit(1)
            )
            return rows.first()


def photo_lines(photos: Sequence[ProblemPhoto]) -> list[str]:
    """How ``/问题详情`` lists a problem's photos."""
    if not photos:
        return []
    lines = [f"照片：{len(photos)} 张"]
    for n, photo in enumerate(photos, start=1):
        lines.append(
            f"  {n}. {photo.mime.split('/')[-1]}，{max(1, photo.size // 1024)} KB，编号 {photo.sha256[:12]}"
        )
    return lines
