"""Command parsing (English names, Chinese aliases), the middleware chain and the handler registry."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from bot.core.delivery import Delivery
from bot.core.messages import Event, Outbound, Reply
from bot.core.runtime import Runtime
from bot.store.dedupe import Claimed

log = logging.getLogger(__name__)

COMMAND_PREFIXES = ("/", "／")


class Role(IntEnum):
    """Who may do what: member < studio lead < alliance lead < admin."""

    MEMBER = 0
    STUDIO_LEAD = 1
    ALLIANCE_LEAD = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The role's Chinese name."""
        return _ROLE_LABELS[self]

    @classmethod
    def parse(cls, value: str) -> Role:
        """A role from its English name or Chinese label."""
        for role in cls:
            if value.strip().lower() in (role.name.lower(), role.label):
                return role
        raise ValueError(value)


_ROLE_LABELS = {
    Role.MEMBER: "成员",
    Role.STUDIO_LEAD: "工作室负责人",
    Role.ALLIANCE_LEAD: "联盟负责人",
    Role.ADMIN: "管理员",
}


@dataclass(slots=True, frozen=True)
class Caller:
    """The sender of an event, with the role and the studios/alliances they lead."""

    user_id: str
    role: Role
    studios: tuple[str, ...] = ()
    alliances: tuple[str, ...] = ()

    def at_least(self, role: Role) -> bool:
        """Whether the caller has ``role`` or a higher one."""
        return self.role >= role


class UsageError(Exception):
    """Wrong arguments: the dispatcher answers with the command's usage (and this message, if any)."""


class UserError(Exception):
    """A refusal or problem to show to the user as is (Chinese)."""


class Forbidden(UserError):
    """A refusal of who the caller is (role, membership, conflict of interest) rather than of what they wrote:
    the same message in chat, a 403 (not a 400) on the console."""


@dataclass(slots=True)
class Context:
    """What a handler gets: the event, the caller, the runtime and the parsed command."""

    event: Event
    runtime: Runtime
    caller: Caller = field(default_factory=lambda: Caller("", Role.MEMBER))
    command: Command | None = None
    args: str = ""
    command_word: str = ""
    dispatcher: Dispatcher | None = None
    delivery: Delivery = field(default_factory=Delivery)
    claimed: Claimed | None = None  # set when the message was claimed before dispatch (recovery)

    async def send(self, *messages: Outbound) -> int:
        """Queue outbound messages through the outbox."""
        return await self.runtime.outbox.send(*messages)


HandlerResult = Reply | str | None
Handler = Callable[[Context], Awaitable[HandlerResult]]
Middleware = Callable[[Context, Callable[[Context], Awaitable[Reply | None]]], Awaitable[Reply | None]]


@dataclass(slots=True, frozen=True)
class Command:
    """A registered command."""

    name: str
    aliases: tuple[str, ...]
    summary: str
    usage: str
    role: Role
    group: str
    handler: Handler
    accepts: Callable[[str], bool] | None = (
        None  # lets two features share a name (``/join 3`` vs ``/join T-3``)
    )
    hidden: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        """The name and all aliases."""
        return (self.name, *self.aliases)


class Router:
    """One feature's commands and its handler for plain (non-command) text."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.commands: list[Command] = []
        self.text_handler: Handler | None = None

    def command(
        self,
        name: str,
        *aliases: str,
        summary: str,
        usage: str = "",
        role: Role = Role.MEMBER,
        accepts: Callable[[str], bool] | None = None,
        hidden: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``/name`` and its aliases."""

        def register(handler: Handler) -> Handler:
            self.commands.append(
                Command(
                    name=name,
                    aliases=aliases,
                    summary=summary,
                    usage=usage or f"/{name}",
                    role=role,
                    group=self.group,
                    handler=handler,
                    accepts=accepts,
                    hidden=hidden,
                )
            )
            return handler

        return register

    def text(self, handler: Handler) -> Handler:
        """Register the handler for messages that are not commands."""
        self.text_handler = handler
        return handler


_CONTROLS = {c: None for c in range(32) if chr(c) not in "\n\t"} | {0x7F: None}


def strip_controls(text: str) -> str:
    """``text`` without control characters (NUL, bell, vertical tab…), line breaks and tabs kept: a NUL fails
    a PostgreSQL insert, and none of them means anything in a chat message."""
    return text.translate(_CONTROLS)


def fold(text: str) -> str:
    """``text`` NFKC-normalised (full-width → half-width) and trimmed: for what parsing reads (command words,
    numbers, ids, keywords), never for what is stored or shown — that stays as the user wrote it."""
    return unicodedata.normalize("NFKC", text).strip()


