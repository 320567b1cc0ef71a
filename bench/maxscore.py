"""Variant (c) of bench/lexical_scale.py: max-score top-k of the blended passage and best-sentence BM25 over
policyqa's own postings, exact to the bit against exhaustive scoring. Measured slower than exhaustive scoring
at 100,000 and 1,000,000 passages (bench/RESULTS.md), so it lives here and not in policyqa.store.lexical."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from policyqa.store.lexical import BM25, best


def best_per_owner(scores: np.ndarray, owner: np.ndarray, size: int) -> np.ndarray:
    """out[p] = the highest of scores[j] over the j with owner[j] == p, and 0 where none is positive (as
    store.faiss.ArrayLexical does it)."""
    out = np.zeros(size, scores.dtype)
    np.maximum.at(out, owner, scores)
    return out


def blend(own: np.ndarray, best_sentence: np.ndarray, sentence: float) -> np.ndarray:
    """A passage's score: (1 - sentence) * its own + sentence * its best sentence's."""
    out: np.ndarray = (1 - sentence) * own + sentence * best_sentence
    return out


def ceilings(bm: BM25) -> np.ndarray:
    """Each term's highest tf * (k1 + 1) / norm over its postings (float64, a hair above): times its idf, no
    chunk can score more for that word."""
    out = np.zeros(len(bm.terms), np.float64)
    full = np.flatnonzero(np.diff(bm.indptr) > 0)
    if len(full):
        impact = bm.tfs.astype(np.float64) * (bm.k1 + 1) / bm._norm(bm.tfs, bm.indices)
        out[full] = np.maximum.reduceat(impact, bm.indptr[full])
    ceilings: np.ndarray = out * (1 + 1e-5)
    return ceilings


def ceiling(bm: BM25, tops: np.ndarray, word: str) -> float:
    """The most any chunk scores for this one word (with this BM25's own statistics)."""
    t = bm.terms.get(word)
    return 0.0 if t is None else bm.idf(word) * float(tops[t])


def scores_of(bm: BM25, words: Sequence[str], chunks: np.ndarray) -> np.ndarray:
    """The BM25 score of the given chunks (sorted, distinct), bit for bit as `scores` has them."""
    out = np.zeros(len(chunks), np.float32)
    for word in dict.fromkeys(words):
        t = bm.terms.get(word)
        if t is None or not len(chunks):
            continue
        lo, hi = bm.indptr[t], bm.indptr[t + 1]
        at = np.searchsorted(bm.indices[lo:hi], chunks)
        found = at < hi - lo
        found[found] = bm.indices[lo:hi][at[found]] == chunks[found]
        at = at[found] + lo
        tf = bm.tfs[at]
        out[found] += bm.idf(word) * tf * (bm.k1 + 1) / bm._norm(tf, bm.indices[at])
    return out


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
    def _tops(self) -> tuple[np.ndarray, np.ndarray]:
        return ceilings(self.passages), ceilings(self.sentences)

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
        sentence_scores[rows] = scores_of(self.sentences, words, rows)
        return self._blend_of(scores_of(self.passages, words, chunks), sentence_scores, chunks, weight)

    def top(
        self, words: Sequence[str], depth: int, weight: float, admitted: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The `depth` passages of highest positive blended score (admitted ones only), best first."""
        asked = list(dict.fromkeys(words))
        bound = {
            w: (1 - weight) * ceiling(self.passages, self._tops[0], w)
            + weight * ceiling(self.sentences, self._tops[1], w)
            for w in asked
        }
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
