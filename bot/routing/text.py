"""Text normalisation and tokenisation for routing.

``normalize`` folds a chat message into the comparable form (NFKC full-width → half-width, lowercase, without
@mentions, emoji, ``[表情]`` sticker codes and links). ``analyse`` then extracts, deterministically:

- domain-term hits: every maximal occurrence of a vocabulary term (variants mapped to their canonical term),
  plus single-character-typo matches of longer terms (``盾钩机`` → ``盾构``);
- words: jieba segmentation (the vocabulary added as user words, HMM off so the result depends only on the
  dictionary), canonicalised, stop words and single characters dropped, merged with the term hits;
- character bigrams of the Chinese runs, which give robustness to typos and to compounds nobody listed.

jieba's dictionary (about a second to load) is loaded once, lazily, on a private ``jieba.Tokenizer`` so the
process-wide default tokenizer is left alone.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.routing.vocabulary import STOP_WORDS, Vocabulary, default_vocabulary, fold

_MENTION = re.compile(r"@[^\s@,，:：;；!！?？。]{1,24}(?=[\s,，:：;；!！?？。]|$)")
_STICKER = re.compile(r"\[[^\[\]\d\s]{1,8}\]")
_URL = re.compile(r"https?://\S+|www\.\S+")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\U00002600-\U000027bf"  # misc symbols, dingbats
    "\U00002b00-\U00002bff"  # arrows, stars
    "\U0000fe00-\U0000fe0f"  # variation selectors
    "\U0000200d"  # zero-width joiner
    "\U000020e3"  # keycap
    "\U0001f1e6-\U0001f1ff"  # flags
    "]+"
)
_SPACES = re.compile(r"\s+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9\-]*[a-z0-9]|[a-z]")
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def normalize(text: str) -> str:
    """Fold ``text`` for comparison: NFKC, lowercase, no @mentions/stickers/emoji/links, single spaces."""
    folded = fold(text)
    folded = _URL.sub(" ", folded)
    folded = _MENTION.sub(" ", folded)
    folded = _STICKER.sub(" ", folded)
    folded = _EMOJI.sub(" ", folded)
    return _SPACES.sub(" ", folded).strip()


def is_cjk(char: str) -> bool:
    """Whether ``char`` is a CJK unified ideograph."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


def cjk_bigrams(normalized: str) -> list[str]:
    """Character bigrams of each Chinese run (a lone character stands for itself), in order."""
    out: list[str] = []
    for run in _CJK_RUN.findall(normalized):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


@dataclass(slots=True, frozen=True)
class Hit:
    """One occurrence of a vocabulary term in a normalised text."""

    term: str  # canonical term
    surface: str  # what the text says
    start: int
    end: int
    fuzzy: bool = False  # matched with one substituted character


