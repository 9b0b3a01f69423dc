"""The routing index: which studio should answer a question, and has the same question been solved before.

``rank`` fuses three signals per studio, each made relative to its best studio for the question:

1. The lexical engine: BM25-style matching of the question against each studio's expertise (weighted highest),
   name and description, over three feature classes — content words and domain terms (``w:``, weighted by
   how specific the word is in general Chinese, so 设计/检查/车站 count little), concepts of the domain
   vocabulary (``c:``, so ``应力锥`` finds the studio that lists ``电缆头``) and character bigrams (``b:``) —
   plus a bonus when an expertise phrase appears verbatim, a small prior for the question's discipline, and
   solved-history evidence that saturates per studio (``HISTORY_CAP``).
2. Character n-gram TF-IDF profiles (``bot.routing.ngrams``): roster text, and solved history (questions and
   answers) joined with a weight n / (n + 5) for a studio with n solved problems.
3. With an embedder, sentence embeddings (``bot.routing.semantic``) of the question against each studio's
   profile and its nearest solved problems.

The mix (``NGRAM_SHARE`` growing to ``HISTORY_NGRAM_SHARE`` with a studio's solved record, ``SEMANTIC_SHARE``) was
chosen by a grid over the development sets (``bench/tune_routing.py``). A question asking for what a non-technical studio type does (a patent, a QC
result, a wage dispute) favours studios of that roster ``type``. Each match says which of its terms the user
wrote (``matched``) and which are the studio's own terms they led to (``related``), and whether it is
``confident``: real evidence, within ``FOLLOW_SHARE`` of the best studio.

``similar`` finds a solved problem asking the same: by meaning when an embedder is present (``SEMANTIC_SIMILAR``,
a precision-first operating point), otherwise through an inverted index of
the solved problems' keys (domain terms, bigrams and characters of content words, quantities, symptoms) and an
IDF-weighted Dice comparison; only restatements of the same question pass.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Collection, Iterable, Iterator, Sequence, Set
from dataclasses import dataclass, field

from bot.routing.judge import FAULT_MARKERS
from bot.routing.ngrams import NgramProfiles
from bot.routing.semantic import Embedder, SemanticIndex
from bot.routing.text import Analysis, Lexicon, analyse, default_lexicon, is_cjk, normalize, specificity
from bot.routing.vocabulary import DISCIPLINES, GENERIC_TERMS, STOP_WORDS, TYPE_INTENTS

_SYMPTOMS = tuple(m for m in FAULT_MARKERS if len(m) > 1)

# --- tuning constants (chosen on the development roster, kept few and roster-independent) ------------------
EXPERTISE_WEIGHT = 3.0  # field weights in a studio's document
NAME_WEIGHT = 2.0
DESCRIPTION_WEIGHT = 1.0
WORD_WEIGHT = 1.0  # feature-class weights in the score
CONCEPT_WEIGHT = 0.8
BIGRAM_WEIGHT = 0.3
PHRASE_WEIGHT = 1.5
GENERIC_FACTOR = 0.4  # generic terms (施工, 故障, 监测…) count this much
FUZZY_FACTOR = 0.7  # typo matches count this much
DISCIPLINE_WEIGHT = 1.2
BM25_K1 = 1.2
BM25_B = 0.5
HISTORY_WEIGHT = 1.0
HISTORY_SMOOTHING = 2.0  # a feature seen in k solved problems gets k / (k + smoothing) of its vote
HISTORY_MAX_SHARE = 0.2  # features in more than this share of solved problems are ignored by history
HISTORY_CAP = 8.0  # a studio's history evidence approaches this much, never more
HISTORY_PRIOR_PROBLEMS = 50  # history IDF counts this many notional problems, so a handful is not noise

# fusion of the lexical engine with the character n-gram profiles: each signal is divided by its best studio's
# value for the question, then mixed with these weights
NGRAM_SHARE = 0.4  # for a studio with no solved history; it grows towards HISTORY_NGRAM_SHARE with the history
HISTORY_NGRAM_SHARE = 0.7  # the n-gram share for a studio whose solved history is long (see ``_fuse``)
SEMANTIC_SHARE = 0.3  # with an embedder, the semantic signal gets this share and the others the rest
FOLLOW_SHARE = 0.6  # a studio is asked only when its score is at least this share of the best studio's
MIN_EVIDENCE = 1.0  # lexical evidence (the words) that counts as a real match on its own
MIN_NGRAM_EVIDENCE = 0.05  # without the words, the best studio's n-gram cosine must reach this as well
TYPE_BONUS = 0.5  # added to the fused score of studios whose type the question asks for (one intent word)
TYPE_YIELD = 0.5  # and the others' scores shrink by this share
MATCHED_LIMIT = 5
SIMILAR_THRESHOLD = 0.6
# with an embedder, similar() takes the nearest solved problems by meaning: the same question when their cosine
# is at least SEMANTIC_SAME, or SEMANTIC_SAME_NEAR with at least SEMANTIC_WORDS of the key overlap above. The
# operating point is chosen for precision by bench/calibrate_similar.py on 320 labelled development pairs (the
# samples' and tests/routing_heldout's re-asked questions and near-misses): the best accuracy with at most 5 % of
# near-misses matched (a wrong earlier answer shown to a foreman is worse than none), for multilingual-e5-small.
# On those pairs the lexical rule (used without an embedder) matches 32 % of the near-misses.
SEMANTIC_SIMILAR = True
SEMANTIC_SAME = 0.97
SEMANTIC_SAME_NEAR = 0.97
SEMANTIC_WORDS = 0.1
SIMILAR_PRESELECT_KEYS = 12
TEXT_KEYS_REMEMBERED = 4096
ANALYSES_REMEMBERED = 64
SIMILAR_CANDIDATES = 12
SIMILAR_MIN_VOTE_SHARE = 0.3  # a candidate must share this much of the preselected keys' weight
# similar(): weight of each key class — domain terms and identifiers (t:/w:), bigrams of content words (b:,
# robust to typos and to synonyms sharing a character pair), content characters (h:, 凹坑 ~ 凹陷), quantities
# (n:) and symptoms (f:, the thing that went wrong: two questions about the same part but different faults
# are different questions).
SIMILAR_KEY_WEIGHTS = {"t": 1.0, "w": 1.0, "b": 0.6, "h": 0.3, "n": 0.7, "f": 3.0}
# characters too common to say anything about what a question asks
_COMMON_CHARS = frozenset(
    "的了是在和与及或也都就还又把被给让对从向到于以为之其这那个一下些点有我你他她它们吗呢吧啊呀哦嗯哈么怎样"
    "如何什为啥咋要会能可不没很太更最再已正刚然但因所如虽而并需应必想觉感认知看发现出导造原经办法建处理解决"
    "施工程项目技术现场时候后前里上下中边第次几多少好"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

_ALLIANCE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bridge", ("桥", "bridge")),
    ("tunnel", ("隧", "地下", "tunnel", "盾构")),
    ("urban", ("城", "地铁", "轨道", "urban", "metro", "track")),
    ("power", ("电", "通信", "信号", "通号", "power", "signal", "四电")),
)


@dataclass(slots=True, frozen=True)
class StudioDoc:
    """A studio as the store hands it to routing."""

    id: str
    name: str
    alliance: str
    expertise: tuple[str, ...]
    description: str
    type: str = ""  # 科技研发型, 管理创新型, … (the roster's studio type)
    unit: str = ""  # the member unit


@dataclass(slots=True, frozen=True)
class SolvedProblem:
    """A problem a studio has solved: its text adds routing evidence for that studio."""

    id: int
    ref: str | None
    studio_id: str
    text: str
    answer: str


@dataclass(slots=True, frozen=True)
class StudioMatch:
    """A recommended studio: score in [0, 1] and the (Chinese) terms that explain it, most telling first."""

    id: str
    name: str
    score: float
    matched: tuple[str, ...]  # terms that stand in the question itself
    related: tuple[str, ...] = ()  # the studio's own terms the question's words led to (连续梁 for 挂篮)
    # real evidence: within FOLLOW_SHARE of the best studio, and the words (or, for the best studio, every
    # signal) point to it; studios without it are shown at most as 专业相近 and are not asked
    confident: bool = True


@dataclass(slots=True, frozen=True)
class SimilarMatch:
    """A solved problem that asks essentially the same thing as the query."""

    id: int
    ref: str | None
    studio_id: str
    score: float
    answer: str

    @classmethod
    def of(cls, problem: SolvedProblem, score: float) -> SimilarMatch:
        """The match for ``problem`` at ``score``."""
        return cls(problem.id, problem.ref, problem.studio_id, round(score, 4), problem.answer)


@dataclass(slots=True)
class _Studio:
    doc: StudioDoc
    features: dict[str, float]  # feature → weighted term frequency
    length: float  # total weight of word features (document length for BM25)
    labels: dict[str, tuple[str, ...]]  # concept feature → the studio's own terms for it, most weighted first
    disciplines: dict[str, float]  # discipline → share
    phrases: tuple[str, ...]  # normalised expertise phrases


@dataclass(slots=True)
class _Query:
    analysis: Analysis
    features: dict[str, float] = field(default_factory=dict)
    disciplines: dict[str, float] = field(default_factory=dict)
    concept_terms: dict[str, list[str]] = field(default_factory=dict)  # concept feature → the query's terms
    prior: dict[str, float] = field(default_factory=dict)  # studio → its discipline prior in the lexical score


def _alliance_disciplines(alliance: str) -> dict[str, float]:
    text = normalize(alliance)
    found = [d for d, hints in _ALLIANCE_HINTS if any(h in text for h in hints)]
    return {d: 1.0 / len(found) for d in found} if found else {}


class RoutingIndex:
    """Ranks studios for a question (roster + solved-problem history) and finds re-asked solved problems."""

    def __init__(
        self,
        studios: Iterable[StudioDoc],
        solved: Iterable[SolvedProblem] = (),
        *,
        lexicon: Lexicon | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self._lexicon = lexicon or default_lexicon()
        self._ngrams = NgramProfiles()
        self._semantic = SemanticIndex(embedder) if embedder is not None else None
        self._studios: dict[str, _Studio] = {}
        self._postings: dict[str, dict[str, float]] = {}
        self._idf: dict[str, float] = {}
        for studio in studios:
            self._studios[studio.id] = self._build_studio(studio)
            self._ngrams.set_roster(studio.id, _roster_pieces(studio))
            if self._semantic is not None:
                self._semantic.set_studio(studio.id, _profile_text(studio))
        self._phrases: dict[str, tuple[str, ...]] = {}
        self._reindex_roster()
        # history
        self._problems: dict[int, SolvedProblem] = {}
        self._hist: dict[str, dict[str, int]] = {}  # feature → studio → solved problems containing it
        self._hist_total: dict[str, int] = {}  # feature → solved problems containing it
        self._keys: dict[str, list[int]] = {}  # similar(): key → problem ids (may hold stale ids)
        # same_question(): the keys of recently compared texts (the open problems a new one is compared
        # with are mostly the same from one message to the next)
        self._keys_of_text: dict[str, frozenset[str]] = {}
        self._analyses: dict[str, Analysis] = {}  # the last questions' analyses (see ``_analyse``)
        self._stale = 0
        for problem in solved:
            self.add_solved(problem)
        self._ngrams.settle()

    # --- roster ------------------------------------------------------------------------------------------

    def _build_studio(self, doc: StudioDoc) -> _Studio:
        vocab = self._lexicon.vocabulary
        features: dict[str, float] = {}
        labels: dict[str, dict[str, float]] = {}
        disciplines: dict[str, float] = {}
        length = 0.0

        def add(text: str, weight: float) -> None:
            nonlocal length
            a = analyse(text, lexicon=self._lexicon)
            for word in a.words:
                if word in STOP_WORDS:
                    continue
                w = weight * (GENERIC_FACTOR if word in GENERIC_TERMS else 1.0)
                features["w:" + word] = features.get("w:" + word, 0.0) + w
                length += w
            for bigram in a.bigrams:
                features["b:" + bigram] = features.get("b:" + bigram, 0.0) + weight
            for hit in a.hits:
                concepts = vocab.concepts_of.get(hit.term, ())
                for label in concepts:
                    w = weight / len(concepts) * (FUZZY_FACTOR if hit.fuzzy else 1.0)
                    features["c:" + label] = features.get("c:" + label, 0.0) + w
                    own = labels.setdefault("c:" + label, {})
                    own[hit.term] = own.get(hit.term, 0.0) + w
                    discipline = vocab.discipline_of[label]
                    if discipline != "general":
                        disciplines[discipline] = disciplines.get(discipline, 0.0) + w

        for phrase in doc.expertise:
            add(phrase, EXPERTISE_WEIGHT)
        add(doc.name, NAME_WEIGHT)
        add(doc.description, DESCRIPTION_WEIGHT)
        share: dict[str, float] = {}
        total = sum(disciplines.values())
        if total:
            share = {d: 0.5 * v / total for d, v in disciplines.items()}
        for d, v in _alliance_disciplines(doc.alliance).items():
            share[d] = share.get(d, 0.0) + (0.5 if total else 1.0) * v
        phrases = tuple(
            p
            for p in dict.fromkeys(normalize(e) for e in doc.expertise)
            if len(p) >= 2 and p not in STOP_WORDS
        )
        return _Studio(
            doc=doc,
            features=features,
            length=length,
            labels={k: tuple(sorted(v, key=lambda t: -v[t])) for k, v in labels.items()},
            disciplines=share,
            phrases=phrases,
        )

    def _reindex_roster(self) -> None:
        """Recompute BM25 postings and IDF from the per-studio features (cheap: no re-tokenisation)."""
        n = len(self._studios)
        avg = sum(s.length for s in self._studios.values()) / n if n else 1.0
        postings: dict[str, dict[str, float]] = {}
        for sid, studio in self._studios.items():
            norm = 1 - BM25_B + BM25_B * (studio.length / avg if avg else 1.0)
            for feat, tf in studio.features.items():
                postings.setdefault(feat, {})[sid] = tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm)
        self._postings = postings
        self._idf = {feat: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for feat, p in postings.items()}
        phrases: dict[str, list[str]] = {}
        for sid, studio in self._studios.items():
            for phrase in studio.phrases:
                phrases.setdefault(phrase, []).append(sid)
        self._phrases = {p: tuple(ids) for p, ids in phrases.items()}

    def upsert_studio(self, studio: StudioDoc) -> None:
        """Add a studio or replace its roster entry (history evidence for its id is kept)."""
        for _ in self.upsert_studios([studio]):
            pass

    def upsert_studios(self, studios: Iterable[StudioDoc]) -> Iterator[int]:
        """Add or replace several studios, yielding the count done after each (a few milliseconds apiece, so
        the caller can let other work run between them), then re-index the roster once and, when studios were
        added, refresh the n-gram norms a studio at a time (yielding the same count) — consume it fully."""
        done = 0
        for studio in studios:
            self._studios[studio.id] = self._build_studio(studio)
            self._ngrams.set_roster(studio.id, _roster_pieces(studio))
            if self._semantic is not None:
                self._semantic.set_studio(studio.id, _profile_text(studio))
            done += 1
            yield done
        self._reindex_roster()
        for _ in self._ngrams.refresh():  # a new studio moves every IDF: the norms, a studio at a time
            yield done

    # --- history -----------------------------------------------------------------------------------------

    def _history_features(self, analysis: Analysis) -> set[str]:
        vocab = self._lexicon.vocabulary
        feats = {"w:" + w for w in analysis.words}
        feats.update("b:" + b for b in analysis.bigrams)
        for hit in analysis.hits:
            feats.update("c:" + label for label in vocab.concepts_of.get(hit.term, ()))
        return feats

    def _analyse(self, text: str) -> Analysis:
        """``analyse`` of a question, remembered for the next few: one new problem is ranked, compared with the
        solved ones and with the open ones, each wanting the same analysis."""
        analysis = self._analyses.get(text)
        if analysis is None:
            if len(self._analyses) >= ANALYSES_REMEMBERED:
                self._analyses.clear()
            analysis = self._analyses[text] = analyse(text, lexicon=self._lexicon)
        return analysis

    def _text_keys(self, text: str) -> frozenset[str]:
        """``_similar_keys`` of ``text``, remembered for the next few thousand texts."""
        keys = self._keys_of_text.get(text)
        if keys is None:
            if len(self._keys_of_text) >= TEXT_KEYS_REMEMBERED:
                self._keys_of_text.clear()
            keys = self._keys_of_text[text] = frozenset(self._similar_keys(analyse(text, lexicon=self._lexicon)))
        return keys

    @staticmethod
    def _similar_keys(analysis: Analysis) -> set[str]:
        """What a question is about, for comparing two questions (see ``SIMILAR_KEY_WEIGHTS``)."""
        keys = {"t:" + h.term for h in analysis.hits}
        for word in analysis.words:
            if word in STOP_WORDS:
                continue
            if all(is_cjk(c) for c in word):
                keys.update("b:" + word[i : i + 2] for i in range(len(word) - 1))
                keys.update("h:" + c for c in word if c not in _COMMON_CHARS)
            else:
                keys.add("w:" + word)
        normalized = analysis.normalized
        keys.update("n:" + number for number in _NUMBER.findall(normalized))
        keys.update("f:" + symptom for symptom in _SYMPTOMS if symptom in normalized)
        return keys

    def add_solved(self, problem: SolvedProblem) -> None:
        """Index a solved problem (replacing one with the same id); cost proportional to its text."""
        if problem.id in self._problems:
            self.remove_solved(problem.id)
        self._problems[problem.id] = problem
        analysis = analyse(problem.text, lexicon=self._lexicon)
        sid = problem.studio_id
        self._ngrams.add_solved(sid, _solved_text(problem))
        if self._semantic is not None:
            self._semantic.add_solved(problem.id, sid, problem.text)
        for feat in self._history_features(analysis):
            self._hist.setdefault(feat, {})
            by_studio = self._hist[feat]
            by_studio[sid] = by_studio.get(sid, 0) + 1
            self._hist_total[feat] = self._hist_total.get(feat, 0) + 1
        pid = problem.id
        for key in self._similar_keys(analysis):
            self._keys.setdefault(key, []).append(pid)

    def remove_solved(self, problem_id: int) -> None:
        """Withdraw a solved problem's evidence (e.g. it was reopened); unknown ids are ignored."""
        problem = self._problems.pop(problem_id, None)
        if problem is None:
            return
        analysis = analyse(problem.text, lexicon=self._lexicon)
        sid = problem.studio_id
        self._ngrams.remove_solved(sid, _solved_text(problem))
        if self._semantic is not None:
            self._semantic.remove_solved(problem.id)
        for feat in self._history_features(analysis):
            by_studio = self._hist.get(feat)
            if by_studio is None or sid not in by_studio:
                continue
            by_studio[sid] -= 1
            if by_studio[sid] <= 0:
                del by_studio[sid]
            self._hist_total[feat] -= 1
            if self._hist_total[feat] <= 0:
                del self._hist_total[feat]
                del self._hist[feat]
        # similar() postings are cleaned lazily; compact once stale entries outnumber live problems
        self._stale += 1
        if self._stale > max(1000, len(self._problems)):
            self._compact()

    def _compact(self) -> None:
        self._keys = {}
        for problem in self._problems.values():
            for key in self._similar_keys(analyse(problem.text, lexicon=self._lexicon)):
                self._keys.setdefault(key, []).append(problem.id)
        self._stale = 0

    def prepare(self, *texts: str, wait: bool = True) -> None:
        """Compute what is computed lazily (the semantic vectors, and those of ``texts`` about to be ranked)
        — call it in a worker thread so the event loop never waits for the model. ``wait=False``: if another
        thread is embedding the history, only the texts are embedded (ranking uses the vectors there are)."""
        if self._semantic is not None:
            self._semantic.prepare(wait=wait)
            if texts:
                self._semantic.warm(texts)

    def __len__(self) -> int:
        """Number of solved problems indexed."""
        return len(self._problems)

    # --- ranking -----------------------------------------------------------------------------------------

    def _query(self, text: str) -> _Query:
        vocab = self._lexicon.vocabulary
        analysis = self._analyse(text)
        q = _Query(analysis)
        feats = q.features
        for word in analysis.words:
            # everyday words (设计, 检查, 车站) say little about which studio is meant, whatever the roster says
            feats["w:" + word] = (GENERIC_FACTOR if word in GENERIC_TERMS else 1.0) * specificity(word)
        for hit in analysis.hits:
            concepts = vocab.concepts_of.get(hit.term, ())
            factor = FUZZY_FACTOR if hit.fuzzy else 1.0
            if hit.fuzzy:
                feats["w:" + hit.term] = min(feats.get("w:" + hit.term, 1.0), FUZZY_FACTOR)
            for label in concepts:
                key = "c:" + label
                feats[key] = min(1.0, feats.get(key, 0.0) + factor / len(concepts))
                q.concept_terms.setdefault(key, []).append(hit.term)
                discipline = vocab.discipline_of[label]
                if discipline != "general":
                    q.disciplines[discipline] = q.disciplines.get(discipline, 0.0) + factor / len(concepts)
        for bigram in analysis.bigrams:
            feats["b:" + bigram] = 1.0
        total = sum(q.disciplines.values())
        if total:
            q.disciplines = {d: v / total for d, v in q.disciplines.items()}
        return q

    def _scores(self, q: _Query) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        scores: dict[str, float] = dict.fromkeys(self._studios, 0.0)
        why: dict[str, dict[str, float]] = {sid: {} for sid in self._studios}
        class_weight = {"w": WORD_WEIGHT, "c": CONCEPT_WEIGHT, "b": BIGRAM_WEIGHT}
        # roster evidence
        for feat, qw in q.features.items():
            posting = self._postings.get(feat)
            if not posting:
                continue
            weight = qw * class_weight[feat[0]] * self._idf[feat]
            for sid, tf in posting.items():
                contribution = weight * tf
                scores[sid] += contribution
                if feat[0] != "b":
                    label = feat[2:] if feat[0] == "w" else self._concept_label(sid, feat, q)
                    if label:
                        why[sid][label] = why[sid].get(label, 0.0) + contribution
                    if feat[0] == "c":
                        # the question's own term for the concept explains the match as the user wrote it
                        asked = q.concept_terms.get(feat, ())
                        if asked and asked[0] != label:
                            why[sid][asked[0]] = why[sid].get(asked[0], 0.0) + contribution * 0.99
        normalized = q.analysis.normalized
        for phrase, sids in self._phrases.items():
            if phrase in normalized:
                bonus = PHRASE_WEIGHT * math.log(1 + len(self._studios) / len(sids))
                for sid in sids:
                    scores[sid] += bonus
                    why[sid][phrase] = why[sid].get(phrase, 0.0) + bonus
        # discipline prior: it orders studios of the question's trade, but it is no evidence that one of them
        # does what is asked (``prior`` keeps it apart for ``rank``'s confidence)
        prior: dict[str, float] = {}
        if q.disciplines:
            for sid, studio in self._studios.items():
                affinity = sum(share * q.disciplines.get(d, 0.0) for d, share in studio.disciplines.items())
                prior[sid] = DISCIPLINE_WEIGHT * affinity
                scores[sid] += prior[sid]
        q.prior = prior
        # history evidence, saturating per studio so that a long record cannot drown a clear roster match
        n_problems = len(self._problems)
        if n_problems:
            cap = max(5.0, HISTORY_MAX_SHARE * n_problems)
            history: dict[str, float] = {}
            history_why: dict[str, dict[str, float]] = {}
            for feat, qw in q.features.items():
                total = self._hist_total.get(feat)
                if not total or total > cap:
                    continue
                weight = (
                    HISTORY_WEIGHT
                    * qw
                    * class_weight[feat[0]]
                    * math.log(1 + (n_problems + HISTORY_PRIOR_PROBLEMS) / total)
                    / (total + HISTORY_SMOOTHING)
                )
                for sid, count in self._hist[feat].items():
                    if sid in scores:
                        contribution = weight * count
                        history[sid] = history.get(sid, 0.0) + contribution
                        if feat[0] == "w":
                            terms = history_why.setdefault(sid, {})
                            terms[feat[2:]] = terms.get(feat[2:], 0.0) + contribution
            for sid, raw in history.items():
                saturated = HISTORY_CAP * (1.0 - math.exp(-raw / HISTORY_CAP))
                scores[sid] += saturated
                for term, contribution in history_why.get(sid, {}).items():
                    why[sid][term] = why[sid].get(term, 0.0) + contribution * saturated / raw
        return scores, why

    def _add_type_intent(self, scores: dict[str, float], normalized: str, why: dict[str, dict[str, float]]) -> None:
        """A question that asks for what a studio type does (a patent, a QC result, a wage dispute…) is a
        request for a studio of that type, whatever trade it mentions: those studios gain, the others yield."""
        for studio_type, words in TYPE_INTENTS.items():
            found = [w for w in words if w in normalized]
            typed = [sid for sid, studio in self._studios.items() if studio.doc.type == studio_type]
            if not found or not typed:
                continue
            strength = min(1.0, len(found) / 2 + 0.5)
            for sid in scores:
                if sid in typed:
                    scores[sid] += TYPE_BONUS * strength
                    for word in found:
                        why[sid][word] = why[sid].get(word, 0.0) + TYPE_BONUS * strength
                else:
                    scores[sid] *= 1.0 - TYPE_YIELD * strength

    def _fuse(
        self, lexical: dict[str, float], ngram: dict[str, float], semantic: dict[str, float] | None
    ) -> dict[str, float]:
        """Mix the signals: lexical and n-gram relative to their best studio for this question, the semantic
        one (cosines of one model sit in a narrow band) stretched between its worst and best studio.

        The n-gram profile of a studio with a solved record holds what it actually solved and answered, in
        the askers' own words, so its share grows with that record (``n / (n + HISTORY_HALF)``) from
        ``NGRAM_SHARE`` to ``HISTORY_NGRAM_SHARE``; the lexical engine, which knows only the roster and the
        vocabulary, yields the same amount."""
        top_lex = max(lexical.values(), default=0.0) or 1.0
        top_ng = max(ngram.values(), default=0.0) or 1.0
        fused = {}
        for sid, raw in lexical.items():
            share = NGRAM_SHARE + (HISTORY_NGRAM_SHARE - NGRAM_SHARE) * self._ngrams.history_weight(sid)
            fused[sid] = (1.0 - share) * raw / top_lex + share * ngram.get(sid, 0.0) / top_ng
        if not semantic:
            return fused
        low, high = min(semantic.values()), max(semantic.values())
        span = (high - low) or 1.0
        return {
            sid: (1 - SEMANTIC_SHARE) * value + SEMANTIC_SHARE * (semantic.get(sid, low) - low) / span
            for sid, value in fused.items()
        }

    def _concept_label(self, sid: str, feat: str, q: _Query) -> str:
        """The studio's own term that best explains a concept match: the one closest to what the query said."""
        own = self._studios[sid].labels.get(feat, ())
        if not own:
            return ""
        asked = q.concept_terms.get(feat, ())

        def closeness(term: str) -> int:
            return max((len(set(term) & set(a)) for a in asked), default=0)

        return max(own, key=closeness)  # ties keep the studio's most weighted term (max is stable)

    def trade_studio(self, text: str) -> str | None:
        """A studio of the trade the question is about (the one whose disciplines it fits best), or None when
        it names no trade: with no confident match, its alliance is whose lead hears about the problem."""
        q = self._query(text)
        if not q.disciplines or not self._studios:
            return None
        fit = {
            sid: sum(share * q.disciplines.get(d, 0.0) for d, share in studio.disciplines.items())
            for sid, studio in self._studios.items()
        }
        best = max(fit, key=fit.__getitem__)
        return best if fit[best] > 0 else None

    def rank(self, text: str, limit: int = 3, *, exclude: Collection[str] = ()) -> list[StudioMatch]:
        """The ``limit`` best studios for ``text``, best first, skipping ``exclude``; always filled from the roster."""
        if limit <= 0 or not self._studios:
            return []
        q = self._query(text)
        lexical, why = self._scores(q)
        ngram = self._ngrams.scores(q.analysis.normalized, normalized=True)
        semantic = self._semantic.studio_scores(text) if self._semantic is not None else None
        scores = self._fuse(lexical, ngram, semantic)
        self._add_type_intent(scores, q.analysis.normalized, why)
        order = {sid: i for i, sid in enumerate(self._studios)}
        ranked = sorted(
            (sid for sid in self._studios if sid not in exclude), key=lambda s: (-scores[s], order[s])
        )
        if not ranked:
            return []
        best = scores[ranked[0]]
        # every signal agreeing on the best studio is evidence even without a listed word (a symptom)
        unanimous = ngram.get(ranked[0], 0.0) >= MIN_NGRAM_EVIDENCE and all(
            signal and max(signal, key=lambda s: (signal[s], -order[s])) == ranked[0]
            for signal in (ngram, *((semantic,) if semantic is not None else ()))
        )
        normalized = q.analysis.normalized
        # what the user wrote: its words, and the vocabulary terms it spelled (variants and typos included)
        written = set(q.analysis.words) | {h.term for h in q.analysis.hits}
        spelled = {h.term: h.surface for h in q.analysis.hits if not h.fuzzy and all(map(is_cjk, h.surface))}
        out: list[StudioMatch] = []
        for position, sid in enumerate(ranked[:limit]):
            raw = scores[sid]
            terms = [
                term
                for term, _ in sorted(why[sid].items(), key=lambda kv: -kv[1])
                if term and term not in STOP_WORDS
            ]
            # shown as the user spelled them: 拱架 stays 拱架 though the vocabulary files it under 钢架
            own = _dedupe_overlapping(
                tuple(dict.fromkeys(spelled.get(t, t) for t in terms if t in written or t in normalized))
            )
            related = _dedupe_overlapping(tuple(t for t in terms if t not in written and t not in normalized))
            words = lexical.get(sid, 0.0) - q.prior.get(sid, 0.0)
            evidence = words >= MIN_EVIDENCE or (position == 0 and unanimous)
            out.append(
                StudioMatch(
                    id=sid,
                    name=self._studios[sid].doc.name,
                    score=round(min(1.0, max(0.0, raw)), 4),
                    matched=own[:MATCHED_LIMIT],
                    related=related[:MATCHED_LIMIT],
                    confident=evidence and raw >= FOLLOW_SHARE * best,
                )
            )
        return out

    # --- re-asked questions ------------------------------------------------------------------------------

    def similar(self, text: str, limit: int = 3) -> list[SimilarMatch]:
        """Solved problems that ask essentially the same as ``text`` (high threshold; usually none)."""
        if not self._problems or limit <= 0:
            return []
        query_keys = self._similar_keys(self._analyse(text))
        if not query_keys:
            return []
        if self._semantic is not None and SEMANTIC_SIMILAR:
            return self._similar_by_meaning(text, query_keys, limit)
        n = len(self._problems) + self._stale
        cap = max(2000, n // 20)
        usable = sorted(
            (k for k in query_keys if 0 < len(self._keys.get(k, ())) <= cap),
            key=lambda k: len(self._keys[k]),
        )[:SIMILAR_PRESELECT_KEYS]
        votes: dict[int, float] = {}
        offered = 0.0
        for key in usable:
            weight = SIMILAR_KEY_WEIGHTS[key[0]] * math.log(1 + n / len(self._keys[key]))
            offered += weight
            for pid in set(self._keys[key]):
                votes[pid] = votes.get(pid, 0.0) + weight
        floor = SIMILAR_MIN_VOTE_SHARE * offered
        results: list[SimilarMatch] = []
        for pid in heapq.nlargest(SIMILAR_CANDIDATES, votes, key=votes.__getitem__):
            if votes[pid] < floor:
                break
            problem = self._problems.get(pid)
            if problem is None:
                continue
            keys = self._similar_keys(analyse(problem.text, lexicon=self._lexicon))
            score = self._similarity(query_keys, keys, n)
            if score >= SIMILAR_THRESHOLD:
                results.append(SimilarMatch.of(problem, score))
        results.sort(key=lambda m: (-m.score, m.id))
        return results[:limit]

    def same_question(self, text: str, others: Sequence[str]) -> int | None:
        """The position in ``others`` of the first text asking the same as ``text`` (by meaning with an
        embedder, else by key overlap), or None."""
        if not others:
            return None
        query_keys = self._similar_keys(self._analyse(text))
        n = len(self._problems) + self._stale + len(others)
        folded = normalize(text)
        cosines = self._semantic.cosines(text, others) if self._semantic is not None else None
        query = self._weighed(query_keys, n)  # the question's side of every comparison, weighed once
        for position, other in enumerate(others):
            if normalize(other) == folded:
                return position
            if cosines is None:
                if self._overlap(query, self._text_keys(other), n) >= SIMILAR_THRESHOLD:
                    return position
            elif cosines[position] >= SEMANTIC_SAME:
                return position
            elif cosines[position] >= SEMANTIC_SAME_NEAR and (
                self._overlap(query, self._text_keys(other), n) >= SEMANTIC_WORDS
            ):  # the words are compared only where the meaning is close enough for them to decide
                return position
        return None

    def _similar_by_meaning(self, text: str, query_keys: set[str], limit: int) -> list[SimilarMatch]:
        assert self._semantic is not None
        n = len(self._problems) + self._stale
        results = []
        for pid, cosine in self._semantic.nearest_solved(text, limit):
            problem = self._problems.get(pid)
            if problem is None or cosine < SEMANTIC_SAME_NEAR:
                continue
            if cosine < SEMANTIC_SAME:
                keys = self._similar_keys(analyse(problem.text, lexicon=self._lexicon))
                if self._similarity(query_keys, keys, n) < SEMANTIC_WORDS:
                    continue
            results.append(SimilarMatch.of(problem, cosine))
        return results

    def _key_weight(self, key: str, n: int) -> float:
        return SIMILAR_KEY_WEIGHTS[key[0]] * math.log(1 + n / (1 + len(self._keys.get(key, ()))))

    def _weighed(self, keys: Set[str], n: int) -> tuple[dict[str, float], float]:
        weights = {key: self._key_weight(key, n) for key in keys}
        return weights, sum(weights.values())

    def _overlap(self, query: tuple[dict[str, float], float], b: Set[str], n: int) -> float:
        """``_similarity`` with the first key set weighed beforehand (one question against many texts)."""
        weights, total_a = query
        shared = sum(weights[k] for k in b if k in weights)
        total = total_a + sum(self._key_weight(k, n) for k in b)
        return 2 * shared / total if total else 0.0

    def _similarity(self, a: Set[str], b: Set[str], n: int) -> float:
        """IDF-weighted Dice coefficient of two key sets."""
        return self._overlap(self._weighed(a, n), b, n)


def _solved_text(problem: SolvedProblem) -> str:
    """What a solved problem adds to its studio's n-gram profile: the question and the studio's answer."""
    return f"{problem.text} {problem.answer}" if problem.answer else problem.text


def _profile_text(doc: StudioDoc) -> str:
    return f"{doc.name}。擅长：{'、'.join(doc.expertise)}。{doc.description}"


def _roster_pieces(doc: StudioDoc) -> list[tuple[str, float]]:
    return [*((e, EXPERTISE_WEIGHT) for e in doc.expertise), (doc.name, NAME_WEIGHT), (doc.description, DESCRIPTION_WEIGHT)]


def _dedupe_overlapping(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Drop a term already contained in a more telling (earlier) one."""
    kept: list[str] = []
    for term in terms:
        if any(term in k or k in term for k in kept):
            continue
        kept.append(term)
    return tuple(kept)


__all__ = [
    "DISCIPLINES",
    "RoutingIndex",
    "SimilarMatch",
    "SolvedProblem",
    "StudioDoc",
    "StudioMatch",
]
