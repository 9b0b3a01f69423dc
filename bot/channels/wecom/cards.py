"""Template cards (模板卡片, ``button_interaction``) for the WeCom channels that have them: the long connection
(``aibot_send_msg``, updated with ``aibot_respond_update_msg``) and the self-built app (``message/send``,
updated with ``message/update_template_card`` and the click's ``ResponseCode``).

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

# button key → the command it stands for; the key carries the entity's number: ``problem:claim:12``
PROBLEM_BUTTONS: tuple[tuple[str, str, str, int], ...] = (
    ("claim", "认领", "/认领", 1),
    ("transfer", "转派", "/转派", 2),
    ("solve", "已解决", "/解决", 2),
)
ANSWER_BUTTONS: tuple[tuple[str, str, str, int], ...] = (
    ("solve", "已解决", "/解决", 1),
    ("unsolved", "还没解决", "/未解决", 2),
)
ACTIVITY_BUTTONS: tuple[tuple[str, str, str, int], ...] = (
    ("join", "报名", "/报名", 1),
    ("leave", "取消报名", "/取消报名", 2),
)
# a lead's request through the app: claim, or hand on; the same keys as the long connection's card
APP_PROBLEM_BUTTONS = PROBLEM_BUTTONS[:2]
TOPIC_BUTTONS: tuple[tuple[str, str, str, int], ...] = (("support", "附议", "/附议", 1),)
# (key prefix, how its number is written in the command, the buttons a card of that kind carries)
_KINDS: dict[str, tuple[str, tuple[tuple[str, str, str, int], ...]]] = {
    "problem": ("{}", PROBLEM_BUTTONS + ANSWER_BUTTONS[1:]),
    "activity": ("{}", ACTIVITY_BUTTONS),
    "topic": ("T-{}", TOPIC_BUTTONS),
}
_KEY = re.compile(r"^(problem|activity|topic):([a-z]+):(\d{1,9})$")
# a typed command a reply offers (``/认领 12``, ``/报名 7``, ``/附议 T-3``) → the kind of card whose buttons stand
# for it, and those buttons
_OFFERED = re.compile(r"/(认领|转派|解决|未解决|报名|取消报名|附议)\s?(T-)?(\d{1,9})(?!\d)")
_OFFER_KINDS: dict[str, tuple[str, tuple[tuple[str, str, str, int], ...]]] = {
    "认领": ("problem", PROBLEM_BUTTONS),
    "转派": ("problem", PROBLEM_BUTTONS),
    "解决": ("problem", ANSWER_BUTTONS),
    "未解决": ("problem", ANSWER_BUTTONS),
    "报名": ("activity", ACTIVITY_BUTTONS),
    "取消报名": ("activity", ACTIVITY_BUTTONS),
    "附议": ("topic", TOPIC_BUTTONS),
}
CARD_WAIT = 3.0  # a clicked card is updated within WeCom's 5 s: the handler gets this long, then "处理中"
CARD_PENDING = "⏳ 正在处理，结果稍后以消息发送给您。"
CARD_DONE = "✅ 已处理。"
_TITLES = {"problem": "技术问题 #{}", "activity": "活动 #{}", "topic": "课题 T-{}"}
SUB_TITLE_BYTES = 1200


def _buttons(kind: str, number: int, buttons: tuple[tuple[str, str, str, int], ...]) -> list[dict[str, Any]]:
    return [
        {"text": label, "style": style, "key": f"{kind}:{action}:{number}"} for action, label, _, style in buttons
    ]


def problem_buttons(number: int) -> list[dict[str, Any]]:
    """The buttons of a problem's card."""
    return _buttons("problem", number, PROBLEM_BUTTONS)


def task_id_for(number: int, user_id: str, text: str, *, kind: str = "problem") -> str:
    """A card's task id: unique per bot, and the same for a repeated send of the same card (WeCom drops it)."""
    digest = hashlib.sha1(f"{user_id}\n{text}".encode()).hexdigest()[:12]
    return f"{kind}-{number}-{digest}"


def problem_card(
    number: int, text: str, *, task_id: str, buttons: tuple[tuple[str, str, str, int], ...] = PROBLEM_BUTTONS
) -> dict[str, Any]:
    """The lead's request for a problem as a ``button_interaction`` card: the request's text, and buttons."""
    head, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": clip(head.strip("【】") or f"技术问题 #{number}", 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "button_list": _buttons("problem", number, buttons),
        "task_id": task_id,
    }


