"""BM25 over jieba words, stored as plain arrays (term-major postings)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

KEPT_POSTINGS = 50_000_000  # posting scores kept across queries (4 bytes each)


@dataclass(frozen=True)
class Collection:
    """Collection-wide BM25 statistics: a BM25 that is one segment of a larger whole scores with these
    (idf from `size` and `df`, length normalisation by `avgdl`) so that every segment scores alike."""

    size: int
    avgdl: float
    df: Mapping[str, int]

    @classmethod
    def of(cls, parts: Sequence[BM25]) -> Collection:
        """The statistics of several BM25s taken together (each word's df summed)."""
        size = sum(p.size for p in parts)
        total = sum(float(p.doc_len.sum(dtype=np.float64)) for p in parts)
        df: dict[str, int] = {}
        for p in parts:
            for word, t in p.terms.items():
                df[word] = df.get(word, 0) + int(p.indptr[t + 1] - p.indptr[t])
        return cls(size, total / size if size else 0.0, df)


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
        """Postings sorted by term (terms in string order), then by chunk number; built with numpy so that a
        million passages take seconds and arrays, not a Python tuple per posting."""
        vocab: dict[str, int] = {}
        lengths = np.fromiter((len(d) for d in docs), np.int64, count=len(docs))
        total = int(lengths.sum())
        first = np.fromiter((vocab.setdefault(w, len(vocab)) for d in docs for w in d), np.int64, count=total)
        names = sorted(vocab)
        rank = np.empty(len(vocab), np.int64)
        rank[np.fromiter((vocab[t] for t in names), np.int64, count=len(names))] = np.arange(len(names))
        keys = rank[first] * max(len(docs), 1) + np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        del first
        keys.sort()
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if total else np.zeros(0, np.int64)
        tfs = np.diff(np.r_[starts, total]).astype(np.float32)
        keys = keys[starts]
        term, doc = np.divmod(keys, max(len(docs), 1))
        indptr = np.zeros(len(names) + 1, np.int64)
        indptr[1:] = np.cumsum(np.bincount(term, minlength=len(names)))
        terms = {t: i for i, t in enumerate(names)}
        return cls(terms, indptr, doc.astype(np.int32), tfs, lengths.astype(np.float32), k1, b)

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
        """log(1 + (N - df + 0.5) / (df + 0.5)); 0 for a word this BM25 (or the collection) does not hold."""
        if collection is None:
            size, df = self.size, self.df(term)
        else:
            size, df = collection.size, int(collection.df.get(term, 0))
        if not df:
            return 0.0
        return float(np.log(1.0 + (size - df + 0.5) / (df + 0.5)))

    def avgdl(self, collection: Collection | None = None) -> float:
        return self._avgdl if collection is None else collection.avgdl

    @cached_property
    def _avgdl(self) -> float:
        return float(self.doc_len.mean()) if self.size else 0.0  # once: a mean over 4M sentences takes ms

    @cached_property
    def _lengths(self) -> dict[float, np.ndarray]:
        return {}

    def _length_terms(self, avgdl: float) -> np.ndarray:
        """k1 * (1 - b + b * dl / avgdl) of every chunk, in float32 as BM25 computes it per posting (so a
        posting's norm, tf + this, is the same to the bit), kept for the last few avgdl asked."""
        kept = self._lengths
        if avgdl not in kept:
            if len(kept) >= 4:
                kept.clear()
            kept[avgdl] = self.k1 * (1 - self.b + self.b * self.doc_len / avgdl)
        return kept[avgdl]

    def _norm(self, tf: np.ndarray, docs: np.ndarray, collection: Collection | None = None) -> np.ndarray:
        """tf + k1 * (1 - b + b * dl / avgdl) of these postings."""
        norm: np.ndarray = tf + self._length_terms(self.avgdl(collection) or 1.0)[docs]
        return norm

    @cached_property
    def _kept(self) -> dict[tuple[int, float | None], np.ndarray]:
        return {}

    @cached_property
    def _kept_postings(self) -> list[int]:
        return [0]  # how many posting scores _kept holds, counted as they are added

    def _term_parts(self, t: int, idf: float, collection: Collection | None) -> np.ndarray:
        """The term's posting scores, worked out once per term and kept: with this BM25's own statistics,
        idf * tf * (k1 + 1) / norm, the same float32 operations the scoring of a query did each time; within a
        collection, tf * (k1 + 1) / norm under its avgdl, the collection's idf applied per query. Kept per
        term, not for the whole index at once (at a million passages that took 3.4 s, at start and after
        every update), and forgotten past KEPT_POSTINGS."""
        key = (t, None if collection is None else collection.avgdl)
        kept = self._kept
        found = kept.get(key)
        if found is None:
            lo, hi = self.indptr[t], self.indptr[t + 1]
            docs, tf = self.indices[lo:hi], self.tfs[lo:hi]
            if collection is None:
                found = np.float32(idf) * tf * (self.k1 + 1) / self._norm(tf, docs)
            else:
                found = tf * (self.k1 + 1) / self._norm(tf, docs, collection)
            held = self._kept_postings
            if held[0] + len(found) > KEPT_POSTINGS:
                kept.clear()
                held[0] = 0
            kept[key] = found
            held[0] += len(found)
        return found

    def contributions(self, word: str, collection: Collection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The chunks holding `word` and the word's BM25 term score in each (empty when unknown)."""
        t = self.terms.get(word)
        idf = self.idf(word, collection)
        if t is None or not idf:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        docs = self.indices[self.indptr[t] : self.indptr[t + 1]]
        part = self._term_parts(t, idf, collection)
        return docs, part if collection is None else np.float32(idf) * part

    def scores(self, words: Sequence[str] | Mapping[str, float], collection: Collection | None = None) -> np.ndarray:
        """BM25 score of every chunk for the query words (repeated words count once); words given with a weight
        each add their term score times it."""
        out = np.zeros(self.size, np.float32)
        if not self.size:
            return out
        weights = words if isinstance(words, Mapping) else dict.fromkeys(words, 1.0)
        for word, weight in weights.items():
            docs, part = self.contributions(word, collection)
            out[docs] += part if weight == 1.0 else np.float32(weight) * part
        return out

    def top(self, words: Sequence[str], n: int, collection: Collection | None = None) -> list[tuple[int, float]]:
        return best(self.scores(words, collection), n)

    def save(self, folder: Path, stem: str = "lexical") -> None:
        for name in _ARRAYS:
            np.save(folder / f"{stem}.{name}.npy", getattr(self, name))
        terms = sorted(self.terms, key=self.terms.__getitem__)
        (folder / f"{stem}.terms.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b, "terms": terms}, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path, stem: str = "lexical") -> BM25:
        meta = json.loads((folder / f"{stem}.terms.json").read_text(encoding="utf-8"))
        # One .npy per array, memory-mapped: nothing is read until a query touches it, and processes serving
        # one index share the pages (a snapshot written before keeps the four in one .npz, read whole).
        old = folder / f"{stem}.npz"
        arrays = (
            np.load(old) if old.exists() else {n: np.load(folder / f"{stem}.{n}.npy", mmap_mode="r") for n in _ARRAYS}
        )
        terms = {t: i for i, t in enumerate(meta["terms"])}
        return cls(terms, arrays["indptr"], arrays["indices"], arrays["tfs"], arrays["doc_len"], meta["k1"], meta["b"])


_ARRAYS = ("indptr", "indices", "tfs", "doc_len")


def best(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n highest positive scores as (position, score), best first, ties by position (also at the n-th
    place: every score equal to the n-th is kept before the cut, which argpartition alone would not do)."""
    hits = np.flatnonzero(scores > 0) if n > 0 else np.zeros(0, np.int64)
    if len(hits) > n:
        nth = np.partition(scores[hits], len(hits) - n)[len(hits) - n]
        hits = hits[scores[hits] >= nth]
    order = hits[np.lexsort((hits, -scores[hits]))][:n]
    return [(int(i), float(scores[i])) for i in order]
