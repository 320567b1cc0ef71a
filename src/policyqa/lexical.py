"""BM25 over jieba words, stored as plain arrays (term-major postings)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Collection:
    """Statistics of a whole collection kept in several BM25 indexes (a snapshot's segments): each scores its
    own passages as one index over everything would."""

    size: int
    avgdl: float
    df: Mapping[str, int]


@dataclass(frozen=True)
class BM25:
    terms: dict[str, int]
    indptr: np.ndarray  # postings of term t: indices[indptr[t]:indptr[t+1]]
    indices: np.ndarray  # chunk numbers
    tfs: np.ndarray  # term frequencies
    doc_len: np.ndarray
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> BM25:
        postings: dict[str, list[tuple[int, int]]] = {}
        for n, words in enumerate(docs):
            for word, tf in Counter(words).items():
                postings.setdefault(word, []).append((n, tf))
        terms = {t: i for i, t in enumerate(sorted(postings))}
        indptr = np.zeros(len(terms) + 1, np.int64)
        indices, tfs = [], []
        for t in sorted(postings):
            for n, tf in postings[t]:
                indices.append(n)
                tfs.append(tf)
            indptr[terms[t] + 1] = len(indices)
        doc_len = np.array([len(d) for d in docs], np.float32)
        return cls(terms, indptr, np.array(indices, np.int32), np.array(tfs, np.float32), doc_len, k1, b)

    @property
    def size(self) -> int:
        return len(self.doc_len)

    def known(self, term: str) -> bool:
        return term in self.terms

    def df(self, term: str) -> int:
        t = self.terms.get(term)
        return 0 if t is None else int(self.indptr[t + 1] - self.indptr[t])

    def postings(self, term: str) -> np.ndarray:
        """The chunk numbers holding the term."""
        t = self.terms.get(term)
        return self.indices[self.indptr[t] : self.indptr[t + 1]] if t is not None else self.indices[:0]

    def idf(self, term: str, collection: Collection | None = None) -> float:
        size, df = (self.size, self.df(term)) if collection is None else (collection.size, collection.df.get(term, 0))
        if not df:
            return 0.0
        return float(np.log(1.0 + (size - df + 0.5) / (df + 0.5)))

    def scores(self, words: Sequence[str], collection: Collection | None = None) -> np.ndarray:
        """BM25 score of every chunk for the query words (repeated words count once); with `collection`, idf
        and length normalisation are those of the whole collection this index is part of."""
        out = np.zeros(self.size, np.float32)
        if not self.size:
            return out
        avgdl = (float(self.doc_len.mean()) if collection is None else collection.avgdl) or 1.0
        for word in dict.fromkeys(words):
            t = self.terms.get(word)
            if t is None:
                continue
            lo, hi = self.indptr[t], self.indptr[t + 1]
            docs, tf = self.indices[lo:hi], self.tfs[lo:hi]
            norm = tf + self.k1 * (1 - self.b + self.b * self.doc_len[docs] / avgdl)
            out[docs] += self.idf(word, collection) * tf * (self.k1 + 1) / norm
        return out

    def top(self, words: Sequence[str], n: int) -> list[tuple[int, float]]:
        return best(self.scores(words), n)

    def save(self, folder: Path, stem: str = "lexical") -> None:
        arrays = {"indptr": self.indptr, "indices": self.indices, "tfs": self.tfs, "doc_len": self.doc_len}
        np.savez(folder / f"{stem}.npz", **arrays)  # type: ignore[arg-type]
        terms = sorted(self.terms, key=self.terms.__getitem__)
        (folder / f"{stem}.terms.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b, "terms": terms}, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path, stem: str = "lexical") -> BM25:
        meta = json.loads((folder / f"{stem}.terms.json").read_text(encoding="utf-8"))
        arrays = np.load(folder / f"{stem}.npz")
        terms = {t: i for i, t in enumerate(meta["terms"])}
        return cls(terms, arrays["indptr"], arrays["indices"], arrays["tfs"], arrays["doc_len"], meta["k1"], meta["b"])


def best(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n highest positive scores as (position, score), best first, ties by position."""
    hits = np.flatnonzero(scores > 0)
    if len(hits) > n:
        hits = hits[np.argpartition(-scores[hits], n - 1)[:n]]
    order = hits[np.lexsort((hits, -scores[hits]))]
    return [(int(i), float(scores[i])) for i in order]
