"""Photos into problems, whichever WeCom channel brought them (the long connection's ``image``/``mixed``
messages, the app's ``image`` callbacks): stored content-addressed and attached to the asker's problem.

A photo joins the problem its own message logged, else the asker's latest active problem in the same chat
posted within ``PHOTO_WINDOW``. Each image is recorded under its message's key (``channel:msgid#n``), unique in
``problem_photo``, so a message delivered twice attaches its photos once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store.media import MediaFiles, PhotoRepo, ProblemPhoto

PHOTO_WINDOW = timedelta(minutes=30)  # a photo this soon after the asker's problem, in the same chat, joins it
PHOTO_ALONE = "收到照片。请先用文字描述问题（发送问题内容即可登记），再发照片，照片会附在问题上。"
LOST_REASON = "已过期或格式不支持"


@dataclass(slots=True, frozen=True)
class Photo:
    """A downloaded, checked image: its bytes and MIME type."""

    data: bytes
    mime: str


def photo_key(channel: str, msg_id: str, n: int) -> str:
    """The key an image is recorded under: the message it came in and its place in it."""
    return f"{channel}:{msg_id}#{n}"


class PhotoAttacher:
    """Stores a message's photos and attaches them to the asker's problem."""

    def __init__(self, *, photos: PhotoRepo, media: MediaFiles, now: Callable[[], datetime]) -> None:
        self.photos = photos
        self.media = media
        self._now = now

    async def attach(
        self,
        *,
        channel: str,
        msg_id: str,
        user_id: str,
        chat_id: str | None,
        fetched: Sequence[Photo],
        failed: int = 0,
        why: str = LOST_REASON,
        own_key: str | None = None,
    ) -> str:
        """Attach ``fetched`` to the asker's problem (``own_key``: the key of a problem the same message
        logged); what to tell the asker, ``failed`` images (lost for ``why``) included."""
        problem = await self.photos.problem_for(
            asker=user_id, chat_id=chat_id, now=self._now(), within=PHOTO_WINDOW, message_key=own_key
        )
        if not failed:
            lost = ""
        elif fetched:
            lost = f"另有 {failed} 张照片未能保存（{why}），请重新发送。"
        else:
            lost = f"照片未能保存（{why}），请重新发送。"
        if problem is None or problem.id is None:
            return PHOTO_ALONE + lost if fetched or not failed else lost
        for n, photo in enumerate(fetched, start=1):
            digest = await asyncio.to_thread(self.media.put, photo.data, photo.mime)
            await self.photos.attach(
                ProblemPhoto(
                    problem_id=problem.id,
                    sha256=digest,
                    mime=photo.mime,
                    size=len(photo.data),
                    user_id=user_id,
                    chat_id=chat_id,
                    msg_key=photo_key(channel, msg_id, n),
                    created_at=self._now(),
                )
            )
        total = len(await self.photos.of_problem(problem.id))
        kept = f"已把 {len(fetched)} 张照片附到问题 #{problem.id}（共 {total} 张，/问题详情 {problem.id} 查看）。"
        return (kept if fetched else "") + lost

    async def already_attached(self, *, channel: str, msg_id: str) -> str | None:
        """What to tell the asker about a message whose photo was attached already (a retried callback), or
        None when it was not."""
        photo = await self.photos.by_key(photo_key(channel, msg_id, 1))
        if photo is None:
            return None
        total = len(await self.photos.of_problem(photo.problem_id))
        return f"这张照片已附到问题 #{photo.problem_id}（共 {total} 张，/问题详情 {photo.problem_id} 查看）。"
