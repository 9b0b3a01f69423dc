"""The WeCom AI bot's long connection (智能机器人长连接, developer.work.weixin.qq.com path/101463).

The bot dials out to WeCom's WebSocket endpoint, so it needs no public callback URL (an intranet server will
do). Every frame is JSON ``{cmd, headers: {req_id}, body}``; WeCom acknowledges each frame the bot sends with
``{headers: {req_id}, errcode, errmsg}``:

- ``aibot_subscribe`` (bot id + secret) opens the session; ``ping`` every ``BOT_WECOM_WS_PING_SECONDS``, and two
  unanswered pings mean the connection is dead;
- ``aibot_msg_callback`` brings a message and ``aibot_event_callback`` an event (``enter_chat``,
  ``template_card_event``, ``feedback_event``, ``disconnected_event``: another subscription took the bot over);
- ``aibot_respond_msg`` answers a message, reusing its ``req_id``: a stream whose frames each replace the
  previous content (at most 20480 bytes), ``aibot_respond_welcome_msg`` answers ``enter_chat`` and
  ``aibot_respond_update_msg`` updates a clicked card; ``aibot_send_msg`` pushes to a chat on the bot's own
  initiative.

A message goes through the same dispatcher as the HTTP callbacks (exactly once, keyed by its ``msgid``): a quick
answer is the stream's only frame; a slow one gets a placeholder frame at once and its final frame through the
outbox, queued in the handler's transaction (a push to the chat when the stream is gone). Only one connection
per bot can be live (a new subscription displaces the old), so of several processes exactly one holds the socket
under a leader lease (``bot.store.lease``); the others stand by and take over when it dies. Outbound frames from
any process reach the holder through the outbox: the other processes leave long-connection messages alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

import aiohttp

from bot.app import BotApp
from bot.channels.wecom.aibot import (
    PLACEHOLDER,
    UNSUPPORTED,
    WELCOME,
    AibotMessage,
    stream_id_for,
    strip_mentions,
)
from bot.channels.wecom.attach import Fetched, PhotoAttacher
from bot.channels.wecom.callback import Background, Later, handle_within
from bot.channels.wecom.cards import (
    CARD_DONE,
    CARD_PENDING,
    CARD_WAIT,
    announcement_card,
    answer_card,
    click_of,
    command_for_key,
    is_score_key,
    problem_card,
    problem_of_feedback,
    score_card,
    score_command,
    scored_card,
    task_id_for,
    updated_card,
)
from bot.channels.wecom.crypto import CallbackRejected
from bot.channels.wecom.media import images_of
from bot.channels.wecom.senders import USER_LIMITS, clip
from bot.core.messages import Event, Outbound, Target, TargetKind
from bot.core.middleware import RetryLater, ServiceUnavailable
from bot.core.outbox import DeliveryError
from bot.store.feedback import FeedbackRepo, ProblemFeedback
from bot.store.lease import LeaderLease

log = logging.getLogger(__name__)

CHANNEL = "longconn"
SUBSCRIBE = "aibot_subscribe"
PING = "ping"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
RESPOND = "aibot_respond_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
SEND = "aibot_send_msg"
DISCONNECTED = "disconnected_event"

ACK_TIMEOUT = 5.0  # seconds WeCom has to acknowledge a frame
MAX_MISSED_PINGS = 2
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STREAM_BYTES = 20480
UNAVAILABLE = "抱歉，系统暂时不可用，请稍后再发一次。"
KICKED_NOTICE = (
    "【智能机器人长连接被接管】机器人 {bot_id} 的长连接已被另一处部署接管（企业微信发来 disconnected_event）。"
    "本服务不再重连，以免两处互相争抢；请确认只有一处部署在使用这个机器人，然后重启本服务。"
)


class FrameError(Exception):
    """WeCom answered a frame with a non-zero errcode."""

    def __init__(self, cmd: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"{cmd}: errcode {errcode} {errmsg}")
        self.cmd = cmd
        self.errcode = errcode
        self.errmsg = errmsg


class NotConnected(ConnectionError):
    """No live, subscribed connection to send a frame on."""


class LinkState(StrEnum):
    """Where the long connection stands (``/healthz``)."""

    STANDBY = "standby"  # another process holds the lease (and the socket)
    CONNECTING = "connecting"
    ONLINE = "online"
    AUTH_FAILED = "auth_failed"  # WeCom refused the bot id or secret
    KICKED = "kicked"  # another deployment subscribed: not fighting it
    STOPPED = "stopped"


class Ended(StrEnum):
    """Why one connection's life ended."""

    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    CLOSED = "closed"  # WeCom (or the network) closed it
    DEAD = "dead"  # pings went unanswered
    DISPLACED = "displaced"  # a disconnected_event: another subscription took over
    LEASE_LOST = "lease_lost"
    STOPPING = "stopping"


