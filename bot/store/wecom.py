"""WeCom channel state shared by every process: access tokens and AI-bot reply streams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, UniqueConstraint, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from bot.store.engine import Sessions
from bot.store.types import UTCDateTime


class WeComToken(SQLModel, table=True):
    """The current access token of one app, and who is refreshing it (a lease)."""

    __tablename__ = "wecom_token"

    key: str = Field(primary_key=True, max_length=128)
    access_token: str | None = None
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


@dataclass(slots=True, frozen=True)
class CachedToken:
    """An access token and when it expires."""

    value: str
    expires_at: datetime


class TokenRepo:
    """Access tokens in the database, so several processes share one token and one refresh."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def get(self, key: str) -> CachedToken | None:
        """The stored token for ``key``, if any."""
        async with self._sessions() as session:
            row = await session.get(WeComToken, key)
            if row is None or not row.access_token or row.expires_at is None:
                return None
            return CachedToken(row.access_token, row.expires_at)

    async def try_lease(self, key: str, owner: str, now: datetime, *, lease: timedelta) -> bool:
        """Become the one process refreshing ``key``'s token; False while another holds an unexpired lease."""
        for _ in range(2):
            async with self._sessions() as session, session.begin():
                result = await session.exec(
                    update(WeComToken)
                    .where(col(WeComToken.key) == key)
                    .where(or_(col(WeComToken.lease_until).is_(None), col(WeComToken.lease_until) < now))
                    .values(lease_owner=owner, lease_until=now + lease)
                )
                if result.rowcount == 1:
                    return True
                if await session.get(WeComToken, key) is not None:
                    return False
            try:
                async with self._sessions() as session, session.begin():
                    session.add(
                        WeComToken(key=key, lease_owner=owner, lease_until=now + lease, updated_at=now)
                    )
                return True
            except IntegrityError:
                continue  # another process inserted the row first; try the conditional update again
        return False

    async def store(self, key: str, token: CachedToken, owner: str, now: datetime) -> None:
        """Save a fresh token and release the lease."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(WeComToken)
                .where(col(WeComToken.key) == key)
                .values(
                    access_token=token.value,
                    expires_at=token.expires_at,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )

    async def release(self, key: str, owner: str) -> None:
        """Give up a lease without a new token (the fetch failed)."""
        async with self._sessions() as session, session.begin():
            await session.exec(
                update(WeComToken)
                .where(col(WeComToken.key) == key, col(WeComToken.lease_owner) == owner)
                .values(lease_owner=None, lease_until=None)
            )


class StreamDelivery:
    """How the result of a slow AI-bot message reached the user (at most one of them)."""

    STREAM = "stream"  # WeCom polled the stream and got it in a passive reply
    RESPONSE_URL = "response_url"  # posted to the message's response_url


class AibotStream(SQLModel, table=True):
    """The reply to one AI-bot message: answered at once, or filled in later and fetched by stream polls."""

    __tablename__ = "aibot_stream"
    __table_args__ = (UniqueConstraint("msg_id", name="uq_aibot_stream_msg_id"),)

    stream_id: str = Field(primary_key=True, max_length=64)
    msg_id: str = Field(max_length=255)
    response_url: str | None = None
    content: str | None = None
    finished: bool = False
    delivered_via: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AibotStreamRepo:
    """AI-bot reply streams, keyed by message id (which also makes retried messages answer the same)."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def start(
        self, *, stream_id: str, msg_id: str, response_url: str | None, now: datetime
    ) -> AibotStream | None:
        """Record a new message's stream; returns the existing stream instead when the message is a retry."""
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    AibotStream(stream_id=stream_id, msg_id=msg_id, response_url=response_url, created_at=now)
                )
        except IntegrityError:
            async with self._sessions() as session:
                found = (await session.exec(select(AibotStream).where(AibotStream.msg_id == msg_id))).first()
                if found is None:  # same stream id, other message: impossible short of a hash collision
                    raise
                return found
        return None

    async def finish(
        self,
        stream_id: str,
        content: str,
        now: datetime,
        *,
        delivered_via: str | None = None,
        msg_id: str | None = None,
        response_url: str | None = None,
    ) -> None:
        """Store a stream's final content; with ``msg_id``, a stream not on record yet (its "later" answer is
        still being written, or was lost with a crashed process) is recorded finished."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                update(AibotStream)
                .where(col(AibotStream.stream_id) == stream_id)
                .values(content=content, finished=True, finished_at=now, delivered_via=delivered_via)
            )
            if result.rowcount or msg_id is None:
                return
        try:
            async with self._sessions() as session, session.begin():
                session.add(
                    AibotStream(
                        stream_id=stream_id,
                        msg_id=msg_id,
                        response_url=response_url,
                        content=content,
                        finished=True,
                        created_at=now,
                        finished_at=now,
                        delivered_via=delivered_via,
                    )
                )
        except IntegrityError:  # recorded meanwhile by the channel's "later" answer: fill it in
            async with self._sessions() as session, session.begin():
                await session.exec(
                    update(AibotStream)
                    .where(col(AibotStream.stream_id) == stream_id)
                    .values(content=content, finished=True, finished_at=now, delivered_via=delivered_via)
                )

    async def append(self, stream_id: str, extra: str) -> bool:
        """Add to a finished stream's content while it has not gone out; False when it has (or is unknown)."""
        async with self._sessions() as session, session.begin():
            stream = await session.get(AibotStream, stream_id, with_for_update=True)
            if stream is None or not stream.finished or stream.delivered_via is not None:
                return False
            stream.content = (stream.content or "") + extra
            session.add(stream)
        return True

    async def get(self, stream_id: str) -> AibotStream | None:
        """One stream by id."""
        async with self._sessions() as session:
            return await session.get(AibotStream, stream_id)

    async def claim_delivery(
        self, via: str, *, stream_id: str | None = None, response_url: str | None = None
    ) -> bool:
        """Mark a finished stream as delivered through ``via``; False when it already went out another way.

        A response URL that belongs to no stream is always claimable (other features may use it directly).
        """
        if stream_id is not None:
            where = col(AibotStream.stream_id) == stream_id
        elif response_url is not None:
            where = col(AibotStream.response_url) == response_url
        else:
            raise ValueError("stream_id or response_url is required")
        async with self._sessions() as session, session.begin():
            result = await session.exec(
                update(AibotStream)
                .where(where)
                .where(or_(col(AibotStream.delivered_via).is_(None), col(AibotStream.delivered_via) == via))
                .values(delivered_via=via)
            )
            if result.rowcount:
                return True
            exists = (await session.exec(select(AibotStream.stream_id).where(where))).first()
            return exists is None

    async def prune(self, older_than: datetime) -> int:
        """Forget streams older than WeCom could still poll or retry them."""
        async with self._sessions() as session, session.begin():
            result = await session.exec(delete(AibotStream).where(col(AibotStream.created_at) < older_than))
            return int(result.rowcount or 0)


