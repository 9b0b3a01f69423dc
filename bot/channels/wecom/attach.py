"""Photos attached to the asker's problem: shared by the long connection, the AI-bot callback channel and the
self-built app (whose images come by ``MediaId`` through ``media/get``, ``media.download_media``).

A message's images are fetched at once (WeCom's URLs expire in about five minutes; ``media.fetch_image``),
stored content-addressed under ``<data dir>/media`` and attached to the problem the same message logged (text
and images together: the text is the problem), else to the asker's latest active problem in the same chat
posted within ``PHOTO_WINDOW``. A photo row is keyed by its message and position (``channel:msgid#n``), so a
message delivered twice attaches its photos once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp

from bot.app import BotApp
from bot.channels.wecom.media import ImageRef, MediaError, fetch_image
from bot.store.media import MediaFiles, PhotoRepo, ProblemPhoto

log = logging.getLogger(__name__)

PHOTO_WINDOW = timedelta(minutes=30)  # a photo this soon after the asker's problem, in the same chat, joins it
PHOTO_ALONE = "收到照片。请先用文字描述问题（发送问题内容即可登记），再发照片，照片会附在问题上。"
LOST_REASON = "已过期或格式不支持"


@dataclass(slots=True)
class Fetched:
    """A message's images: those downloaded and accepted (position in the message, bytes, MIME type), and how
    many were not."""

    images: list[tuple[int, bytes, str]] = field(default_factory=list)
    failed: int = 0
    why: str = LOST_REASON  # why the failed ones were not kept, for the asker


class PhotoAttacher:
    """Fetches a message's images and attaches them to the asker's problem, for one channel."""

    def __init__(self, bot: BotApp, channel: str) -> None:
        self.bot = bot
        self.channel = channel
        self.photos = PhotoRepo(bot.store.sessions)
        self.media = MediaFiles(bot.settings.effective_data_dir / "media")

    async def fetch(self, refs: Sequence[ImageRef], *, msg_id: str, within: float | None = None) -> Fetched:
        """Download, decrypt and check each image, all at once; with ``within``, images not in by then count
        as failed (a callback must be answered in time)."""
        fetched = Fetched()
        if not refs:
            return fetched
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.ensure_future(fetch_image(session, ref)) for ref in refs]
            _, pending = await asyncio.wait(tasks, timeout=within)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for n, task in enumerate(tasks, start=1):  # in the message's order
                if task in pending:
                    fetched.failed += 1
                    log.warning("%s: an image of message %s was not in within %.1f s", self.channel, msg_id, within)
                    continue
                exc = task.exception()
                if exc is None:
                    fetched.images.append((n, *task.result()))
                elif isinstance(exc, MediaError):
                    fetched.failed += 1
                    log.warning("%s: an image of message %s was not kept: %s", self.channel, msg_id, exc)
                else:
                    fetched.failed += 1
                    log.error("%s: an image of message %s failed", self.channel, msg_id, exc_info=exc)
        return fetched

    async def attach(
        self, *, msg_id: str, user_id: str, chat_id: str | None, fetched: Fetched, own_key: str | None
    ) -> str:
        """Store a message's photos and attach them to the asker's problem; what to tell the asker."""
        problem = await self.photos.problem_for(
            asker=user_id,
            chat_id=chat_id,
            now=self.bot.clock.now(),
            within=PHOTO_WINDOW,
            message_key=own_key,
        )
        images, failed = fetched.images, fetched.failed
        if not failed:
            lost = ""
        elif images:
            lost = f"另有 {failed} 张照片未能保存（{fetched.why}），请重新发送。"
        else:
            lost = f"{failed} 张照片未能保存（{fetched.why}），请重新发送。"
        if problem is None or problem.id is None:
            return PHOTO_ALONE + lost if images or not failed else lost
        for n, data, mime in images:
            digest = await asyncio.to_thread(self.media.put, data, mime)
            await self.photos.attach(
                ProblemPhoto(
                    problem_id=problem.id,
                    sha256=digest,
                    mime=mime,
                    size=len(data),
                    user_id=user_id,
                    chat_id=chat_id,
                    msg_key=f"{self.channel}:{msg_id}#{n}",  # its place in the message: a retry adds none
                    created_at=self.bot.clock.now(),
                )
            )
        total = len(await self.photos.of_problem(problem.id))
        kept = f"已把 {len(images)} 张照片附到问题 #{problem.id}（共 {total} 张，/问题详情 {problem.id} 查看）。"
        return (kept if images else "") + lost

    async def already_attached(self, *, msg_id: str) -> str | None:
        """What to tell the asker about a message whose photo was attached already (a retried callback), or
        None when it was not."""
        photo = await self.photos.by_key(f"{self.channel}:{msg_id}#1")
        if photo is None:
            return None
        total = len(await self.photos.of_problem(photo.problem_id))
        return f"这张照片已附到问题 #{photo.problem_id}（共 {total} 张，/问题详情 {photo.problem_id} 查看）。"
