"""Fuzzing the command parser and every registered handler with random Chinese/ASCII/emoji text."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import BotApp
from bot.core.messages import Event
from bot.services.studios import load_roster
from bot.settings import Settings
from tests.harness import EXAMPLE_ROSTER

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
FULL_WIDTH = st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E)
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
ANY = st.characters(blacklist_categories=("Cs",))
PIECES = st.text(
    st.one_of(CJK, FULL_WIDTH, EMOJI, ANY, st.sampled_from(" /／#@\n\t0123456789T-")), max_size=40
)


def command_texts(words: list[str]) -> st.SearchStrategy[str]:
    """Text that often starts with a real command word, followed by random arguments."""
    prefixed = st.tuples(
        st.sampled_from(["/", "／", " /"]), st.sampled_from(words), st.sampled_from([" ", "　", ""]), PIECES
    )
    return st.one_of(PIECES, prefixed.map("".join), st.text(ANY, min_size=1000, max_size=5000))


@pytest.mark.slow
def test_no_input_crashes_or_hangs(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    bot = loop.run_until_complete(
        BotApp.create(
            Settings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}",
                admins=["admin1"],
                rate_limit_per_min=0,
            )
        )
    )
    loop.run_until_complete(bot.store.studios.import_roster(load_roster(EXAMPLE_ROSTER)))
    words = sorted({w for c in bot.dispatcher.commands for w in c.words})
    users = ["admin1", "chenjuejin", "mushandong", "someone"]

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        text=command_texts(words), user=st.sampled_from(users), group=st.sampled_from([None, "隧道联盟群"])
    )
    def check(text: str, user: str, group: str | None) -> None:
        event = Event(
            channel="fuzz",
            user_id=user,
            text=text,
            received_at=bot.clock.now(),
            chat_id=group,
            msg_id=uuid.uuid4().hex,
        )
        reply = loop.run_until_complete(asyncio.wait_for(bot.handle(event), timeout=10))
        if reply is not None:
            assert reply.text.strip()
            assert "出错了" not in reply.text, f"handler crashed on {text!r} from {user}"

    try:
        check()
    finally:
        loop.run_until_complete(bot.close())
        loop.close()