class WeComChatSeen(SQLModel, table=True):
    """A conversation where someone has spoken to the AI bot (``group:<chatid>`` or ``single:<userid>``): WeCom
    lets the bot push (``aibot_send_msg``) only into those."""

    __tablename__ = "wecom_chat_seen"

    address: str = Field(primary_key=True, max_length=200)
    first_seen: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_seen: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ChatSeenRepo:
    """The conversations the AI bot has been spoken to in, shared by every process."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._known: set[str] = set()  # marked by this process already (a chat is marked once per process)

    async def mark(self, address: str, now: datetime) -> None:
        """Remember that someone spoke to the bot in ``address`` (idempotent; concurrent marks are fine)."""
        if not address or address in self._known:
            return
        try:
            async with self._sessions() as session, session.begin():
                row = await session.get(WeComChatSeen, address)
                if row is None:
                    session.add(WeComChatSeen(address=address, first_seen=now, last_seen=now))
                else:
                    row.last_seen = now
        except IntegrityError:
            pass  # another process recorded it first
        self._known.add(address)

    async def seen(self, addresses: list[str]) -> set[str]:
        """Those of ``addresses`` the bot has been spoken to in."""
        wanted = [a for a in addresses if a]
        if not wanted:
            return set()
        async with self._sessions() as session:
            rows = await session.exec(
                select(WeComChatSeen.address).where(col(WeComChatSeen.address).in_(wanted))
            )
            return set(rows.all())
