"""Novelty pre-screening (首创鉴定初筛): how close a text is to the achievements and topics already on record.

Texts become bags of terms (``bot.routing.text``: jieba words with the domain vocabulary, plus bigrams), weighted by TF-IDF over
the candidate documents plus the query; documents are ranked by cosine similarity, and the terms they share with
the query are reported, heaviest first, so a lead can see *why* two items look alike. Pure functions: the
caller hands in the documents.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Topics whose best match reaches this are shown to the proposer before the topic is created.
NEAR_DUPLICATE = 0.3
# Matches below this are noise and not listed.
LISTED = 0.12

Tokeniser = Callable[[str], list[str]]

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


def routing_terms(text: str) -> list[str]:
    """The routing analysis of ``text``: canonical words (jieba + domain vocabulary), then the Chinese bigrams
    not already among them — words make shared terms readable, bigrams catch paraphrases that segment
    differently (``管片拼装`` vs ``管片`` + ``拼装``)."""
    from bot.routing.text import analyse

    analysis = analyse(text)
    words = list(analysis.words)
    seen = set(words)
    return words + [b for b in analysis.bigrams if b not in seen]


def default_tokeniser() -> Tokeniser:
    """The tokeniser used unless a caller passes its own."""
    return routing_terms


@dataclass(slots=True, frozen=True)
class Document:
    """Something to compare against: an achievement (``kind="achievement"``) or a topic (``kind="topic"``)."""

    kind: str
    key: int
    label: str  # how to show it: "成果 #3 发明专利「…」" or "课题 #T-2「…」"
    title: str
    body: str = ""  # description, conclusion

    @property
    def text(self) -> str:
        """Title and body."""
        return f"{self.title}\n{self.body}" if self.body else self.title


@dataclass(slots=True, frozen=True)
class Match:
    """A document's similarity to the query (0–1) and the terms they share, most telling first."""

    document: Document
    score: float
    shared: tuple[str, ...]

    @property
    def percent(self) -> int:
        """The similarity as a whole percentage."""
        return round(self.score * 100)


Vector = dict[str, float]


def rank(
    query: str,
    documents: Sequence[Document],
    *,
    title: str | None = None,
    tokenise: Tokeniser | None = None,
    limit: int = 5,
    minimum: float = LISTED,
    max_terms: int = 6,
) -> list[Match]:
    """The documents most similar to ``query``, best first (ties by kind then key), at least ``minimum``.

    A document scores the better of two cosines: full text against full text, and the query's title (``title``,
    or the whole query) against the document's title — so a long description does not hide a title that says
    the same thing in other words.
    """
    tokenise = tokenise or default_tokeniser()
    query_counts = Counter(tokenise(query))
    if not query_counts or not documents:
        return []
    title_counts = Counter(tokenise(title)) if title else query_counts
    full_counts = [Counter(tokenise(d.text)) for d in documents]
    title_doc_counts = [Counter(tokenise(d.title)) for d in documents]
    frequency: Counter[str] = Counter()
    for counts in (*full_counts, query_counts):
        frequency.update(counts.keys())
    total = len(full_counts) + 1
    idf = {term: math.log((1 + total) / (1 + df)) + 1.0 for term, df in frequency.items()}
    query_vector = _weights(query_counts, idf)
    query_title_vector = _weights(title_counts, idf)
    matches = []
    for document, full, titled in zip(documents, full_counts, title_doc_counts, strict=True):
        best = max(
            _cosine(query_vector, _weights(full, idf)),
            _cosine(query_title_vector, _weights(titled, idf)),
            key=lambda pair: pair[0],
        )
        score, common = best
        if score < minimum or not common:
            continue
        ordered = sorted(common.items(), key=lambda item: (-item[1], item[0]))
        shared = _readable(_merge_runs([t for t, _ in ordered], f"{title or ''}\n{query}"), max_terms)
        matches.append(Match(document, min(score, 1.0), tuple(shared)))
    matches.sort(key=lambda m: (-m.score, m.document.kind, m.document.key))
    return matches[:limit]


def _weights(counts: Counter[str], idf: dict[str, float]) -> Vector:
    return {term: (1.0 + math.log(n)) * idf.get(term, 1.0) for term, n in counts.items()}


def _cosine(left: Vector, right: Vector) -> tuple[float, Vector]:
    """The cosine of two vectors and each shared term's contribution."""
    common = {t: left[t] * right[t] for t in left.keys() & right.keys()}
    if not common:
        return 0.0, {}
    norm = math.sqrt(sum(w * w for w in left.values())) * math.sqrt(sum(w * w for w in right.values()))
    return sum(common.values()) / norm, common


def _merge_runs(terms: list[str], text: str) -> list[str]:
    """Join overlapping two-character terms back into the phrase they cover in ``text`` (管片+片拼+拼装 → 管片拼装).

    Longer terms (whole words from a segmenter) are kept as they are; the order of first appearance in ``terms``
    (heaviest first) decides the order of the result.
    """
    pairs = {t for t in terms if len(t) == 2 and _CJK_RUN.fullmatch(t)}
    if not pairs:
        return terms
    runs: dict[str, str] = {}  # bigram -> the longest phrase it belongs to
    for chunk in _CJK_RUN.findall(text):
        i = 0
        while i < len(chunk) - 1:
            if chunk[i : i + 2] not in pairs:
                i += 1
                continue
            j = i + 1
            while j < len(chunk) - 1 and chunk[j : j + 2] in pairs:
                j += 1
            phrase = chunk[i : j + 1]
            for k in range(i, j):
                bigram = chunk[k : k + 2]
                if len(phrase) > len(runs.get(bigram, "")):
                    runs[bigram] = phrase
            i = j
    merged: list[str] = []
    for term in terms:
        phrase = runs.get(term, term)
        if phrase not in merged:
            merged.append(phrase)
    return merged


def _readable(terms: Iterable[str], limit: int) -> list[str]:
    """Drop terms contained in a heavier shared term (``盾构`` next to ``盾构机``) and keep ``limit``."""
    kept: list[str] = []
    for term in terms:
        if any(term in other for other in kept):
            continue
        kept = [other for other in kept if other not in term]
        kept.append(term)
        if len(kept) == limit:
            break
    return kept


def describe(matches: Sequence[Match], *, indent: str = "  ") -> list[str]:
    """Chinese lines for a list of matches: label, similarity and shared terms."""
    return [
        f"{indent}{m.document.label}  相似度 {m.percent}%  共同词：{'、'.join(m.shared) or '—'}"
        for m in matches
    ]
