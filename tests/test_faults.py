"""Faults, with real ``alliance-bot serve`` processes: SIGKILL in the middle of a burst, and the database away.

The client plays WeCom: it sends signed, encrypted callbacks, and retries the ones it got no answer (or a
non-200 answer) for, with the same body and signature, until they are answered. What must hold afterwards:
every callback was acted on exactly once (one event per "add event" command, one processed-message record)
and every announcement it caused was delivered exactly once.

Message sends are held at the fake WeCom while the process is killed, so no send is in flight at the moment of
the kill: a send that reaches WeCom but whose answer never comes back cannot be told apart from one that did
not arrive (``message/send`` has no idempotency key), so no sender can promise exactly once for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.store import Store
from bot.store.activities import Activity
from bot.store.dedupe import ProcessedMessage
from bot.store.outbox import OutboxMessage
from tests.fake_wecom import WeComCallbacks, aibot_text, app_text
from tests.harness import PG_URL, POSTGRES, fresh_postgres_database
from tests.processes import (
    LEADS,
    TALLIES,
    RoutedFake,
    ServeProcess,
    Tally,
    announcing_roster,
    free_port,
    prepare_database,
    tracebacks,
    until,
    wecom_env,
)

pytestmark = pytest.mark.slow


async def _all(url: str, statement: Any) -> list[Any]:
    store = await Store.open(url, migrate=False)
    try:
        async with store.sessions() as session:
            return list((await session.exec(statement)).all())
    finally:
        await store.close()


async def outbox_settled(url: str) -> bool:
    """Nothing pending in the outbox, and nothing given up on."""
    counts = dict(
        await _all(url, select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status)))
    )
    assert counts.get("failed", 0) == 0, counts
    return counts.get("pending", 0) == 0


@dataclass
class Callback:
    """One "add event" callback, sealed once: a retry sends the very same bytes, as WeCom does."""

    index: int
    channel: str
    title: str
    msg_id: str
    body: str
    query: dict[str, str]
    answers: list[int] = field(default_factory=list)  # HTTP statuses; 0 = no answer (connection lost)

    @property
    def key(self) -> str:
        """Its processed-message key."""
        return f"{self.channel}:{self.msg_id}"

    @property
    def answered(self) -> bool:
        """WeCom got a 200 for it (and will not retry)."""
        return 200 in self.answers


def add_event_callbacks(aibot: WeComCallbacks, app: WeComCallbacks, n: int, tag: str) -> list[Callback]:
    """``n`` callbacks, alternating AI bot and app, each adding an event for one of the four alliances.

    Ten per alliance at most: each event is announced to the alliance's robot and app chat, and both stay under
    WeCom's per-target limits, so the outbox delivers without pacing.
    """
    calls = []
    for i in range(n):
        lead = list(LEADS.values())[i % len(LEADS)]
        title = f"故障演练-{tag}-{i:02d}"
        text = f"/活动 添加 讲座 2030-12-{1 + i % 28:02d} 09:30 {title}"
        if i % 2 == 0:
            msg_id = f"fault-{tag}-{i}-{uuid.uuid4().hex[:8]}"
            body, query = aibot.aibot_body(aibot_text(f"@联盟助手 {text}", user=lead, msg_id=msg_id))
            calls.append(Callback(i, "aibot", title, msg_id, body, query))
        else:
            msg_id = str(uuid.uuid4().int % 10**19)
            body, query = app.app_body(app_text(text, user=lead, msg_id=msg_id))
            calls.append(Callback(i, "app", title, msg_id, body, query))
    return calls


async def post(http: aiohttp.ClientSession, base: str, call: Callback, *, within: float = 10.0) -> int:
    """POST a callback; its status, or 0 when the connection failed or no answer came within ``within`` s."""
    try:
        async with http.post(
            f"{base}/wecom/{call.channel}",
            params=call.query,
            data=call.body,
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    call.answers.append(status)
    return status


async def retry_unanswered(
    http: aiohttp.ClientSession, base: str, calls: list[Callback], *, within: float
) -> None:
    """WeCom's part: send every callback not yet answered 200 again, until all are (bounded)."""

    async def round_() -> bool:
        pending = [c for c in calls if not c.answered]
        await asyncio.gather(*(post(http, base, c) for c in pending))
        if any(not c.answered for c in calls):
            await asyncio.sleep(0.5)
            return False
        return True

    await until(round_, within=within, what="every callback answered 200", every=0)