def new_req_id(cmd: str) -> str:
    """A fresh request id for a frame the bot starts (WeCom's SDKs prefix it with the command)."""
    return f"{cmd}_{uuid.uuid4().hex}"


def backoff(attempt: int) -> float:
    """Seconds before reconnect attempt ``attempt`` (0-based): 1 s doubling to 30 s, jittered down to half, so
    many bots cut off together do not all dial back in the same instant."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)
    return random.uniform(ceiling / 2, ceiling)


class LongConnection:
    """One bot's WebSocket to WeCom: subscribe, heartbeat, acknowledgements by ``req_id``, one life at a time.

    ``on_frame`` gets every inbound message and event frame (it must not block: the channel spawns work)."""

    def __init__(
        self,
        *,
        url: str,
        bot_id: str,
        secret: str,
        ping_seconds: float,
        on_frame: Callable[[dict[str, Any]], None],
        now: Callable[[], datetime],
    ) -> None:
        self.url = url
        self.bot_id = bot_id
        self._secret = secret
        self.ping_seconds = ping_seconds
        self._on_frame = on_frame
        self._now = now
        self.state = LinkState.STANDBY
        self.connects = 0
        self.online_since: datetime | None = None
        self.last_error: str | None = None
        self.online = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._missed = 0
        self._displaced = False

    async def request(self, cmd: str, body: dict[str, Any], *, req_id: str | None = None) -> dict[str, Any]:
        """Send one frame and wait for WeCom's acknowledgement; frames sharing a ``req_id`` (one reply stream)
        go one at a time, each after the previous one's acknowledgement. Raises ``FrameError`` on an errcode,
        ``NotConnected`` without a live connection, ``TimeoutError`` without an answer."""
        if self.state is not LinkState.ONLINE and cmd != SUBSCRIBE:
            raise NotConnected(f"long connection is {self.state.value}")
        req_id = req_id or new_req_id(cmd)
        lock, users = self._locks.get(req_id, (asyncio.Lock(), 0))
        self._locks[req_id] = (lock, users + 1)
        try:
            async with lock:
                ws = self._ws
                if ws is None or ws.closed:
                    raise NotConnected("long connection is closed")
                future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                self._pending[req_id] = future
                try:
                    frame = {"cmd": cmd, "headers": {"req_id": req_id}, "body": body}
                    await ws.send_str(json.dumps(frame, ensure_ascii=False))
                    ack = await asyncio.wait_for(future, ACK_TIMEOUT)
                finally:
                    self._pending.pop(req_id, None)
        finally:
            lock, users = self._locks[req_id]
            if users <= 1:
                del self._locks[req_id]
            else:
                self._locks[req_id] = (lock, users - 1)
        errcode = int(ack.get("errcode") or 0)
        if errcode != 0:
            raise FrameError(cmd, errcode, str(ack.get("errmsg") or ""))
        return ack

    async def live_once(
        self,
        session: aiohttp.ClientSession,
        *,
        stopping: asyncio.Event,
        lease_check: Callable[[], Awaitable[bool]],
        check_every: float,
    ) -> Ended:
        """Connect, subscribe and serve until the connection ends; why it ended."""
        self.state = LinkState.CONNECTING
        self._displaced = False
        try:
            ws = await session.ws_connect(
                self.url, autoping=True, heartbeat=None, max_msg_size=4 * 1024 * 1024
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.last_error = f"cannot connect: {type(exc).__name__} {exc}"[:300]
            log.warning("long connection: cannot reach %s (%s)", self.url, type(exc).__name__)
            return Ended.UNREACHABLE
        self._ws = ws
        self._missed = 0
        reader = asyncio.ensure_future(self._read(ws))
        tasks: list[asyncio.Future[Any]] = [reader]
        try:
            try:
                await self.request(SUBSCRIBE, {"bot_id": self.bot_id, "secret": self._secret})
            except FrameError as exc:
                self.state = LinkState.AUTH_FAILED
                self.last_error = f"subscribe refused: errcode {exc.errcode} {exc.errmsg}"
                log.error(
                    "long connection: WeCom refused the subscription (errcode %s: %s); check BOT_WECOM_AIBOT_ID "
                    "and BOT_WECOM_AIBOT_SECRET (企业微信后台 → 智能机器人 → API 模式：长连接)",
                    exc.errcode,
                    exc.errmsg,
                )
                return Ended.AUTH_FAILED
            except (NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.last_error = f"subscribe failed: {type(exc).__name__}"
                log.warning("long connection: subscription not acknowledged (%s)", type(exc).__name__)
                return Ended.CLOSED
            self.state = LinkState.ONLINE
            self.connects += 1
            self.online_since = self._now()
            self.last_error = None
            self.online.set()
            log.info("long connection online (bot %s, connection %d)", self.bot_id, self.connects)
            pinger = asyncio.ensure_future(self._ping(ws))
            stop = asyncio.ensure_future(stopping.wait())
            lease = asyncio.ensure_future(self._watch_lease(lease_check, check_every))
            tasks += [pinger, stop, lease]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                return Ended.STOPPING
            if lease in done:
                log.warning("long connection: the lease was lost; closing the socket and standing by")
                return Ended.LEASE_LOST
            if pinger in done:
                self.last_error = f"{MAX_MISSED_PINGS} pings unanswered"
                log.warning("long connection dead: %d pings unanswered; reconnecting", MAX_MISSED_PINGS)
                return Ended.DEAD
            if self._displaced:
                return Ended.DISPLACED
            self.last_error = f"closed by the server (code {ws.close_code})"
            log.warning("long connection closed (code %s); reconnecting", ws.close_code)
            return Ended.CLOSED
        finally:
            self.online.clear()
            if self.state is LinkState.ONLINE or self.state is LinkState.CONNECTING:
                self.state = LinkState.STANDBY
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NotConnected("long connection closed"))
            self._ws = None
            if not ws.closed:
                await ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    return
                continue
            try:
                frame = json.loads(message.data)
            except ValueError:
                log.warning("long connection: a frame that is not JSON; ignored")
                continue
            if not isinstance(frame, dict):
                continue
            cmd = frame.get("cmd")
            if cmd in (MSG_CALLBACK, EVENT_CALLBACK):
                body = frame.get("body")
                event = body.get("event") if isinstance(body, dict) else None
                if isinstance(event, dict) and event.get("eventtype") == DISCONNECTED:
                    self._displaced = True
                    log.warning(
                        "long connection: disconnected_event (another subscription took this bot over)"
                    )
                    return
                self._on_frame(frame)
                continue
            headers = frame.get("headers")
            req_id = str(headers.get("req_id") or "") if isinstance(headers, dict) else ""
            future = self._pending.get(req_id)
            if future is not None and not future.done():
                future.set_result(frame)
            elif req_id.startswith(PING):
                if int(frame.get("errcode") or 0) == 0:
                    self._missed = 0
            else:
                log.debug("long connection: unexpected acknowledgement %s", req_id)

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Returns when the connection is dead (two pings unanswered)."""
        while True:
            await asyncio.sleep(self.ping_seconds)
            if self._missed >= MAX_MISSED_PINGS:
                return
            self._missed += 1
            frame = {"cmd": PING, "headers": {"req_id": new_req_id(PING)}}
            try:
                await ws.send_str(json.dumps(frame))
            except (aiohttp.ClientError, OSError, RuntimeError):
                return

    @staticmethod
    async def _watch_lease(lease_check: Callable[[], Awaitable[bool]], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if not await lease_check():
                return


class LongConnChannel:
    """Serves the long connection: holds the lease (or stands by), keeps the socket up, dispatches what arrives
    and answers on the stream. ``reply_wait`` is an attribute so tests can shorten it."""

    def __init__(self, bot: BotApp) -> None:
        settings = bot.settings
        self.bot = bot
        self.background = Background(bot)
        self.reply_wait = 3.0
        self.card_wait = CARD_WAIT
        self.standby_seconds = settings.wecom_ws_standby_seconds
        self.lease = LeaderLease(bot.store.engine, f"wecom-longconn:{settings.wecom_aibot_id}")
        self.link = LongConnection(
            url=settings.wecom_ws_url,
            bot_id=settings.wecom_aibot_id,
            secret=settings.wecom_aibot_secret,
            ping_seconds=settings.wecom_ws_ping_seconds,
            on_frame=self._spawn_frame,
            now=bot.clock.now,
        )
        self.kicked = False
        self.attacher = PhotoAttacher(bot, CHANNEL)
        self.photos = self.attacher.photos
        self.feedback = FeedbackRepo(bot.store.sessions)
        self.media = self.attacher.media
        self._req_ids: dict[
            str, str
        ] = {}  # msgid → the req_id its answer must reuse (messages being handled)
        bot.runtime.late_routes[CHANNEL] = self._deliver_late
        bot.runtime.group_targets[CHANNEL] = lambda chat_id: Target(TargetKind.LONGCONN, f"group:{chat_id}")

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the connection's supervisor (a start-up hook)."""
        self.bot.spawn(self.run(), name="longconn")

    async def run(self) -> None:
        """Hold the lease and the socket until the bot stops: reconnect with backoff, stand by while another
        process holds the lease, and stay off after a takeover by another deployment."""
        stopping = self.bot.stopping
        attempt = 0
        async with aiohttp.ClientSession() as session:
            try:
                while not stopping.is_set():
                    if not await self._lead():
                        self.link.state = LinkState.STANDBY
                        await _sleep(stopping, self.standby_seconds)
                        continue
                    connects = self.link.connects
                    ended = await self.link.live_once(
                        session,
                        stopping=stopping,
                        lease_check=self._still_leader,
                        check_every=self.standby_seconds,
                    )
                    if ended is Ended.STOPPING or stopping.is_set():
                        break
                    if ended is Ended.DISPLACED:
                        if await self._still_leader():
                            await self._kicked()
                            await stopping.wait()
                            break
                        continue  # our lease went to another of our processes: it displaced us
                    if ended is Ended.LEASE_LOST:
                        continue
                    if (
                        self.link.connects > connects
                    ):  # it was online: the first reconnect waits about a second
                        attempt = 0
                    delay = backoff(attempt)
                    attempt += 1
                    log.info("long connection: reconnecting in %.1f s", delay)
                    await _sleep(stopping, delay)
            finally:
                self.link.state = LinkState.KICKED if self.kicked else LinkState.STOPPED
                await self.lease.release()

    async def _lead(self) -> bool:
        try:
            return await self.lease.acquire()
        except (OSError, TimeoutError, Exception) as exc:  # the database is away: stand by, try again
            log.warning("long connection: cannot take the lease (%s)", type(exc).__name__)
            return False

    async def _still_leader(self) -> bool:
        return await self.lease.check()

    async def _kicked(self) -> None:
        self.kicked = True
        self.link.state = LinkState.KICKED
        self.link.last_error = "another deployment subscribed with this bot (disconnected_event)"
        log.error(
            "long connection taken over by another deployment of bot %s (disconnected_event): not reconnecting, "
            "so the two do not fight over the socket; make sure one deployment uses this bot, then restart",
            self.bot.settings.wecom_aibot_id,
        )
        text = KICKED_NOTICE.format(bot_id=self.bot.settings.wecom_aibot_id)
        stamp = self.bot.clock.now().isoformat(timespec="seconds")
        for admin in self.bot.settings.admins:
            try:
                await self.bot.runtime.outbox.notify_user(
                    admin, text, dedupe_key=f"longconn-kicked:{stamp}:{admin}"
                )
            except Exception as exc:  # the database is away: the log line and /healthz still say it
                log.warning("long connection: could not queue the takeover notice (%s)", type(exc).__name__)

    def report(self) -> dict[str, Any]:
        """The ``/healthz`` section."""
        link = self.link
        return {
            "state": link.state.value,
            "leader": self.lease.held,
            "kicked": self.kicked,
            "connects": link.connects,
            "online_since": link.online_since.isoformat() if link.online_since else None,
            "error": link.last_error,
        }

    async def idle(self) -> None:
        """Wait until the frames being handled are done (tests)."""
        await self.background.idle()

    # -- inbound -------------------------------------------------------------------------------

    def _spawn_frame(self, frame: dict[str, Any]) -> None:
        headers = frame.get("headers")
        req_id = str(headers.get("req_id") or "") if isinstance(headers, dict) else ""
        body = frame.get("body")
        if not req_id or not isinstance(body, dict):
            log.warning("long connection: a callback frame without req_id or body; ignored")
            return
        work = (
            self._on_message(req_id, body)
            if frame.get("cmd") == MSG_CALLBACK
            else self._on_event(req_id, body)
        )
        self.background.spawn(work, name=f"longconn:{req_id[:40]}")

    async def _on_message(self, req_id: str, body: dict[str, Any]) -> None:
        try:
            message = AibotMessage.parse(json.dumps(body))
        except CallbackRejected:
            return
        if not message.msg_id or not message.user_id:
            log.info("long connection: a message without msgid or user; ignored")
            return
        await self._spoken_in(body)
        stream_id = stream_id_for(message.msg_id)
        images = images_of(body)
        # fetched at once: WeCom's media URLs expire in minutes
        fetched = await self.attacher.fetch(images, msg_id=message.msg_id)
        has_text = message.msg_type in ("text", "mixed", "voice") and bool(message.text.strip())
        if not has_text:
            if images:
                note = await self._attach(message, fetched, own_key=None)
                await self._respond(req_id, stream_id, note, finish=True)
            else:
                await self._respond(req_id, stream_id, UNSUPPORTED, finish=True)
            return
        event = Event(
            channel=CHANNEL,
            user_id=message.user_id,
            text=strip_mentions(message.text),
            received_at=self.bot.clock.now(),
            chat_id=message.chat_id,
            msg_id=message.msg_id,
        )
        self._req_ids.setdefault(message.msg_id, req_id)  # a repeat delivery keeps the first stream
        try:
            outcome = await handle_within(
                self.background, self.bot, event, self.reply_wait, name=f"longconn:{stream_id}"
            )
        except RetryLater:
            log.info(
                "long connection: message %s delivered again while being handled; ignored", message.msg_id
            )
            return
        except ServiceUnavailable:
            self._req_ids.pop(message.msg_id, None)
            await self._respond(req_id, stream_id, UNAVAILABLE, finish=True)
            return
        own_key = f"{CHANNEL}:{message.msg_id}"
        if isinstance(outcome, Later):
            await self._respond(req_id, stream_id, PLACEHOLDER, finish=False)
            if images:
                await outcome.task  # the photos join the problem this message logs, once it is logged
                note = await self._attach(message, fetched, own_key=own_key)
                if note:  # the answer went out on its own: the note follows it
                    await self.bot.runtime.outbox.send(
                        Outbound(
                            Target(TargetKind.LONGCONN, conversation(event)),
                            note,
                            dedupe_key=f"longconn:{message.msg_id}:photos",
                        )
                    )
            return
        self._req_ids.pop(message.msg_id, None)
        if outcome is not None and outcome.text:
            text = outcome.text
            if images:
                text += "\n" + await self._attach(message, fetched, own_key=own_key)
            if not await self._respond(req_id, stream_id, text, finish=True):
                # the socket went away before the answer: it goes out as a push once a connection is back
                await self.bot.runtime.outbox.send(
                    Outbound(
                        Target(TargetKind.LONGCONN, conversation(event)),
                        text,
                        dedupe_key=f"longconn:{message.msg_id}",
                    )
                )

    async def _attach(self, message: AibotMessage, fetched: Fetched, *, own_key: str | None) -> str:
        """Store a message's photos and attach them to the asker's problem; what to tell the asker."""
        return await self.attacher.attach(
            msg_id=message.msg_id,
            user_id=message.user_id,
            chat_id=message.chat_id,
            fetched=fetched,
            own_key=own_key,
        )

    async def _respond(self, req_id: str, stream_id: str, content: str, *, finish: bool) -> bool:
        body = {
            "msgtype": "stream",
            "stream": {"id": stream_id, "finish": finish, "content": clip(content, STREAM_BYTES)},
        }
        try:
            await self.link.request(RESPOND, body, req_id=req_id)
        except (FrameError, NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("long connection: reply frame not accepted (%s)", exc)
            return False
        return True

    async def _spoken_in(self, body: dict[str, Any]) -> None:
        """Remember the conversation a frame came from: WeCom lets the bot push only where it was spoken to."""
        sender = body.get("from")
        user_id = str(sender.get("userid") or "") if isinstance(sender, dict) else ""
        chat_id = str(body.get("chatid") or "")
        address = f"group:{chat_id}" if body.get("chattype") == "group" and chat_id else (
            f"single:{user_id}" if user_id else ""
        )
        if not address:
            return
        try:
            await self.bot.store.chats_seen.mark(address, self.bot.clock.now())
        except Exception:  # a lost mark must not lose the message; the next one marks it
            log.warning("long connection: could not record that %s spoke to the bot", address, exc_info=True)

    async def _on_event(self, req_id: str, body: dict[str, Any]) -> None:
        event = body.get("event")
        kind = str(event.get("eventtype") or "") if isinstance(event, dict) else ""
        if kind in ("enter_chat", "template_card_event", "feedback_event"):
            await self._spoken_in(body)
        if kind == "enter_chat":
            try:
                await self.link.request(
                    RESPOND_WELCOME, {"msgtype": "text", "text": {"content": WELCOME}}, req_id=req_id
                )
            except (FrameError, NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.info("long connection: welcome not sent (%s)", exc)
            return
        if kind == "template_card_event" and isinstance(event, dict):
            await self._on_click(req_id, body, event)
            return
        if kind == "feedback_event" and isinstance(event, dict):
            await self._on_feedback(body, event)
            return
        log.info("long connection: event %s not handled", kind or "?")

    async def _on_feedback(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """👍/👎 on a relayed answer: recorded for its problem, once per event (a later one of the same user
        replaces theirs in the tally; type 3 withdraws it)."""
        inner = event.get("feedback_event")
        source = inner if isinstance(inner, dict) else event
        number = problem_of_feedback(str(source.get("id") or ""))
        sender = body.get("from")
        user_id = str(sender.get("userid") or "") if isinstance(sender, dict) else ""
        msg_id = str(body.get("msgid") or "")
        try:
            kind = int(source.get("type") or 0)
        except (TypeError, ValueError):
            kind = 0
        rating = {1: 1, 2: -1, 3: 0}.get(kind)
        if number is None or rating is None or not user_id or not msg_id:
            log.info("long connection: feedback the bot cannot place; ignored")
            return
        await self.feedback.record(
            ProblemFeedback(
                problem_id=number,
                user_id=user_id,
                rating=rating,
                event_key=f"{CHANNEL}:{msg_id}",
                created_at=self.bot.clock.now(),
            )
        )

    async def _on_click(self, req_id: str, body: dict[str, Any], event: dict[str, Any]) -> None:
        """A card button: the typed command it stands for, from the clicking user, through the dispatcher
        (exactly once per event); the card is updated with the answer within WeCom's 5 s."""
        key, task_id = click_of(event)
        sender = body.get("from")
        user_id = str(sender.get("userid") or "") if isinstance(sender, dict) else ""
        msg_id = str(body.get("msgid") or "")
        parsed = command_for_key(key)
        if parsed is None and is_score_key(key):  # a panel member's submitted score card
            typed = score_command(key, event)
            parsed = (0, typed) if typed else None
        if parsed is None or not user_id or not msg_id:
            log.info("long connection: a card click the bot did not make (%r); ignored", key[:60])
            return
        _, text = parsed
        click = Event(
            channel=CHANNEL,
            user_id=user_id,
            text=text,
            received_at=self.bot.clock.now(),
            chat_id=str(body.get("chatid") or "") or None if body.get("chattype") == "group" else None,
            msg_id=f"click:{msg_id}",
        )
        try:
            outcome = await handle_within(
                self.background, self.bot, click, self.card_wait, name=f"longconn:click:{msg_id[:32]}"
            )
        except ServiceUnavailable:
            outcome = None
            result = UNAVAILABLE
        else:
            if isinstance(outcome, Later):
                result = CARD_PENDING
            else:
                result = outcome.text if outcome is not None and outcome.text else CARD_DONE
        card = (
            scored_card(key, result, task_id=task_id)
            if is_score_key(key)
            else updated_card(key, result, task_id=task_id)
        )
        try:
            await self.link.request(
                RESPOND_UPDATE,
                {"response_type": "update_template_card", "template_card": card},
                req_id=req_id,
            )
        except (FrameError, NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("long connection: card not updated (%s)", exc)

    async def _deliver_late(self, event: Event, text: str) -> None:
        """The late route (in the message's unit of work): the final frame of the message's stream, through the
        outbox; without the stream's req_id (a recovered message), a push to the chat."""
        assert event.msg_id is not None
        req_id = self._req_ids.pop(event.msg_id, None)
        chat = conversation(event)
        address = f"reply {req_id} {stream_id_for(event.msg_id)} {chat}" if req_id else chat
        await self.bot.runtime.outbox.send(
            Outbound(Target(TargetKind.LONGCONN, address), text, dedupe_key=f"longconn:{event.msg_id}")
        )


def conversation(event: Event) -> str:
    """The push address of the chat an event came from: ``group:<chatid>`` or ``single:<userid>``."""
    return f"group:{event.chat_id}" if event.chat_id else f"single:{event.user_id}"


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass


class LongConnSender:
    """The outbox's sender for the long connection: the final frame of a reply stream (``reply <req_id>
    <stream_id> <chat>``), falling back to a push when the stream is gone, and pushes (``aibot_send_msg``) to a
    chat (``group:<chatid>``, ``single:<userid>``) or, for personal messages, to a user's 1:1 chat. Delivers only
    in the process that holds the socket (``available``)."""

    limits = USER_LIMITS  # WeCom's reported pacing per conversation: 30 a minute, 1000 an hour

    def __init__(self, channel: LongConnChannel) -> None:
        self._channel = channel

    def available(self) -> bool:
        """Whether this process holds a live connection."""
        return self._channel.link.state is LinkState.ONLINE

    async def send_with_meta(self, target: Target, text: str, meta: dict[str, str]) -> None:
        """Deliver a message whose meta asks for a card (a lead's request for a problem, the answer to the
        asker, an activity's announcement, a call for topic support) as a template card with buttons; anything
        else as ``send`` does."""
        if (
            meta.get("card") == "problem"
            and meta.get("problem", "").isdigit()
            and not target.address.startswith("reply ")
        ):
            chat_id = (
                target.address.partition(":")[2] if target.kind is TargetKind.LONGCONN else target.address
            )
            number = int(meta["problem"])
            card = problem_card(number, text, task_id=task_id_for(number, chat_id, text))
            await self._push({"chatid": chat_id, "msgtype": "template_card", "template_card": card})
            return
        if meta.get("card") == "answer" and meta.get("problem", "").isdigit():
            chat_id = (
                target.address.partition(":")[2] if target.kind is TargetKind.LONGCONN else target.address
            )
            number = int(meta["problem"])
            card = answer_card(number, text, task_id=task_id_for(number, chat_id, text))
            await self._push({"chatid": chat_id, "msgtype": "template_card", "template_card": card})
            return
        if (
            meta.get("card") == "score"
            and meta.get("round", "").isdigit()
            and meta.get("nominee", "").isdigit()
            and target.kind is TargetKind.USER
        ):
            round_id, nominee_id = int(meta["round"]), int(meta["nominee"])
            criteria = [c for c in meta.get("criteria", "").split("|") if c]
            card = score_card(
                round_id,
                nominee_id,
                text,
                criteria,
                task_id=task_id_for(nominee_id, target.address, text, kind=f"score{round_id}"),
            )
            await self._push({"chatid": target.address, "msgtype": "template_card", "template_card": card})
            return
        kind = meta.get("card", "")
        if kind in ("activity", "topic") and meta.get(kind, "").isdigit() and not target.address.startswith("reply "):
            chat_id = (
                target.address.partition(":")[2] if target.kind is TargetKind.LONGCONN else target.address
            )
            number = int(meta[kind])
            card = announcement_card(kind, number, text, task_id=task_id_for(number, chat_id, text, kind=kind))
            await self._push({"chatid": chat_id, "msgtype": "template_card", "template_card": card})
            return
        await self.send(target, text)

    async def send(self, target: Target, text: str) -> None:
        """Deliver ``text`` to ``target`` over the socket."""
        link = self._channel.link
        address = target.address
        if target.kind is TargetKind.USER:
            address = f"single:{address}"
        if address.startswith("reply "):
            _, req_id, stream_id, address = address.split(" ", 3)
            body = {
                "msgtype": "stream",
                "stream": {"id": stream_id, "finish": True, "content": clip(text, STREAM_BYTES)},
            }
            try:
                await link.request(RESPOND, body, req_id=req_id)
                return
            except FrameError as exc:  # the stream expired or its connection is gone: push instead
                log.info("long connection: stream %s closed (%s); pushing the answer instead", stream_id, exc)
            except (NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise DeliveryError(f"长连接未就绪：{exc}", retry_after=2.0) from exc
        kind, _, chat_id = address.partition(":")
        if kind not in ("group", "single") or not chat_id:
            raise DeliveryError(f"长连接消息地址无效：{address[:80]}", retry_after=None)
        await self._push(
            {"chatid": chat_id, "msgtype": "markdown", "markdown": {"content": clip(text, STREAM_BYTES)}}
        )

    async def _push(self, body: dict[str, Any]) -> None:
        try:
            await self._channel.link.request(SEND, body)
        except FrameError as exc:
            raise DeliveryError(
                f"aibot_send_msg: errcode {exc.errcode} {exc.errmsg}", retry_after=60.0
            ) from exc
        except (NotConnected, TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"长连接未就绪：{exc}", retry_after=2.0) from exc
