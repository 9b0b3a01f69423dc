"""Character n-gram TF-IDF profiles of studios: the roster's text, and what each studio has actually solved.

A signal that needs no vocabulary at all: Chinese runs give their 1–3-character grams, Latin words and numbers
themselves. Each studio has two sparse vectors, its roster text (expertise counted three times, the name twice,
the description once) and its solved history (a gram counts once per solved problem that contains it), both
with sublinear term frequency and IDF over the studios' combined documents. A question scores each studio by

    (cos(q, roster) + a · cos(q, history)) / (1 + a),   a = n / (n + HISTORY_HALF)

for a studio with ``n`` solved problems: a new studio is judged by its roster alone, an experienced one more and
more by what it solved. Adding a solved problem touches only its studio's vector; the IDF is read when a
question is scored, and a studio's vector norm is recomputed when the IDF of one of its grams changes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from bot.routing.text import normalize

HISTORY_HALF = 5.0  # solved problems at which history counts as much as the roster
MAX_GRAM = 3
_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+(?:[.\-][a-z0-9]+)*")


def grams(text: str, *, normalized: bool = False) -> Counter[str]:
    """The character 1–3-grams of a text's Chinese runs, and its Latin words and numbers, with counts."""
    folded = text if normalized else normalize(text)
    out: Counter[str] = Counter()
    for run in _RUN.findall(folded):
        if not ("\u3400" <= run[0] <= "\u9fff"):
            out[run] += 1
            continue
        for size in range(1, MAX_GRAM + 1):
            for i in range(len(run) - size + 1):
                out[run[i : i + size]] += 1
    return out


def _tf(count: float) -> float:
    return 1.0 + math.log(count) if count > 0 else 0.0


class _Side:
    """One kind of profile (roster or history) for every studio: gram counts, postings and norms."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.postings: dict[str, dict[str, float]] = {}  # gram → studio → sublinear tf
        self.norms: dict[str, float] = {}

    def replace(self, sid: str, counts: Counter[str]) -> set[str]:
        """Set a studio's counts; returns the grams whose presence changed (for document frequencies)."""
        old = self.counts.get(sid, Counter())
        changed = set(old) ^ set(counts)
        for gram in old:
            posting = self.postings.get(gram)
            if posting is not None:
                posting.pop(sid, None)
                if not posting:
                    del self.postings[gram]
        self.counts[sid] = counts
        for gram, count in counts.items():
            self.postings.setdefault(gram, {})[sid] = _tf(count)
        return changed


class NgramProfiles:
    """Studios' roster and history n-gram profiles; ``scores`` gives each studio's blended cosine."""

    def __init__(self) -> None:
        self._roster = _Side()
        self._history = _Side()
        self._solved: dict[str, int] = {}  # studio → solved problems in its history profile
        self._df: Counter[str] = Counter()  # gram → studios whose roster or history has it
        self._dirty: set[str] = set()

    # --- building ----------------------------------------------------------------------------------------

    def set_roster(self, sid: str, weighted: Iterable[tuple[str, float]]) -> None:
        """A studio's roster text as ``(text, weight)`` pieces (e.g. expertise × 3, name × 2, description)."""
        counts: Counter[str] = Counter()
        for text, weight in weighted:
            for gram, count in grams(text).items():
                counts[gram] += round(count * weight)
        self._update_df(sid, self._roster, counts)
        self._solved.setdefault(sid, 0)

    def add_solved(self, sid: str, text: str) -> None:
        """One more solved problem of ``sid``: each of its grams counts once."""
        counts = Counter(self._history.counts.get(sid, Counter()))
        counts.update(grams(text).keys())
        self._update_df(sid, self._history, counts)
        self._solved[sid] = self._solved.get(sid, 0) + 1

    def remove_solved(self, sid: str, text: str) -> None:
        """Withdraw one solved problem of ``sid`` (e.g. reopened)."""
        counts = Counter(self._history.counts.get(sid, Counter()))
        counts.subtract(grams(text).keys())
        self._update_df(sid, self._history, +counts)
        self._solved[sid] = max(0, self._solved.get(sid, 0) - 1)

    def _update_df(self, sid: str, side: _Side, counts: Counter[str]) -> None:
        other = self._history if side is self._roster else self._roster
        before = set(side.counts.get(sid, ())) | set(other.counts.get(sid, ()))
        side.replace(sid, counts)
        after = set(counts) | set(other.counts.get(sid, ()))
        changed = (after - before) | (before - after)
        for gram in after - before:
            self._df[gram] += 1
        for gram in before - after:
            self._df[gram] -= 1
            if self._df[gram] <= 0:
                del self._df[gram]
        self._dirty.add(sid)
        # a changed document frequency changes the IDF, and so the norm, of every studio with that gram
        for gram in changed:
            for each in (self._roster, self._history):
                self._dirty.update(each.postings.get(gram, ()))

    def _idf(self, gram: str) -> float:
        n = len(self._solved)
        return math.log((n + 1) / (self._df.get(gram, 0) + 1)) + 1.0

    def _refresh_norms(self) -> None:
        for sid in self._dirty:
            for side in (self._roster, self._history):
                counts = side.counts.get(sid, Counter())
                side.norms[sid] = math.sqrt(sum((_tf(c) * self._idf(g)) ** 2 for g, c in counts.items() if c > 0))
        self._dirty.clear()

    # --- scoring -----------------------------------------------------------------------------------------

    def scores(self, text: str, *, normalized: bool = False) -> dict[str, float]:
        """Each studio's blended cosine similarity to ``text`` (studios with nothing in common are left out)."""
        if self._dirty:
            self._refresh_norms()
        query = {g: _tf(c) * self._idf(g) for g, c in grams(text, normalized=normalized).items()}
        q_norm = math.sqrt(sum(w * w for w in query.values()))
        if not q_norm:
            return {}
        dots: dict[str, list[float]] = {}
        for gram, qw in query.items():
            idf = self._idf(gram)
            for index, side in enumerate((self._roster, self._history)):
                posting = side.postings.get(gram)
                if not posting:
                    continue
                for sid, tf in posting.items():
                    dots.setdefault(sid, [0.0, 0.0])[index] += qw * tf * idf
        out: dict[str, float] = {}
        for sid, (roster_dot, history_dot) in dots.items():
            roster = roster_dot / (q_norm * self._roster.norms[sid]) if self._roster.norms.get(sid) else 0.0
            history = history_dot / (q_norm * self._history.norms[sid]) if self._history.norms.get(sid) else 0.0
            n = self._solved.get(sid, 0)
            a = n / (n + HISTORY_HALF)
            out[sid] = (roster + a * history) / (1.0 + a)
        return out