# -- SIGKILL in the middle of a burst -------------------------------------------------------------------------

# WeCom drops a connection it got no answer on within 5 s and sends the callback again, three times in all.
WECOM_RETRY_AFTER = 5.0
WECOM_RETRIES = 3


async def retry_as_wecom(
    http: aiohttp.ClientSession, base: str, calls: list[Callback], *, since: float
) -> None:
    """WeCom's part after a failure at ``since`` (loop time): retry each unanswered callback every 5 s, 3 times."""
    loop = asyncio.get_running_loop()

    async def retry(call: Callback) -> None:
        last = since
        for _ in range(WECOM_RETRIES):
            if call.answered:
                return
            await asyncio.sleep(max(0.0, last + WECOM_RETRY_AFTER - loop.time()))
            last = loop.time()
            await post(http, base, call)

    await asyncio.gather(*(retry(c) for c in calls))
    assert [c.title for c in calls if not c.answered] == [], "still unanswered after WeCom's three retries"


async def acted_on(url: str, calls: list[Callback]) -> dict[str, int]:
    """How many events each callback made."""
    titles = dict(
        await _all(
            url,
            select(Activity.title, func.count())
            .where(col(Activity.title).in_([c.title for c in calls]))
            .group_by(col(Activity.title)),
        )
    )
    return {c.title: titles.get(c.title, 0) for c in calls}


async def test_sigkill_in_a_burst_loses_and_doubles_nothing(tmp_path: Path, database_url: str) -> None:
    await prepare_database(database_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(database_url, api_base))
    try:
        await bot.start()
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            calls = add_event_callbacks(aibot, app, 40, uuid.uuid4().hex[:6])
            fake.hold_sends()  # announcements queue up at WeCom's door; none is in flight when the process dies
            gate = asyncio.Semaphore(8)
            answered = asyncio.Event()

            async def send(call: Callback) -> None:
                async with gate:
                    if await post(http, bot.url, call) == 200 and sum(c.answered for c in calls) >= 15:
                        answered.set()

            burst = [asyncio.create_task(send(c)) for c in calls]
            try:
                await asyncio.wait_for(answered.wait(), timeout=60)
            except TimeoutError:
                statuses = Counter(status for c in calls for status in c.answers)
                raise AssertionError(f"burst not answered: {statuses}\n{bot.log()[-3000:]}") from None
            bot.kill()
            killed_at = asyncio.get_running_loop().time()
            await asyncio.gather(*burst)
            assert await bot.wait() != 0
            first = [c for c in calls if c.answered]
            assert 15 <= len(first) < len(calls), "the kill did not land in the middle of the burst"

            # what was answered 200 before the kill is already in the database
            keys = set(await _all(database_url, select(ProcessedMessage.key)))
            assert [c.key for c in first if c.key not in keys] == []
            assert {t: n for t, n in (await acted_on(database_url, first)).items() if n != 1} == {}

            fake.release_sends()  # the dead process's held sends fail: they never reached WeCom
            await bot.start()
            await retry_as_wecom(http, bot.url, calls, since=killed_at)
            # messages the dead process had leased are delivered once its lease (60 s) runs out
            await until(lambda: outbox_settled(database_url), within=120, what="outbox delivered", every=0.5)

        counts = await acted_on(database_url, calls)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        result = await tally(f"SIGKILL mid-burst, 40 callbacks ({backend})", database_url, fake, calls)
        assert (result.duplicated, result.missing) == (0, 0), result
        assert [t for t, n in counts.items() if n == 0] == [], "callbacks never acted on"
        once = [c for c in calls if counts[c.title] == 1]
        assert {c.title: counts[c.title] for c in calls if counts[c.title] != 1} == {}, "acted on twice"
        assert_announced_once(fake, once)
    finally:
        fake.release_sends()
        await bot.stop()
        await fake.close()
    assert tracebacks(bot.log()) == []