class Lexicon:
    """Finds vocabulary terms in normalised text: exact maximal matches plus one-character typo matches."""

    __slots__ = (
        "_fuzzy",
        "_fuzzy_lengths",
        "_fuzzy_tails",
        "_heads",
        "_is_word",
        "_lengths",
        "_surface",
        "vocabulary",
    )

    def __init__(self, vocabulary: Vocabulary, *, is_word: Callable[[str], bool] | None = None) -> None:
        """``is_word`` tells an ordinary word (``老样子``) from a typo (``盾钩机``): words are no typo matches."""
        self.vocabulary = vocabulary
        self._is_word = is_word
        self._surface: dict[str, str] = dict(vocabulary.canonical)
        self._lengths = sorted({len(s) for s in self._surface}, reverse=True)
        # first two characters of every term (one for one-character terms) → the lengths of terms starting so
        heads: dict[str, set[int]] = {}
        for surface in self._surface:
            heads.setdefault(surface[:2], set()).add(len(surface))
        self._heads = {head: tuple(sorted(lengths, reverse=True)) for head, lengths in heads.items()}
        # Typo index: a term of three or more Chinese characters under each of its wildcarded positions (not
        # the last one, which usually names the thing: 钢筋笼 vs 钢筋网) → canonical terms.
        wild: dict[str, set[str]] = {}
        for surface, canon in self._surface.items():
            if len(surface) < 3 or not all(is_cjk(c) for c in surface):
                continue
            positions = range(1, len(surface) - 1) if len(surface) == 3 else range(len(surface) - 1)
            for i in positions:
                wild.setdefault(surface[:i] + "?" + surface[i + 1 :], set()).add(canon)
        self._fuzzy = {key: next(iter(canons)) for key, canons in wild.items() if len(canons) == 1}
        self._fuzzy_lengths = sorted({len(k) for k in self._fuzzy}, reverse=True)
        # the last character is never the wildcard: a cheap first filter per length
        self._fuzzy_tails: dict[int, frozenset[str]] = {
            n: frozenset(k[-1] for k in self._fuzzy if len(k) == n) for n in self._fuzzy_lengths
        }

    def scan(self, normalized: str) -> list[Hit]:
        """All maximal term occurrences (a hit inside a longer hit is dropped), in text order."""
        text = normalized
        n = len(text)
        hits: list[Hit] = []
        surface = self._surface
        heads = self._heads
        for i in range(n):
            lengths = heads.get(text[i : i + 2], ()) + heads.get(text[i], ())
            for length in lengths:
                end = i + length
                if end > n:
                    continue
                piece = text[i:end]
                canon = surface.get(piece)
                if canon is None:
                    continue
                if piece[0] in _ASCII_ALNUM and i > 0 and text[i - 1] in _ASCII_ALNUM:
                    continue
                if piece[-1] in _ASCII_ALNUM and end < n and text[end] in _ASCII_ALNUM:
                    continue
                hits.append(Hit(canon, piece, i, end))
        if self._fuzzy:
            hits.extend(self._fuzzy_hits(text, hits))
        return _maximal(hits)

    def _fuzzy_hits(self, text: str, exact: list[Hit]) -> Iterator[Hit]:
        covered = [False] * len(text)
        for hit in exact:
            for k in range(hit.start, hit.end):
                covered[k] = True
        for run in _CJK_RUN.finditer(text):
            start, stop = run.span()
            for i in range(start, stop):
                for length in self._fuzzy_lengths:
                    end = i + length
                    if end > stop:
                        continue
                    if text[end - 1] not in self._fuzzy_tails[length]:
                        continue
                    piece = text[i:end]
                    if piece in self._surface or all(covered[i:end]):
                        continue
                    for j in range(length - 1):
                        canon = self._fuzzy.get(piece[:j] + "?" + piece[j + 1 :])
                        if canon is not None and not covered[i + j] and not _in_function_word(text, i + j):
                            if self._is_word is None or not self._is_word(piece):
                                yield Hit(canon, piece, i, end, fuzzy=True)
                            break


def _in_function_word(text: str, k: int) -> bool:
    """Whether the character at ``k`` belongs to a two-character function word there (有点, 一下, 这个…): a
    typo is never one, so "今天有点问题" does not read as a misspelt 天窗点."""
    return text[max(0, k - 1) : k + 1] in STOP_WORDS or text[k : k + 2] in STOP_WORDS


def _maximal(hits: list[Hit]) -> list[Hit]:
    """Drop hits contained in a longer (or equally long, earlier exact) hit; keep text order."""
    hits.sort(key=lambda h: (h.start, -(h.end - h.start), h.fuzzy))
    kept: list[Hit] = []
    max_end = -1
    for hit in hits:
        if hit.end <= max_end:
            continue
        kept.append(hit)
        max_end = hit.end
    return kept


_lock = threading.Lock()
_lexicon: Lexicon | None = None
_jieba: Any = None


def default_lexicon() -> Lexicon:
    """The lexicon of the built-in vocabulary, built once."""
    global _lexicon
    if _lexicon is None:
        with _lock:
            if _lexicon is None:
                _lexicon = Lexicon(default_vocabulary(), is_word=_dictionary_word)
    return _lexicon


_cache_dir: Path | None = None


def use_cache_dir(path: Path) -> None:
    """Keep the tokenizer's caches under ``path`` (the bot's data directory) rather than the shared temp
    directory; call before the first analysis."""
    global _cache_dir
    _cache_dir = path


def warm_tokenizer() -> None:
    """Initialise the tokenizer now (writing jieba's dictionary cache when there is none yet)."""
    _tokenizer()


