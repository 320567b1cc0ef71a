"""Several segments of one snapshot seen as one store (the FAISS engine's join, base.SegmentStore).

A snapshot that shares the unchanged data of the one before it (snapshot/update.py) is a list of immutable
segments, each a folder written once by FaissStore.write, and the documents each no longer answers for
(deleted, or changed and written again in a later segment). Passages are numbered as Index.chunks lists
them: segment by segment, live rows only. BM25 scores every segment with the statistics of all live
passages, so a passage scores as it would in one index over the same passages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from policyqa.store.base import Scope, Terms
from policyqa.store.lexical import BM25, Collection
from policyqa.store.vectors import mean_vectors, sample_rows

if TYPE_CHECKING:  # the FAISS engine's segment stores; faiss.py imports this module
    from policyqa.store.faiss import ArrayLexical, FaissVectors


def join_segments(
    parts: Sequence[tuple[FaissVectors, ArrayLexical]], lives: Sequence[np.ndarray]
) -> tuple[JoinedVectors, JoinedLexical]:
    """Segments as one store: each answers for the rows its `lives` mask marks, numbered segment by segment."""
    numbering = Numbering(lives)
    masks = [None if live.all() else live for live in lives]
    vectors = [v.with_live(m) for (v, _), m in zip(parts, masks, strict=True)]
    lexical = [lex.with_live(m) for (_, lex), m in zip(parts, masks, strict=True)]
    return JoinedVectors(vectors, numbering), JoinedLexical(lexical, numbering)


class Numbering:
    """Where each live passage is: (segment, row) for live number i, and back."""

    def __init__(self, lives: Sequence[np.ndarray]) -> None:
        self.rows = [np.flatnonzero(live) for live in lives]  # live rows of each segment, ascending
        self.starts = np.cumsum([0] + [len(r) for r in self.rows])  # first live number of each segment
        self.size = int(self.starts[-1])
        self.to_live = []
        for s, (live, rows) in enumerate(zip(lives, self.rows, strict=True)):
            back = np.full(len(live), -1, np.int64)
            back[rows] = np.arange(len(rows)) + self.starts[s]
            self.to_live.append(back)

    def locate(self, i: int) -> tuple[int, int]:
        s = int(np.searchsorted(self.starts, i, side="right")) - 1
        return s, int(self.rows[s][i - self.starts[s]])

    def split(self, ids: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
        """Live numbers grouped by segment: segment -> [(live number, row)]."""
        out: dict[int, list[tuple[int, int]]] = {}
        for i in ids:
            s, row = self.locate(int(i))
            out.setdefault(s, []).append((int(i), row))
        return out


class JoinedVectors:
    def __init__(self, parts: Sequence[FaissVectors], numbering: Numbering) -> None:
        self.parts = parts
        self.at = numbering

    def nearest(self, qvec: np.ndarray, depth: int, scope: Scope | None = None) -> list[int]:
        found = [
            (sim, int(self.at.to_live[s][row]))
            for s, part in enumerate(self.parts)
            for row, sim in part.nearest_scored(qvec, depth, scope)
        ]
        found.sort(key=lambda f: (-f[0], f[1]))
        return [i for _, i in found[:depth]]

    def scores(self, qvec: np.ndarray, ids: Sequence[int], sentence: float) -> dict[int, float]:
        out: dict[int, float] = {}
        for s, pairs in self.at.split(ids).items():
            got = self.parts[s].scores(qvec, [row for _, row in pairs], sentence)
            out.update({i: got[row] for i, row in pairs})
        return out

    def closeness(self, qvec: np.ndarray, i: int) -> list[float]:
        s, row = self.at.locate(i)
        return self.parts[s].closeness(qvec, row)

    def background(self) -> np.ndarray:
        return self._background

    @cached_property
    def _background(self) -> np.ndarray:
        rows = [self.at.locate(int(i)) for i in sample_rows(self.at.size)]
        dim = self.parts[0].vectors.shape[1] if self.parts else 0
        return np.array([self.parts[s].vectors[r] for s, r in rows], np.float32).reshape(len(rows), dim)

    def centroids(self, owner: np.ndarray, documents: int) -> np.ndarray:
        total = np.zeros((documents, self.parts[0].vectors.shape[1] if self.parts else 0), np.float32)
        # a document's live passages are all in one segment, so each centroid comes whole from one of them
        for s, part in enumerate(self.parts):
            back = self.at.to_live[s]
            rows_owner = np.where(back >= 0, owner[np.maximum(back, 0)], -1) if len(back) else back
            total += mean_vectors(part.vectors, rows_owner, documents)
        return total


class LiveDF(Mapping[str, int]):
    """Document frequencies over the live rows of several BM25 indexes, counted when first asked."""

    def __init__(self, indexes: Sequence[BM25], lives: Sequence[np.ndarray | None]) -> None:
        self.indexes = indexes
        self.lives = lives
        self._known: dict[str, int] = {}

    def __getitem__(self, word: str) -> int:
        got = self._known.get(word)
        if got is None:
            got = sum(
                bm25.df(word) if live is None else int(np.count_nonzero(live[bm25.postings(word)]))
                for bm25, live in zip(self.indexes, self.lives, strict=True)
            )
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[word] = got
        return got

    def __iter__(self) -> Iterator[str]:
        return iter({t for bm25 in self.indexes for t in bm25.terms if self[t]})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def collection(indexes: Sequence[BM25], lives: Sequence[np.ndarray | None]) -> Collection:
    size = sum(b.size if live is None else int(live.sum()) for b, live in zip(indexes, lives, strict=True))
    length = sum(
        float(b.doc_len.sum() if live is None else b.doc_len[live].sum())
        for b, live in zip(indexes, lives, strict=True)
    )
    return Collection(size, length / size if size else 0.0, LiveDF(indexes, lives))


class JoinedLexical:
    def __init__(self, parts: Sequence[ArrayLexical], numbering: Numbering) -> None:
        self.parts = parts
        self.at = numbering
        lives = [p.live for p in parts]
        sentence_lives = [None if p.live is None else p.live[p.sentence_owner] for p in parts]
        self.whole = collection([p.passages for p in parts], lives)
        shared = (self.whole, collection([p.sentences for p in parts], sentence_lives))
        for part in parts:
            part.collections = shared

    def top(self, words: Terms, depth: int, sentence: float, scope: Scope | None = None) -> dict[int, float]:
        found = [
            (score, int(self.at.to_live[s][row]))
            for s, part in enumerate(self.parts)
            for row, score in part.top(words, depth, sentence, scope).items()
        ]
        found.sort(key=lambda f: (-f[0], f[1]))
        return {i: score for score, i in found[:depth]}

    def scores(self, words: Terms, ids: Sequence[int], sentence: float) -> dict[int, float]:
        out: dict[int, float] = {}
        for s, pairs in self.at.split(ids).items():
            got = self.parts[s].scores(words, [row for _, row in pairs], sentence)
            out.update({i: got[row] for i, row in pairs})
        return out

    def idf(self, word: str) -> float:
        return self.parts[0].passages.idf(word, self.whole) if self.parts else 0.0

    def known(self, word: str) -> bool:
        return bool(self.whole.df.get(word, 0))
