"""The only message types the core knows: an inbound ``Event``, a ``Reply`` and an ``Outbound`` message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class TargetKind(StrEnum):
    """Where an outbound message goes."""

    USER = "user"  # a WeCom user id, via message/send
    APPCHAT = "appchat"  # a group the app created, via appchat/send
    WEBHOOK = "webhook"  # a group robot webhook key
    RESPONSE_URL = "response_url"  # the AI bot's one-shot response_url for a message
    CONSOLE = "console"  # a named group in the local console channel
    USER_FILE = "user_file"  # a stored file (report_file) to a WeCom user: media/upload, then message/send
    LONGCONN = "longconn"  # the AI bot's long connection: a reply stream or a push to a chat


@dataclass(slots=True, frozen=True)
class Target:
    """An address for an outbound message."""

    kind: TargetKind
    address: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.address}"


@dataclass(slots=True, frozen=True)
class Event:
    """A message from a user, independent of the channel it arrived on."""

    channel: str
    user_id: str
    text: str
    received_at: datetime
    chat_id: str | None = None  # group chat id (or console group name); None for a 1:1 chat
    msg_id: str | None = None  # platform message id, used for deduplication
    response_url: str | None = None

    @property
    def in_group(self) -> bool:
        """Whether the message was posted in a group chat."""
        return self.chat_id is not None

    def to_record(self) -> dict[str, Any]:
        """The event as JSON-ready data (the inbox keeps it until the message is done)."""
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Event:
        """The event ``to_record`` wrote."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["received_at"] = datetime.fromisoformat(str(fields["received_at"]))
        return cls(**fields)


@dataclass(slots=True, frozen=True)
class Reply:
    """The answer to an event, shown to the sender in the chat the event came from."""

    text: str


@dataclass(slots=True, frozen=True)
class Outbound:
    """A message the bot sends on its own initiative (to a lead, to an alliance group)."""

    target: Target
    text: str
    dedupe_key: str | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False)
