"""Routing: which studio should answer a technical question, and is a message a question at all.

Public API: :class:`RoutingIndex` (``rank``, ``similar``, ``add_solved``, ``remove_solved``,
``upsert_studio``), the value types :class:`StudioDoc`, :class:`SolvedProblem`, :class:`StudioMatch`,
:class:`SimilarMatch`, the chatter judge :func:`judge` / :class:`Judgement`, and :func:`evaluate` /
:class:`EvalResult` for accuracy on a labelled question set.
"""

from bot.routing.evaluation import EvalResult, evaluate
from bot.routing.index import RoutingIndex, SimilarMatch, SolvedProblem, StudioDoc, StudioMatch
from bot.routing.judge import Judgement, judge
from bot.routing.text import normalize, terms, warm_up

__all__ = [
    "EvalResult",
    "Judgement",
    "RoutingIndex",
    "SimilarMatch",
    "SolvedProblem",
    "StudioDoc",
    "StudioMatch",
    "evaluate",
    "judge",
    "normalize",
    "terms",
    "warm_up",
]
