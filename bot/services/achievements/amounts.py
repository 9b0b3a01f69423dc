"""Reading prize amounts as people write them (``20000``, ``2万``, ``1.5万元``)."""

from __future__ import annotations

import re

from bot.core.dispatcher import fold

MAX_AMOUNT = 10_000_000
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?)(万)?元?$")


def parse_amount(word: str, *, most: int = MAX_AMOUNT, what: str = "单项奖励") -> int:
    """``20000``, ``20,000``, ``2万``, ``1.5万元`` → yuan, at most ``most`` (``what`` names it in the refusal);
    raises ``ValueError`` with the reason in Chinese."""
    folded = fold(word).replace(",", "").replace("，", "")
    match = _AMOUNT.match(folded.removeprefix("-"))
    if not match:
        raise ValueError(f"金额「{word}」看不懂，请写元数，例如 20000 或 2万")
    value = float(match.group(1)) * (10_000 if match.group(2) else 1)
    if folded.startswith("-") or value == 0:
        raise ValueError(f"金额要大于 0，「{word}」不行")
    if value != int(value):
        raise ValueError(f"金额请写到元，「{word}」有零头")
    if value > most:
        raise ValueError(f"{what}最多 {most // 10_000:,} 万元（{most:,} 元），「{word}」超出了")
    return int(value)