def announcement_card(kind: str, number: int, text: str, *, task_id: str) -> dict[str, Any]:
    """An activity's announcement (报名 / 取消报名) or a call for topic support (附议) as a card; the text keeps
    the typed command, so it reads the same where cards are not shown."""
    buttons = ACTIVITY_BUTTONS if kind == "activity" else TOPIC_BUTTONS
    head, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": clip(head or _TITLES[kind].format(number), 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "button_list": _buttons(kind, number, buttons),
        "task_id": task_id,
    }


def updated_card(
    key: str, outcome: str, *, task_id: str, buttons: tuple[tuple[str, str, str, int], ...] | None = None
) -> dict[str, Any]:
    """The card after a click on ``key``: the outcome (done, or why not) in place of its text, same buttons
    (``buttons``: those the card was sent with, where they differ from the long connection's)."""
    match = _KEY.match(key.strip())
    assert match is not None, key
    kind, action, number = match.group(1), match.group(2), int(match.group(3))
    if buttons is None and kind == "problem":
        buttons = ANSWER_BUTTONS if action == "unsolved" else PROBLEM_BUTTONS
    elif buttons is None:
        buttons = _KINDS[kind][1]
    return {
        "card_type": "button_interaction",
        "main_title": {"title": _TITLES[kind].format(number)},
        "sub_title_text": clip(outcome, SUB_TITLE_BYTES),
        "button_list": _buttons(kind, number, buttons),
        "task_id": task_id,
    }


def offered_card(text: str) -> tuple[str, int] | None:
    """The card a reply's text calls for: the kind and number of the first entity whose typed command it
    offers (``已登记技术问题 #12。认领 /认领 12`` → ``("problem", 12)``); None when it offers none."""
    offer = _first_offer(text)
    return (offer[1], offer[2]) if offer else None


def _first_offer(text: str) -> tuple[str, str, int] | None:
    # a topic command needs its ``T-`` and only a topic command has one: ``/附议 3`` is no offer
    for match in _OFFERED.finditer(text):
        command, topic, number = match.group(1), match.group(2), int(match.group(3))
        if (_OFFER_KINDS[command][0] == "topic") == bool(topic):
            return command, _OFFER_KINDS[command][0], number
    return None


def reply_card(text: str, *, task_id: str, offered_by: str | None = None) -> dict[str, Any] | None:
    """A reply as a ``button_interaction`` card with the buttons for the typed commands it offers (the text
    keeps them, so it reads the same where cards are not shown); None when it offers none. With
    ``offered_by``, the buttons are those that text offers and ``text`` is only the card's caption."""
    offer = _first_offer(offered_by if offered_by is not None else text)
    if offer is None:
        return None
    command, kind, number = offer
    return {
        "card_type": "button_interaction",
        "main_title": {"title": _TITLES[kind].format(number)},
        "sub_title_text": clip(text, SUB_TITLE_BYTES),
        "button_list": _buttons(kind, number, _OFFER_KINDS[command][1]),
        "task_id": task_id,
    }


def command_for_key(key: str) -> tuple[int, str] | None:
    """``problem:claim:12`` → ``(12, "/认领 12")``, ``topic:support:3`` → ``(3, "/附议 T-3")``; None for a key
    the bot did not make."""
    match = _KEY.match(key.strip())
    if match is None:
        return None
    kind, action, number = match.group(1), match.group(2), int(match.group(3))
    written, buttons = _KINDS[kind]
    command = next((c for a, _, c, _ in buttons if a == action), None)
    if command is None:
        return None
    return number, f"{command} {written.format(number)}"


def click_of(event: dict[str, Any]) -> tuple[str, str]:
    """The clicked button's key and the card's task id from a ``template_card_event`` (the fields sit in a
    ``template_card_event`` object in the documented callbacks, directly in ``event`` in some SDKs' types)."""
    inner = event.get("template_card_event")
    source = inner if isinstance(inner, dict) else event
    return str(source.get("event_key") or ""), str(source.get("task_id") or "")


