"""WeCom wiring: mounts the callback channels whose settings are present and sets the outbox senders.

- ``BOT_WECOM_AIBOT_TOKEN`` + ``BOT_WECOM_AIBOT_AES_KEY`` → ``/wecom/aibot`` (group @mentions, 1:1 chats);
- ``BOT_WECOM_CORP_ID`` + ``BOT_WECOM_APP_TOKEN`` + ``BOT_WECOM_APP_AES_KEY`` → ``/wecom/app``;
- ``BOT_WECOM_CORP_ID`` + ``BOT_WECOM_SECRET`` (+ ``BOT_WECOM_AGENT_ID``) → ``message/send``, ``appchat/send``;
- ``BOT_WECOM_AIBOT_ID`` + ``BOT_WECOM_AIBOT_SECRET`` → the AI bot's long connection (``longconn``: replies,
  pushes, and personal messages when the app is not configured);
- any of them → group robot webhooks and AI-bot response URLs (they need no credentials of their own).

With no WeCom settings at all nothing is mounted and outbound messages stay in the outbox (the console channel
shows them instead).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from bot.app import BotApp
from bot.channels.wecom.agent import AppChannel
from bot.channels.wecom.aibot import AibotChannel
from bot.channels.wecom.client import WeComClient
from bot.channels.wecom.crypto import CallbackCrypto, aes_key
from bot.channels.wecom.directory import WeComDirectory
from bot.channels.wecom.files import UserFileSender
from bot.channels.wecom.longconn import LongConnChannel, LongConnSender
from bot.channels.wecom.senders import AppChatSender, ResponseUrlSender, UserSender, WebhookSender
from bot.core.messages import TargetKind
from bot.core.outbox import Sender
from bot.core.runtime import Runtime
from bot.settings import Settings, SettingsError
from bot.store.funds import FundRepo
from bot.store.outbox import SendLogRepo
from bot.store.wecom import AibotStreamRepo, TokenRepo

log = logging.getLogger(__name__)


def _crypto(bot: BotApp, *, token: str, key: str, key_name: str, receive_id: str) -> CallbackCrypto:
    try:
        aes_key(key)
    except ValueError as exc:
        raise SettingsError(f"{key_name}: {exc}") from None
    return CallbackCrypto(
        token=token,
        encoding_aes_key=key,
        receive_id=receive_id,
        max_age=bot.settings.callback_max_age,
        now=bot.clock.now,
    )


def _senders(bot: BotApp, client: WeComClient) -> dict[TargetKind, Sender]:
    settings: Settings = bot.settings
    senders: dict[TargetKind, Sender] = {
        TargetKind.WEBHOOK: WebhookSender(client),
        TargetKind.RESPONSE_URL: ResponseUrlSender(client, AibotStreamRepo(bot.store.sessions)),
    }
    if settings.api_enabled:
        senders[TargetKind.APPCHAT] = AppChatSender(client)
        if settings.wecom_agent_id:
            try:
                # cards only where the app's callback is configured: WeCom sends button clicks there
                senders[TargetKind.USER] = UserSender(client, settings.wecom_agent_id, cards=settings.app_enabled)
                files = FundRepo(bot.store.sessions)
                senders[TargetKind.USER_FILE] = UserFileSender(client, settings.wecom_agent_id, files)
            except ValueError:
                raise SettingsError("BOT_WECOM_AGENT_ID: must be the app's numeric AgentId") from None
        else:
            log.warning("BOT_WECOM_AGENT_ID is not set: personal messages (message/send) cannot be sent")
    return senders


async def setup(bot: BotApp) -> None:
    """Mount the configured WeCom channels and senders; register the clean-up job."""
    settings = bot.settings
    if settings.aibot_enabled:
        aibot = AibotChannel(
            bot,
            _crypto(
                bot,
                token=settings.wecom_aibot_token,
                key=settings.wecom_aibot_aes_key,
                key_name="BOT_WECOM_AIBOT_AES_KEY",
                receive_id="",
            ),
        )
        bot.runtime.add_feature(aibot)
        bot.web_setups.append(aibot.add_routes)
        bot.live_channels.append("aibot")
    if settings.app_enabled:
        app = AppChannel(
            bot,
            _crypto(
                bot,
                token=settings.wecom_app_token,
                key=settings.wecom_app_aes_key,
                key_name="BOT_WECOM_APP_AES_KEY",
                receive_id=settings.wecom_corp_id,
            ),
        )
        bot.runtime.add_feature(app)
        bot.web_setups.append(app.add_routes)
        bot.live_channels.append("app")
    longconn: LongConnChannel | None = None
    if settings.longconn_enabled:
        longconn = LongConnChannel(bot)
        bot.runtime.add_feature(longconn)
        bot.startup_hooks.append(longconn.start)
        bot.health["longconn"] = longconn.report
        bot.live_channels.append("longconn")
    if settings.aibot_enabled or settings.app_enabled or settings.api_enabled or longconn is not None:
        client = WeComClient(
            base_url=settings.wecom_api_base,
            corp_id=settings.wecom_corp_id,
            secret=settings.wecom_secret,
            now=bot.clock.now,
            tokens=TokenRepo(bot.store.sessions),
        )
        bot.runtime.add_feature(client)
        bot.shutdown_hooks.append(client.close)
        senders = _senders(bot, client)
        if settings.api_enabled:  # names of members the roster does not know, from WeCom's directory
            # its own client: a lookup runs inside a handler's unit of work, so its token must not need the
            # database (the shared token's refresh writes wecom_token, which SQLite's write lock would block)
            lookup_client = WeComClient(
                base_url=settings.wecom_api_base,
                corp_id=settings.wecom_corp_id,
                secret=settings.wecom_secret,
                now=bot.clock.now,
                max_attempts=1,
            )
            bot.shutdown_hooks.append(lookup_client.close)
            bot.store.directory = WeComDirectory(lookup_client, now=bot.clock.now)
        if longconn is not None:
            senders[TargetKind.LONGCONN] = LongConnSender(longconn)
            # without the app, personal messages (a lead asked to take a problem) are pushes to the 1:1 chat
            senders.setdefault(TargetKind.USER, senders[TargetKind.LONGCONN])
        bot.use_senders(senders)
        labels = {
            TargetKind.USER: "message/send",
            TargetKind.APPCHAT: "appchat/send",
            TargetKind.WEBHOOK: "webhook",
        }
        bot.live_channels.extend(label for kind, label in labels.items() if kind in senders)
    bot.jobs.add(
        "prune-wecom-state",
        CronTrigger(hour=3, minute=23, timezone=settings.tz),
        _prune,
        description="清理过期的发送频率记录和智能机器人回复流",
    )


async def _prune(runtime: Runtime, now: datetime) -> str:
    # the longest pacing window is an hour; WeCom polls a stream for 6 minutes and response_url lasts an hour
    sends = await SendLogRepo(runtime.store.sessions).prune(now - timedelta(hours=2))
    streams = await AibotStreamRepo(runtime.store.sessions).prune(now - timedelta(days=1))
    return f"removed {sends} send records, {streams} streams"
