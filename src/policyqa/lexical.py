"""BM25 over jieba words, stored as plain arrays (term-major postings)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np


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

    def contributions(self, word: str, collection: Collection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The chunks holding `word` and the word's BM25 term score in each (empty when unknown)."""
        t = self.terms.get(word)
        idf = self.idf(word, collection)
        if t is None or not idf:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        lo, hi = self.indptr[t], self.indptr[t + 1]
        docs, tf = self.indices[lo:hi], self.tfs[lo:hi]
        part: np.ndarray = idf * tf * (self.k1 + 1) / self._norm(tf, docs, collection)
        return docs, part

    @cached_property
    def _ceilings(self) -> np.ndarray:
        """Each term's highest tf * (k1 + 1) / norm over its postings (float64, a hair above): times its idf, no
        chunk can score more for that word."""
        out = np.zeros(len(self.terms), np.float64)
        full = np.flatnonzero(np.diff(self.indptr) > 0)
        if len(full):
            impact = self.tfs.astype(np.float64) * (self.k1 + 1) / self._norm(self.tfs, self.indices)
            out[full] = np.maximum.reduceat(impact, self.indptr[full])
        ceilings: np.ndarray = out * (1 + 1e-5)
        return ceilings

    def ceiling(self, word: str) -> float:
        """The most any chunk scores for this one word (with this BM25's own statistics)."""
        t = self.terms.get(word)
        return 0.0 if t is None else self.idf(word) * float(self._ceilings[t])

    def scores_of(self, words: Sequence[str], chunks: np.ndarray) -> np.ndarray:
        """The BM25 score of the given chunks (sorted, distinct), bit for bit as `scores` has them."""
        out = np.zeros(len(chunks), np.float32)
        for word in dict.fromkeys(words):
            t = self.terms.get(word)
            if t is None or not len(chunks):
                continue
            lo, hi = self.indptr[t], self.indptr[t + 1]
            at = np.searchsorted(self.indices[lo:hi], chunks)
            found = at < hi - lo
            found[found] = self.indices[lo:hi][at[found]] == chunks[found]
            at = at[found] + lo
            tf = self.tfs[at]
            out[found] += self.idf(word) * tf * (self.k1 + 1) / self._norm(tf, self.indices[at])
        return out

    def scores(self, words: Sequence[str], collection: Collection | None = None) -> np.ndarray:
        """BM25 score of every chunk for the query words (repeated words count once)."""
        out = np.zeros(self.size, np.float32)
        if not self.size:
            return out
        for word in dict.fromkeys(words):
            docs, part = self.contributions(word, collection)
            out[docs] += part
        return out

    def top(self, words: Sequence[str], n: int, collection: Collection | None = None) -> list[tuple[int, float]]:
        return best(self.scores(words, collection), n)

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