def answer_card(number: int, text: str, *, task_id: str) -> dict[str, Any]:
    """A studio's answer relayed to the asker: the answer, 已解决 / 还没解决 buttons, and 👍/👎 feedback."""
    head, _, rest = text.partition("\n")
    return {
        "card_type": "button_interaction",
        "main_title": {"title": clip(head.rstrip("：:") or f"问题 #{number} 的答复", 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "button_list": _buttons("problem", number, ANSWER_BUTTONS),
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


# -- an evaluation panel's score card (multiple_interaction) ------------------------------------------------

SCORE_OPTIONS = (100, 95, 90, 85, 80, 75, 70, 65, 60, 50)  # WeCom allows ten options per list
_SCORE_KEY = re.compile(r"^evaluation:score:(\d{1,9}):(\d{1,9})$")


def score_card(round_id: int, nominee_id: int, text: str, criteria: list[str], *, task_id: str) -> dict[str, Any]:
    """A panel member's request to score one nominee: one score list per criterion (at most three) and a
    submit button; the text keeps the typed command for channels without cards."""
    head, _, rest = text.partition("\n")
    return {
        "card_type": "multiple_interaction",
        "main_title": {"title": clip(head.strip("【】") or f"评选 #{round_id} 待评分", 120)},
        "sub_title_text": clip(rest or text, SUB_TITLE_BYTES),
        "select_list": [
            {
                "question_key": f"c{index}",
                "title": clip(name, 40),
                "selected_id": "",
                "option_list": [{"id": f"s{value}", "text": f"{value} 分"} for value in SCORE_OPTIONS],
            }
            for index, name in enumerate(criteria[:3])
        ],
        "submit_button": {"text": "提交评分", "key": f"evaluation:score:{round_id}:{nominee_id}"},
        "task_id": task_id,
    }


def _selections(event: dict[str, Any]) -> dict[str, list[str]]:
    """The options chosen in a submitted card, by question key (``selected_items.selected_item[]`` with
    ``question_key`` and ``option_ids.option_id[]``; plain lists are read too)."""
    inner = event.get("template_card_event")
    source = inner if isinstance(inner, dict) else event
    items: Any = source.get("selected_items") or {}
    if isinstance(items, dict):
        items = items.get("selected_item") or []
    if isinstance(items, dict):
        items = [items]
    chosen: dict[str, list[str]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        options: Any = item.get("option_ids") or []
        if isinstance(options, dict):
            options = options.get("option_id") or []
        if isinstance(options, str):
            options = [options]
        chosen[str(item.get("question_key") or "")] = [str(o) for o in options if isinstance(o, str | int)]
    return chosen


def score_command(key: str, event: dict[str, Any]) -> str | None:
    """A submitted score card as the typed command: ``/评选 评分 1 2 90 85`` (criteria in order; a list left
    unchosen is left out, so the handler says what is missing); None for a key that is not a score card's."""
    match = _SCORE_KEY.match(key.strip())
    if match is None:
        return view_command(key)
    chosen = _selections(event)
    values: list[str] = []
    for index in range(3):
        options = chosen.get(f"c{index}")
        if not options:
            continue
        option = options[0]
        if re.fullmatch(r"s\d{1,3}", option):
            values.append(option[1:])
    return f"/评选 评分 {match.group(1)} {match.group(2)} {' '.join(values)}".rstrip()


def is_score_key(key: str) -> bool:
    """Whether a clicked key is a score card's (its submit button, or the 查看评选 button it is updated with)."""
    return _SCORE_KEY.match(key.strip()) is not None or _VIEW_KEY.match(key.strip()) is not None


_VIEW_KEY = re.compile(r"^evaluation:view:(\d{1,9})$")


def view_command(key: str) -> str | None:
    """The 查看评选 button of a submitted score card: ``/评选 1``."""
    match = _VIEW_KEY.match(key.strip())
    return f"/评选 {match.group(1)}" if match else None


def scored_card(key: str, outcome: str, *, task_id: str) -> dict[str, Any]:
    """A score card after its submit (or its 查看评选 button): the outcome — the weighted score, or why not —
    and a button showing the round (which nominees still wait for this member's score)."""
    match = _SCORE_KEY.match(key.strip()) or _VIEW_KEY.match(key.strip())
    assert match is not None, key
    round_id = match.group(1)
    return {
        "card_type": "button_interaction",
        "main_title": {"title": f"评选 #{round_id}" + (f" 申报 {match.group(2)}" if match.re is _SCORE_KEY else "")},
        "sub_title_text": clip(outcome, SUB_TITLE_BYTES),
        "button_list": [{"text": "查看评选", "style": 2, "key": f"evaluation:view:{round_id}"}],
        "task_id": task_id,
    }