def announcements(fake: RoutedFake, calls: list[Callback]) -> dict[str, int]:
    """How many group sends (robot, app chat) name each callback's event."""
    sends: dict[str, int] = {}
    # group announcements only: a late reply to the organiser (message/send) also names the event
    for recorded in (r for r in fake.sends() if r.path != "/cgi-bin/message/send"):
        body = recorded.body if isinstance(recorded.body, dict) else {}
        text = str((body.get("text") or body.get("markdown") or {}).get("content", ""))
        for call in calls:
            if call.title in text:
                sends[call.title] = sends.get(call.title, 0) + 1
    return {c.title: sends.get(c.title, 0) for c in calls}


async def tally(
    scenario: str, url: str, fake: RoutedFake, calls: list[Callback], *, in_doubt: int = 0
) -> Tally:
    """Count what the scenario did to its callbacks (each should make one event, announced to two groups)
    and record it for the run's summary."""
    counts = await acted_on(url, calls)
    sent = announcements(fake, calls)
    result = Tally(
        scenario,
        sent=len(calls),
        answered=sum(c.answered for c in calls),
        stored=sum(1 for c in calls if counts[c.title] == 1),
        duplicated=sum(1 for c in calls if counts[c.title] > 1 or sent[c.title] > 2),
        missing=sum(1 for c in calls if c.answered and counts[c.title] == 0),
        in_doubt=in_doubt,
    )
    TALLIES.append(result)
    return result


def assert_announced_once(fake: RoutedFake, calls: list[Callback]) -> None:
    """Each callback's event announcement reached each of its alliance's two groups exactly once."""
    sends: dict[str, int] = {}
    # group announcements only: a late reply to the organiser (message/send) also names the event
    for recorded in (r for r in fake.sends() if r.path != "/cgi-bin/message/send"):
        body = recorded.body if isinstance(recorded.body, dict) else {}
        text = str((body.get("text") or body.get("markdown") or {}).get("content", ""))
        for call in calls:
            if call.title in text:
                sends[call.title] = sends.get(call.title, 0) + 1
    assert {c.title: sends.get(c.title, 0) for c in calls} == {c.title: 2 for c in calls}


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    if not PG_URL:
        pytest.skip(f"needs PostgreSQL (a table lock holds a handler mid-way): {POSTGRES.reason}")
    async with fresh_postgres_database() as url:
        yield url


async def _kill_mid_handler(
    tmp_path: Path, url: str, channel: str, *, retry_at_peer: bool = False, hold: str = "calendar_event"
) -> int:
    """Kill a process while it handles one "add event" callback, let WeCom retry it; how many events it made.

    The handler is held mid-way by a lock the test takes on the table ``hold``: on ``calendar_event``, the
    message id is claimed but the event is not yet written when SIGKILL comes; on ``outbox``, the event is
    written (in the message's uncommitted transaction) but its announcement is not. Either way the callback has had no answer. By default WeCom
    retries 5 s later, reaching the restarted process; with ``retry_at_peer`` the first retry reaches a second
    process at once (WeCom's connection to the dead one failed), and later ones follow every 5 s while
    unanswered. An unfinished AI-bot stream is then polled, as WeCom does.
    """
    await prepare_database(url, announcing_roster(tmp_path))
    fake = RoutedFake()
    api_bases = await fake.start_ports(2)
    bots = [
        ServeProcess(f"bot{i}", tmp_path / f"bot{i}", wecom_env(url, base))
        for i, base in enumerate(api_bases)
    ]
    bot, peer = bots
    store = await Store.open(url, migrate=False)
    try:
        await asyncio.gather(*(b.start() for b in (bots if retry_at_peer else [bot])))
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            calls = add_event_callbacks(aibot, app, 2, uuid.uuid4().hex[:6])
            call = calls[0] if channel == "aibot" else calls[1]
            async with store.engine.connect() as lock:
                await lock.execute(text(f"LOCK TABLE {hold} IN EXCLUSIVE MODE"))
                pending = asyncio.create_task(post(http, bot.url, call))

                async def claimed() -> bool:
                    return call.key in set(await _all(url, select(ProcessedMessage.key)))

                await until(claimed, within=10, what="the handler under way")
                await asyncio.sleep(0.3)  # the handler reaches the lock (it would write the event next)
                assert not pending.done(), "answered before the kill: the test did not hold the handler"
                # one transaction per message: an event written before the blocked announcement is not
                # visible (it commits with the announcement and the "done" mark, or not at all)
                assert (await acted_on(url, [call]))[call.title] == 0
                bot.kill()
                killed_at = asyncio.get_running_loop().time()
                assert await pending == 0
                await bot.wait()
                await lock.rollback()
            if retry_at_peer:
                target = peer
                await post(http, peer.url, call)
                killed_at = asyncio.get_running_loop().time()
            else:
                target = await bot.start()
            await retry_as_wecom(http, target.url, [call], since=killed_at)
            if channel == "aibot":
                await poll_stream_as_wecom(target.callbacks(http)[0], call, within=10)
            await until(lambda: outbox_settled(url), within=30, what="outbox delivered", every=0.2)
            events = (await acted_on(url, [call]))[call.title]
            if events:
                assert_announced_once(fake, [call])
    finally:
        await store.close()
        await asyncio.gather(*(b.stop() for b in bots))
        await fake.close()
    for process in bots:
        assert tracebacks(process.log()) == []
    return events


