"""Template cards (模板卡片, ``button_interaction``) for the WeCom channels that have them.

A card is a message plus buttons for the typed commands it mentions; a click comes back as a
``template_card_event`` with the button's key, which becomes exactly the typed command (``/认领 12``) from the
clicking user, dispatched like any message (dedupe, caller, role check, the same handler and audit). The card
is then updated with the handler's answer (who claimed, or why not). Channels without cards send the text,
which names the typed commands.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bot.channels.wecom.senders import clip

# button key → the command it stands for; the key carries the problem number: ``problem:claim:12``
PROBLEM_BUTTONS: tuple[tuple[str, str, str, int], ...] = (
    ("claim", "认领", "/认领", 1),
    ("transfer", "转派", "/转派", 2),
    ("solve", "已解决", "/解决", 2),
)
_KEY = re.compile(r"^problem:(claim|transfer|solve):(\d{1,9})$")
SUB_TITLE_BYTES = 1200


def problem_buttons(number: int) -> list[dict[str, Any]]:
    """The buttons of a problem's card."""
    return [
        {"text": label, "style": style, "key": f"problem:{action}:{number}"}
        for action, label, _, style in PROBLEM_BUTTONS
    ]


def task_id_for(number: int, user_id: str, text: str) -> str:
    """A card's task id: unique per bot, and the same for a repeated send of the same card (WeCom drops it)."""
    digest = hashlib.sha1(f"{user_id}\n{text}".encode()).hexdigest()[:12]
    return f"problem-{number}-{digest}"


def problem_card(number: int, text: str, *, task_id: str) -> dict[str, Any]:
    """The lead's request for a problem as a ``button_interaction`` card: the request's text, and buttons."""
    head, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": clip(head.strip("【】") or f"技术问题 #{number}", 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "button_list": problem_buttons(number),
        "task_id": task_id,
    }


def updated_problem_card(number: int, outcome: str, *, task_id: str) -> dict[str, Any]:
    """The card after a click: the outcome (who claimed, or why not) in place of the request."""
    return {
        "card_type": "button_interaction",
        "main_title": {"title": f"技术问题 #{number}"},
        "sub_title_text": clip(outcome, SUB_TITLE_BYTES),
        "button_list": problem_buttons(number),
        "task_id": task_id,
    }


def command_for_key(key: str) -> tuple[int, str] | None:
    """``problem:claim:12`` → ``(12, "/认领 12")``; None for a key the bot did not make."""
    match = _KEY.match(key.strip())
    if match is None:
        return None
    action, number = match.group(1), int(match.group(2))
    command = next(c for a, _, c, _ in PROBLEM_BUTTONS if a == action)
    return number, f"{command} {number}"


def click_of(event: dict[str, Any]) -> tuple[str, str]:
    """The clicked button's key and the card's task id from a ``template_card_event`` (the fields sit in a
    ``template_card_event`` object in the documented callbacks, directly in ``event`` in some SDKs' types)."""
    inner = event.get("template_card_event")
    source = inner if isinstance(inner, dict) else event
    return str(source.get("event_key") or ""), str(source.get("task_id") or "")


def answer_card(number: int, text: str, *, task_id: str) -> dict[str, Any]:
    """A studio's answer relayed to the asker: the answer, a 已解决 button, and 👍/👎 feedback for the problem."""
    head, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": clip(head.rstrip("：:") or f"问题 #{number} 的答复", 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "button_list": [{"text": "已解决", "style": 1, "key": f"problem:solve:{number}"}],
        "task_id": task_id,
        "feedback": {"id": feedback_id(number)},
    }


def feedback_id(number: int) -> str:
    """The feedback id of a problem's relayed answer (``feedback_event`` brings it back)."""
    return f"problem:{number}"


def problem_of_feedback(feedback: str) -> int | None:
    """The problem a feedback id names."""
    match = re.fullmatch(r"problem:(\d{1,9})", feedback.strip())
    return int(match.group(1)) if match else None