def _tokenizer() -> Any:
    """A private jieba tokenizer with the vocabulary as user words; initialised once, quietly. jieba's own
    dictionary cache goes to the cache directory when one is set."""
    global _jieba
    if _jieba is None:
        lexicon = default_lexicon()
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                if _cache_dir is not None:
                    _cache_dir.mkdir(parents=True, exist_ok=True)
                    tokenizer.tmp_dir = str(_cache_dir)
                tokenizer.initialize()
                surfaces = sorted(s for s in lexicon.vocabulary.canonical if len(s) >= 2)
                _general.update({s: tokenizer.FREQ.get(s, 0) for s in surfaces})
                _general["__total__"] = tokenizer.total
                for surface in surfaces:
                    tokenizer.add_word(surface, freq=50_000, tag="n")
                _jieba = tokenizer
    return _jieba


_general: dict[str, int] = {}  # general-dictionary frequencies of the words the vocabulary overrode


def specificity(word: str) -> float:
    """How specific ``word`` is in general Chinese, in (0, 1]: 1 for rare words and unlisted compounds (注浆,
    管片错台), lower for everyday ones (设计, 控制, 检查, 车站), from jieba's dictionary frequencies."""
    tokenizer = _tokenizer()
    freq = _general[word] if word in _general else tokenizer.FREQ.get(word, 0)
    if freq <= SPECIFIC_FREQ:
        return 1.0
    total = _general.get("__total__") or tokenizer.total
    share = math.log(total / freq) / math.log(total / SPECIFIC_FREQ)
    return max(MIN_SPECIFICITY, min(1.0, share)) ** SPECIFICITY_POWER


SPECIFIC_FREQ = 20  # words at most this frequent in jieba's dictionary count as fully specific
MIN_SPECIFICITY = 0.1
SPECIFICITY_POWER = 2.0


def _dictionary_word(piece: str) -> bool:
    """Whether jieba's general dictionary knows ``piece`` as a word of its own."""
    return bool(_tokenizer().FREQ.get(piece, 0))


def warm_up() -> None:
    """Load jieba's dictionary and the vocabulary now rather than on the first message."""
    _tokenizer()


def segment(normalized: str) -> list[str]:
    """jieba words of a normalised text (HMM off: deterministic for a given dictionary)."""
    return [w for w in _tokenizer().cut(normalized, HMM=False) if w.strip()]


@dataclass(slots=True, frozen=True)
class Analysis:
    """Everything routing needs from one text."""

    normalized: str
    hits: tuple[Hit, ...]
    words: tuple[str, ...]  # canonical content words (term hits first), de-duplicated, in order
    bigrams: tuple[str, ...]  # de-duplicated

    @property
    def terms(self) -> tuple[str, ...]:
        """Canonical vocabulary terms found, de-duplicated."""
        return tuple(dict.fromkeys(h.term for h in self.hits))


_SCRIPT_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9][a-z0-9\-]*")
_QUANTITY = re.compile(r"[\d.\-]+[a-zμ%°]*")


def _content_words(word: str) -> Iterator[str]:
    """The content parts of a jieba word: mixed-script words (``qc课题``) also yield their script runs."""
    parts = [word] if _SCRIPT_RUN.fullmatch(word) else [word, *_SCRIPT_RUN.findall(word)]
    if len(parts) == 1 and not is_cjk(word[0]) and any(is_cjk(c) for c in word):
        parts.extend(_SCRIPT_RUN.findall(word))
    for part in parts:
        if part in STOP_WORDS or len(part) == 1:
            continue
        if is_cjk(part[0]) and all(is_cjk(c) for c in part):
            yield part
        elif part[0] in _ASCII_ALNUM and not _QUANTITY.fullmatch(part):
            # identifiers such as tbm, atp, gsm-r, zpw-2000 stay; bare quantities (52m, 0.15db) go
            yield part


def analyse(text: str, *, lexicon: Lexicon | None = None, normalized: bool = False) -> Analysis:
    """Normalise ``text`` (unless already ``normalized``) and extract term hits, words and bigrams."""
    lex = lexicon or default_lexicon()
    norm = text if normalized else normalize(text)
    hits = tuple(lex.scan(norm))
    canon = lex.vocabulary.canon
    words: dict[str, None] = {h.term: None for h in hits}
    for word in segment(norm):
        for part in _content_words(word):
            words.setdefault(canon(part), None)
    return Analysis(
        normalized=norm,
        hits=hits,
        words=tuple(words),
        bigrams=tuple(dict.fromkeys(cjk_bigrams(norm))),
    )


def terms(text: str) -> list[str]:
    """Content terms of ``text`` (domain terms and other content words, canonical forms), for TF-IDF users."""
    return list(analyse(text).words)