async def poll_stream_as_wecom(aibot: WeComCallbacks, call: Callback, *, within: float) -> None:
    """Poll the message's reply stream (``msgtype: stream``) until it is finished, as WeCom does, bounded."""
    from bot.channels.wecom.aibot import stream_id_for

    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while loop.time() < give_up:
        poll = {
            "msgid": f"poll-{uuid.uuid4().hex}",
            "msgtype": "stream",
            "stream": {"id": stream_id_for(call.msg_id)},
        }
        status, answer, _ = await aibot.post_raw(*aibot.aibot_body(poll))
        assert status == 200
        if not answer or aibot.open_aibot_reply(answer)["stream"]["finish"]:
            return
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("channel", ["app", "aibot"])
async def test_a_message_interrupted_by_a_kill_is_handled_by_its_retry(
    tmp_path: Path, postgres_url: str, channel: str
) -> None:
    assert await _kill_mid_handler(tmp_path, postgres_url, channel) == 1


@pytest.mark.parametrize("channel", ["app", "aibot"])
async def test_a_message_interrupted_after_its_first_write_is_not_acted_on_twice(
    tmp_path: Path, postgres_url: str, channel: str
) -> None:
    assert await _kill_mid_handler(tmp_path, postgres_url, channel, hold="outbox") == 1


@pytest.mark.parametrize("channel", ["app", "aibot"])
async def test_a_retry_reaching_another_process_at_once_is_not_dropped(
    tmp_path: Path, postgres_url: str, channel: str
) -> None:
    # The claim of the dead process is not yet 4 s old, so it cannot be taken over: the retry must be answered
    # with a failure (WeCom tries again later), never with a 200 that ends WeCom's retries unacted on.
    assert await _kill_mid_handler(tmp_path, postgres_url, channel, retry_at_peer=True) == 1


# -- the database away -----------------------------------------------------------------------------------------