def first_word(text: str) -> tuple[str, str]:
    """``"５ 混凝土5.5m³"`` → ``("5", "混凝土5.5m³")``: the first word folded for parsing, the rest exactly as
    written (trimmed). Any whitespace separates, the ideographic space included."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return fold(parts[0]), parts[1].strip() if len(parts) > 1 else ""


def split_command(text: str) -> tuple[str, str] | None:
    """``"/help studios"`` → ``("help", "studios")``; None when the text is not a command. The command word is
    folded and lowercased; the arguments are kept as written."""
    stripped = text.strip()
    if not stripped.startswith(COMMAND_PREFIXES):
        return None
    word, rest = first_word(stripped[1:])
    return word.lower(), rest


class Dispatcher:
    """Turns an ``Event`` into a ``Reply``: middlewares first, then the matching handler."""

    def __init__(
        self, runtime: Runtime, routers: Sequence[Router], middlewares: Sequence[Middleware] = ()
    ) -> None:
        self.runtime = runtime
        self.routers = list(routers)
        self.middlewares = list(middlewares)
        self._by_word: dict[str, list[Command]] = {}
        for router in self.routers:
            for command in router.commands:
                for word in command.words:
                    self._by_word.setdefault(word.lower(), []).append(command)
        self._text_handlers = [r.text_handler for r in self.routers if r.text_handler is not None]

    @property
    def commands(self) -> list[Command]:
        """Every registered command, in registration order, each once."""
        return [c for r in self.routers for c in r.commands]

    def find(self, word: str, args: str = "") -> Command | None:
        """The command a word (name or alias) names, taking argument predicates into account."""
        candidates = self._by_word.get(word.lower().lstrip("/／"), [])
        for command in candidates:
            if command.accepts is None or command.accepts(args):
                return command
        return candidates[0] if candidates else None

    def suggest(self, word: str) -> str | None:
        """The closest known command word to a mistyped one: the longest command word it begins with
        (``报名活动`` → ``报名``: people add the object to the verb), else the most similar one."""
        word = word.lower()
        prefixes = [w for w in self._by_word if len(w) >= 2 and word.startswith(w) and w != word]
        if prefixes:
            return max(prefixes, key=len)
        matches = difflib.get_close_matches(word, list(self._by_word), n=1, cutoff=0.5)
        return matches[0] if matches else None

    async def dispatch(
        self, event: Event, *, delivery: Delivery | None = None, claimed: Claimed | None = None
    ) -> Reply | None:
        """Run the middleware chain and the handler; never raises for a user's input. ``delivery`` is the
        channel's inline-or-late decision for the answer; ``claimed``, a claim made before (recovery)."""
        cleaned = strip_controls(event.text)
        if cleaned != event.text:
            event = dataclasses.replace(event, text=cleaned)
        context = Context(
            event=event, runtime=self.runtime, dispatcher=self, delivery=delivery or Delivery(), claimed=claimed
        )

        async def run(index: int, ctx: Context) -> Reply | None:
            if index < len(self.middlewares):
                return await self.middlewares[index](ctx, lambda c: run(index + 1, c))
            return await self._handle(ctx)

        return await run(0, context)

    async def _handle(self, ctx: Context) -> Reply | None:
        parsed = split_command(ctx.event.text)
        try:
            if parsed is None:
                return await self._handle_text(ctx)
            word, args = parsed
            command = self.find(word, args)
            if command is None:
                return Reply(self._unknown(word))
            ctx.command, ctx.args, ctx.command_word = command, args, word
            if not ctx.caller.at_least(command.role):
                return Reply(
                    f"抱歉，/{word} 需要「{command.role.label}」及以上权限，您当前是「{ctx.caller.role.label}」。"
                )
            return _as_reply(await command.handler(ctx))
        except UsageError as exc:
            assert ctx.command is not None
            detail = f"{exc}\n" if str(exc) else ""
            return Reply(f"{detail}用法：{ctx.command.usage}")
        except UserError as exc:
            return Reply(str(exc))

    async def _handle_text(self, ctx: Context) -> Reply | None:
        for handler in self._text_handlers:
            result = await handler(ctx)
            if result is not None:
                return _as_reply(result)
        return Reply("您好，我是工作室联盟助手。发送 /帮助 查看我能做什么。")

    def _unknown(self, word: str) -> str:
        if not word:
            return "请在 / 后面输入命令，例如 /帮助。"
        hint = self.suggest(word)
        text = f"没有 /{word} 这个命令。"
        if hint:
            text += f"您是不是想用 /{hint}？"
        return text + "发送 /帮助 查看全部命令。"


def _as_reply(result: HandlerResult) -> Reply | None:
    # "" (or an empty Reply) is a handler choosing silence, e.g. after 收到: no reply at all
    if isinstance(result, Reply):
        return result if result.text else None
    return Reply(result) if result else None