@dataclass(frozen=True)
class Blended:
    """BM25 of passages and of their sentences, ranked by the blend of a passage's own score and its best
    sentence's: (1 - sentence) * own + sentence * best. `owner[j]` is the passage of sentence j, non-decreasing.

    `top` prunes by max-score: words are scored from the one that can add most (the rarest) down, and once
    the words left could not lift a passage that none of the scored words reached past the current `depth`-th
    best, those words are looked up only for the passages still in the running. The passages returned and
    their scores are those of exhaustive scoring, bit for bit (`scores_of` adds the words in the question's
    order, as `BM25.scores` does)."""

    passages: BM25
    sentences: BM25
    owner: np.ndarray

    @cached_property
    def _first(self) -> np.ndarray:
        """Passage p's sentences are rows _first[p]:_first[p + 1]."""
        found: np.ndarray = np.searchsorted(self.owner, np.arange(self.passages.size + 1))
        return found

    def _rows(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sentence rows of the given passages, and where each passage's rows start among them."""
        lo, hi = self._first[chunks], self._first[chunks + 1]
        sizes = hi - lo
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rows = np.repeat(lo - starts, sizes) + np.arange(int(sizes.sum()))
        return rows, starts

    def _blend_of(self, own: np.ndarray, sentence_scores: np.ndarray, chunks: np.ndarray, weight: float) -> np.ndarray:
        rows, starts = self._rows(chunks)
        best_sentence = np.zeros(len(chunks), np.float32)
        has = np.diff(np.r_[starts, len(rows)]) > 0
        if len(rows):
            best_sentence[has] = np.maximum.reduceat(sentence_scores[rows], starts[has])
        return blend(own, best_sentence, weight)

    def scores_of(self, words: Sequence[str], chunks: np.ndarray, weight: float) -> np.ndarray:
        """The blended scores of the given passages (sorted, distinct)."""
        rows, _ = self._rows(chunks)
        sentence_scores = np.zeros(self.sentences.size, np.float32)
        sentence_scores[rows] = self.sentences.scores_of(words, rows)
        return self._blend_of(self.passages.scores_of(words, chunks), sentence_scores, chunks, weight)

    def top(
        self, words: Sequence[str], depth: int, weight: float, admitted: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The `depth` passages of highest positive blended score (admitted ones only), best first."""
        asked = list(dict.fromkeys(words))
        bound = {w: (1 - weight) * self.passages.ceiling(w) + weight * self.sentences.ceiling(w) for w in asked}
        order = sorted((w for w in asked if bound[w] > 0), key=lambda w: -bound[w])
        if not order:
            return []
        own = np.zeros(self.passages.size, np.float32)
        sentence_scores = np.zeros(self.sentences.size, np.float32)
        touched = np.zeros(self.passages.size, bool)
        rest, done, checking = sum(bound[w] for w in order), 0.0, True
        for w in order:
            docs, part = self.passages.contributions(w)
            own[docs] += part
            rows, part = self.sentences.contributions(w)
            sentence_scores[rows] += part
            rest, done = rest - bound[w], done + bound[w]
            # Worth asking whether the words left can be skipped only while few passages are in the running
            # (the check costs as much as they are) and once the words scored could outweigh the rest.
            checking = checking and int(touched.sum()) + len(docs) + len(rows) <= len(touched) // 8
            if checking:
                touched[docs] = True
                touched[self.owner[rows]] = True
                if done > rest:
                    floor, running = self._running(touched, own, sentence_scores, weight, depth, admitted, rest)
                    if rest < floor:
                        break
        else:  # every word scored: the depth-th best of all, then only those that reach it are scored exactly
            pool = blend(own, best_per_owner(sentence_scores, self.owner, len(own)), weight)
            pool = pool if admitted is None else np.where(admitted, pool, 0)
            floor = float(np.partition(pool, len(pool) - depth)[len(pool) - depth]) if len(pool) >= depth else 0.0
            running = np.flatnonzero((pool > 0) & (pool >= floor * (1 - 1e-5)))
        exact = self.scores_of(asked, running, weight)
        return [(int(running[i]), float(exact[i])) for i, _ in best(exact, depth)]

    def _running(self, touched: np.ndarray, own: np.ndarray, sentence_scores: np.ndarray, weight: float,
                 depth: int, admitted: np.ndarray | None, rest: float) -> tuple[float, np.ndarray]:  # fmt: skip
        """The current depth-th best partial score (lower bounds all), and the passages that could still
        reach it with the words left (`rest`: the most those can add)."""
        chunks = np.flatnonzero(touched if admitted is None else touched & admitted)
        partial = self._blend_of(own[chunks], sentence_scores, chunks, weight)
        floor = (
            float(np.partition(partial, len(partial) - depth)[len(partial) - depth]) if len(partial) >= depth else 0.0
        )
        floor *= 1 - 1e-5  # the exact sums, added in another order, may round a hair lower
        return floor, chunks[partial + rest >= floor]


def best_per_owner(scores: np.ndarray, owner: np.ndarray, size: int) -> np.ndarray:
    """out[p] = the highest of scores[j] over the j with owner[j] == p, and 0 where none is positive (numpy's
    maximum.at over every row: faster than visiting the positive ones alone, measured at 100,000 passages)."""
    out = np.zeros(size, scores.dtype)
    np.maximum.at(out, owner, scores)
    return out


def blend(own: np.ndarray, best_sentence: np.ndarray, sentence: float) -> np.ndarray:
    """A passage's score: (1 - sentence) * its own + sentence * its best sentence's."""
    out: np.ndarray = (1 - sentence) * own + sentence * best_sentence
    return out


def best(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n highest positive scores as (position, score), best first, ties by position (also at the n-th
    place: every score equal to the n-th is kept before the cut, which argpartition alone would not do)."""
    hits = np.flatnonzero(scores > 0) if n > 0 else np.zeros(0, np.int64)
    if len(hits) > n:
        nth = np.partition(scores[hits], len(hits) - n)[len(hits) - n]
        hits = hits[scores[hits] >= nth]
    order = hits[np.lexsort((hits, -scores[hits]))][:n]
    return [(int(i), float(scores[i])) for i in order]