class TcpProxy:
    """A TCP proxy in front of PostgreSQL that can be cut (connections dropped, new ones refused) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.up = True
        self.flowing = asyncio.Event()  # cleared: connections stay open but nothing gets through (a stall)
        self.flowing.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        """The database becomes unreachable: open connections are reset, new ones are closed at once."""
        self.up = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        """The database is reachable again (and a stall ends: what was held back goes through)."""
        self.up = True
        self.flowing.set()

    def stall(self) -> None:
        """The database stops answering without closing anything (a network partition, a hung server)."""
        self.flowing.clear()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self.flowing.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self._tasks.discard)
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


@pytest.fixture
async def proxied_postgres() -> AsyncIterator[tuple[str, str, TcpProxy]]:
    """A fresh PostgreSQL database: its direct URL, its URL through a cuttable proxy, and the proxy."""
    if not PG_URL:
        pytest.skip(f"the database outage runs on PostgreSQL: {POSTGRES.reason}")
    async with fresh_postgres_database() as url:
        parsed = make_url(url)
        proxy = await TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
        try:
            yield (
                url,
                parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                proxy,
            )
        finally:
            await proxy.close()


async def test_database_outage_answers_503_and_recovers_by_itself(
    tmp_path: Path, proxied_postgres: tuple[str, str, TcpProxy]
) -> None:
    direct_url, proxied_url, proxy = proxied_postgres
    await prepare_database(direct_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(proxied_url, api_base), port=free_port())
    try:
        await bot.start()
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            before, during = (add_event_callbacks(aibot, app, 4, uuid.uuid4().hex[:6]) for _ in range(2))
            assert [await post(http, bot.url, c) for c in before] == [200] * 4
            assert (await bot.healthz(http))[0] == 200
            # no delivery in flight when the database goes (see the test below for one that is)
            await until(lambda: outbox_settled(direct_url), within=30, what="outbox delivered", every=0.1)

            proxy.cut()
            loop = asyncio.get_running_loop()
            for call in during:
                started = loop.time()
                status = await post(http, bot.url, call)
                assert status == 503, f"{call.channel} callback answered {status} while the database is away"
                assert loop.time() - started < 5, "not answered within WeCom's 5 s"
            status, health = await bot.healthz(http)
            assert status == 503 and health["status"] == "degraded", health

            proxy.restore()

            async def healthy() -> bool:
                return (await bot.healthz(http))[0] == 200

            await until(healthy, within=30, what="/healthz ok again without a restart", every=0.2)
            await retry_unanswered(http, bot.url, during, within=30)
            assert all(c.answers[-1] == 200 and 503 in c.answers for c in during)
            await until(lambda: outbox_settled(direct_url), within=60, what="outbox delivered", every=0.2)
        result = await tally("database cut, 8 callbacks (503, retried)", direct_url, fake, before + during)
        assert (result.stored, result.duplicated, result.missing) == (8, 0, 0), result
        assert set((await acted_on(direct_url, before + during)).values()) == {1}
        assert_announced_once(fake, before + during)
    finally:
        await bot.stop()
        await fake.close()
    log = bot.log()
    for unexpected in ("callback failed", "handler failed", "late answer failed"):
        assert unexpected not in log


async def test_a_send_that_succeeds_during_an_outage_is_not_repeated(
    tmp_path: Path, proxied_postgres: tuple[str, str, TcpProxy]
) -> None:
    direct_url, proxied_url, proxy = proxied_postgres
    await prepare_database(direct_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(proxied_url, api_base))
    try:
        await bot.start()
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            (call,) = add_event_callbacks(aibot, app, 1, uuid.uuid4().hex[:6])
            fake.hold_sends()
            assert await post(http, bot.url, call) == 200

            async def sending() -> bool:
                return fake.held >= 1

            await until(sending, within=10, what="the announcement being sent")
            proxy.cut()
            fake.release_sends()  # WeCom delivers it; the bot cannot record that
            await until(lambda: asyncio.sleep(0, len(fake.sends()) >= 1), within=10, what="the send answered")
            await asyncio.sleep(0.5)  # the worker tries to record the outcome while the database is away
            proxy.restore()
            await until(lambda: outbox_settled(direct_url), within=90, what="outbox delivered", every=0.5)
        assert_announced_once(fake, [call])
    finally:
        fake.release_sends()
        await bot.stop()
        await fake.close()


@pytest.mark.parametrize("channel", ["app", "aibot"])
async def test_a_stalled_database_neither_hangs_callbacks_nor_loses_them(
    tmp_path: Path, proxied_postgres: tuple[str, str, TcpProxy], channel: str
) -> None:
    # The database stops answering without refusing connections. A callback must still be answered within
    # WeCom's 5 s; whatever the answer, once the database answers again the message is acted on once and its
    # reply reaches the user (passively, or later through message/send when the answer was "later").
    direct_url, proxied_url, proxy = proxied_postgres
    await prepare_database(direct_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(proxied_url, api_base))
    try:
        await bot.start()
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            calls = add_event_callbacks(aibot, app, 4, uuid.uuid4().hex[:6])  # aibot, app, aibot, app
            warm, call = calls[2:] if channel == "aibot" else calls[1::2]
            assert await post(http, bot.url, warm) == 200
            await until(lambda: outbox_settled(direct_url), within=30, what="outbox delivered", every=0.1)

            proxy.stall()
            loop = asyncio.get_running_loop()
            started = loop.time()
            status = await post(http, bot.url, call)
            assert status != 0 and loop.time() - started < 5, "not answered within WeCom's 5 s"
            await asyncio.sleep(3)  # the stall goes on a little longer
            proxy.restore()
            await retry_as_wecom(http, bot.url, [call], since=loop.time() - WECOM_RETRY_AFTER)

            async def acted() -> bool:
                return (await acted_on(direct_url, [call]))[call.title] > 0

            await until(acted, within=30, what="the message acted on", every=0.2)
            await until(lambda: outbox_settled(direct_url), within=60, what="outbox delivered", every=0.2)
        result = await tally(f"database stalled 3 s, {channel} callback", direct_url, fake, [warm, call])
        assert (result.stored, result.duplicated, result.missing) == (2, 0, 0), result
        assert (await acted_on(direct_url, [call]))[call.title] == 1
        assert_announced_once(fake, [warm, call])
        if status == 200 and channel == "app":
            # answered "later" while stalled: the reply went out through message/send
            late = [r for r in fake.delivered("/cgi-bin/message/send") if "已添加活动" in str(r.body)]
            assert len(late) == 1, [r.body for r in fake.delivered("/cgi-bin/message/send")]
    finally:
        proxy.restore()  # so that the process can shut down cleanly
        await bot.stop()
        await fake.close()


async def test_a_message_answered_later_then_killed_is_finished_by_the_recovery_worker(
    tmp_path: Path, postgres_url: str
) -> None:
    # The old design's worst loss: the callback was answered 200 ("later": the handler was slow), then the
    # process died before the handler finished. WeCom does not retry a 200; the message is in the inbox, and
    # the restarted process's recovery worker finishes it: the event is added once, announced once, and the
    # answer reaches the sender through message/send.
    url = postgres_url
    await prepare_database(url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(url, api_base))
    store = await Store.open(url, migrate=False)
    try:
        await bot.start()
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            (_, call) = add_event_callbacks(aibot, app, 2, uuid.uuid4().hex[:6])
            async with store.engine.connect() as lock:
                await lock.execute(text("LOCK TABLE calendar_event IN EXCLUSIVE MODE"))
                loop = asyncio.get_running_loop()
                started = loop.time()
                assert await post(http, bot.url, call) == 200  # answered "later" within the deadline
                assert loop.time() - started < 5
                assert (await acted_on(url, [call]))[call.title] == 0
                bot.kill()
                await bot.wait()
                await lock.rollback()
            await bot.start()

            async def acted() -> bool:
                return (await acted_on(url, [call]))[call.title] > 0

            await until(acted, within=60, what="the recovery worker finishing the message", every=0.5)
            await until(lambda: outbox_settled(url), within=30, what="outbox delivered", every=0.2)
        result = await tally("answered later, then SIGKILL (recovery worker)", url, fake, [call])
        assert (result.stored, result.duplicated, result.missing) == (1, 0, 0), result
        assert (await acted_on(url, [call]))[call.title] == 1
        assert_announced_once(fake, [call])
        late = [r for r in fake.delivered("/cgi-bin/message/send") if "已添加活动" in str(r.body)]
        assert len(late) == 1, [r.body for r in fake.delivered("/cgi-bin/message/send")]
        assert "recovering message app:" in bot.log()
    finally:
        await store.close()
        await bot.stop()
        await fake.close()
    assert tracebacks(bot.log()) == []


# -- sends in flight at a kill ------------------------------------------------------------------------


async def test_sends_in_flight_at_a_kill_are_marked_and_never_repeated_to_a_person(
    tmp_path: Path, database_url: str
) -> None:
    # A backlog in the outbox (four alliances' two groups each, four leads' DMs): WeCom acts on each send at
    # once but holds back its answers, and the process dies waiting for them. The restarted process takes the
    # leased messages over, finds them marked in flight and sends them again (WeCom may never have got
    # them): message/send with WeCom's duplicate check, so a person never gets one twice; a group (robot, app
    # chat: no such check) may, and only for a send marked in doubt.
    await prepare_database(database_url, announcing_roster(tmp_path))
    tag = uuid.uuid4().hex[:6]
    alliances = list(LEADS)
    queued = [
        *(
            OutboxMessage(
                target_kind=kind, target=f"{prefix}-{a}", text=f"【新活动】{tag} 讲座 {a} {prefix} 第{n}条"
            )
            for a in alliances
            for kind, prefix in (("webhook", "hook"), ("appchat", "chat"))
            for n in range(2)
        ),
        *(
            OutboxMessage(target_kind="user", target=lead, text=f"【技术问题 {tag}】请认领第{i}个")
            for i, lead in enumerate(LEADS.values())
        ),
    ]
    store = await Store.open(database_url, migrate=False)
    try:
        assert await store.outbox.add(queued) == len(queued)
    finally:
        await store.close()
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(database_url, api_base))
    try:
        fake.hold_answers()
        await bot.start()

        async def in_flight() -> bool:
            # one send per target at a time: 8 groups and 4 people; the kill comes before the client's own
            # 10 s timeout would retry any of them
            return fake.answers_held >= 12

        await until(in_flight, within=30, what="sends acted on with their answers held")
        bot.kill()
        await bot.wait()
        fake.release_answers()
        await bot.start()
        # the dead process's leases (60 s) run out, then the messages are sent again
        await until(lambda: outbox_settled(database_url), within=120, what="outbox delivered", every=0.5)
        rows = await _all(database_url, select(OutboxMessage))
        in_doubt = [r for r in rows if r.in_doubt]
        assert len(in_doubt) == 12, [(r.target, r.text, r.in_doubt) for r in rows]
        assert all(r.sending_since is None and r.status == "sent" for r in rows)
        delivered: Counter[str] = Counter()
        for recorded in fake.sends():
            body = recorded.body if isinstance(recorded.body, dict) else {}
            delivered[str((body.get("text") or body.get("markdown") or {}).get("content", ""))] += 1
        counts = {m.text: sum(n for text, n in delivered.items() if m.text in text) for m in queued}
        # a person gets each notice once: the repeats of message/send were dropped by the duplicate check
        personal = {m.text: counts[m.text] for m in queued if m.target_kind == "user"}
        assert personal == {text: 1 for text in personal}
        assert sum(r.repeat for r in fake.calls("/cgi-bin/message/send")) == 4
        # a group may get an announcement twice, and only one whose send was in doubt
        doubtful = {r.text for r in in_doubt}
        assert all(1 <= counts[m.text] <= (2 if m.text in doubtful else 1) for m in queued), (
            counts,
            doubtful,
        )
        result = Tally(
            f"sends in flight at SIGKILL ({'PostgreSQL' if database_url.startswith('postgresql') else 'SQLite'})",
            sent=len(queued),
            answered=len(queued),
            stored=sum(1 for m in queued if counts[m.text] >= 1),
            duplicated=sum(1 for m in queued if counts[m.text] > 1),
            missing=sum(1 for m in queued if counts[m.text] == 0),
            in_doubt=len(in_doubt),
        )
        TALLIES.append(result)
        assert result.missing == 0 and result.duplicated <= sum(
            1 for r in in_doubt if r.target_kind != "user"
        )
    finally:
        fake.release_answers()
        await bot.stop()
        await fake.close()
    assert "was in flight when its worker stopped" in bot.log()
    assert tracebacks(bot.log()) == []


# -- the database away for 20 s under a burst on two processes --------------------------------------------


async def test_a_database_stopped_for_20_s_under_a_burst_on_two_processes(
    tmp_path: Path, proxied_postgres: tuple[str, str, TcpProxy]
) -> None:
    # 60 callbacks, two a second, across two processes; once 15 are answered the database goes away for 20 s.
    # WeCom retries an unanswered callback 3 times, 5 s apart, each time at the other process, then gives up:
    # what was answered 503 throughout the outage is WeCom's to drop. Whatever was answered 200 — passively,
    # or "later" and then finished by the recovery worker — is acted on once and announced once.
    direct_url, proxied_url, proxy = proxied_postgres
    await prepare_database(direct_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    bases = await fake.start_ports(2)
    bots = [
        ServeProcess(f"bot{i}", tmp_path / f"bot{i}", wecom_env(proxied_url, b)) for i, b in enumerate(bases)
    ]
    try:
        await asyncio.gather(*(b.start() for b in bots))
        async with aiohttp.ClientSession() as http:
            aibot, app = bots[0].callbacks(http)  # same keys for both processes
            calls = add_event_callbacks(aibot, app, 60, uuid.uuid4().hex[:6])
            # 15 per alliance: the robots' 20/min is not reached, and pacing is not what this measures
            gate = asyncio.Semaphore(16)
            loop = asyncio.get_running_loop()

            async def as_wecom(call: Callback) -> None:
                async with gate:
                    await post(http, bots[call.index % 2].url, call, within=5.0)
                for attempt in range(1, WECOM_RETRIES + 1):
                    if call.answered:
                        return
                    await asyncio.sleep(WECOM_RETRY_AFTER)
                    await post(http, bots[(call.index + attempt) % 2].url, call, within=5.0)

            async def paced() -> (
                None
            ):  # two callbacks a second: some before, some during, some after the outage
                tasks = []
                for call in calls:
                    tasks.append(asyncio.create_task(as_wecom(call)))
                    await asyncio.sleep(0.5)
                await asyncio.gather(*tasks)

            burst = asyncio.create_task(paced())

            async def some_answered() -> bool:
                return sum(c.answered for c in calls) >= 15

            await until(some_answered, within=30, what="15 callbacks answered before the outage", every=0.05)
            proxy.cut()
            cut_at = loop.time()
            await asyncio.sleep(20.0)
            proxy.restore()
            assert loop.time() - cut_at >= 20
            await burst
            answered = [c for c in calls if c.answered]
            assert 15 <= len(answered) < len(calls) and calls[-1].answered, "the outage was not mid-burst"

            async def all_acted() -> bool:
                counts = await acted_on(direct_url, answered)
                return all(n >= 1 for n in counts.values())

            # a message answered "later" before the cut is finished by a recovery worker (30 s after its claim)
            await until(all_acted, within=90, what="every answered callback acted on", every=0.5)
            await until(lambda: outbox_settled(direct_url), within=90, what="outbox delivered", every=0.5)
        counts = await acted_on(direct_url, calls)
        result = await tally("database stopped 20 s, 60-callback burst, 2 processes", direct_url, fake, calls)
        assert (result.missing, result.duplicated) == (0, 0), result
        assert_announced_once(fake, [c for c in calls if counts[c.title] == 1])
        statuses = Counter(status for c in calls for status in c.answers)
        assert statuses[503] > 0, f"the outage was not seen: {statuses}"
    finally:
        proxy.restore()
        await asyncio.gather(*(b.stop() for b in bots))
        await fake.close()
    for process in bots:
        assert tracebacks(process.log()) == []


# -- a slow WeCom API during a burst --------------------------------------------------------------------------


async def test_a_slow_wecom_api_delays_sends_but_loses_and_doubles_nothing(
    tmp_path: Path, database_url: str
) -> None:
    # Every WeCom call takes 2 s (token, sends) while 20 callbacks arrive at once: the callbacks are still
    # answered within WeCom's 5 s (the outbox sends later), each is acted on once and announced once.
    await prepare_database(database_url, announcing_roster(tmp_path))
    fake = RoutedFake()
    (api_base,) = await fake.start_ports(1)
    bot = ServeProcess("bot", tmp_path / "bot", wecom_env(database_url, api_base))
    try:
        await bot.start()
        fake.slow_next(2.0, times=1000)
        async with aiohttp.ClientSession() as http:
            aibot, app = bot.callbacks(http)
            calls = add_event_callbacks(aibot, app, 20, uuid.uuid4().hex[:6])
            loop = asyncio.get_running_loop()
            started = loop.time()
            statuses = await asyncio.gather(*(post(http, bot.url, c, within=5.0) for c in calls))
            assert statuses == [200] * len(calls), Counter(statuses)
            assert loop.time() - started < 5 + 1, "callbacks waited for the slow API"
            await until(lambda: outbox_settled(database_url), within=120, what="outbox delivered", every=0.5)
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        result = await tally(f"WeCom API 2 s per call, 20 callbacks ({backend})", database_url, fake, calls)
        assert (result.stored, result.duplicated, result.missing) == (20, 0, 0), result
        assert_announced_once(fake, calls)
    finally:
        await bot.stop()
        await fake.close()
    assert tracebacks(bot.log()) == []
