"""The FAISS engine: passage vectors in a FAISS index and numpy arrays, BM25 as plain arrays, all files of
one folder: a snapshot, or one segment of a snapshot (vectors.npy, dense.faiss, sentences.npy with
sentence_ptr.npy: passage i owns rows ptr[i]:ptr[i+1]; lexical.*.npy + lexical.terms.json over passages,
sentences.*.npy + sentences.terms.json + sentence_owner.npy over their sentences).

Passage and sentence vectors are kept in fp16 and memory-mapped: every process serving the snapshot shares
the same pages, and only the rows of a question's candidates are read (cosines move by about 1e-4; see
bench/RESULTS.md). A segment opened with a `live` mask answers as if its other rows were not there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.store.base import LexicalStore, Scope, SegmentStore, Terms, Vectors, VectorStore, Words
from policyqa.store.lexical import BM25, Collection, best
from policyqa.store.segments import JoinedLexical, JoinedVectors, join_segments
from policyqa.store.vectors import mean_vectors, sample_rows

# Dense index type by corpus size, from bench/scale.py (see bench/RESULTS.md): exact search below the
# switch; HNSW above it, where exact search starts to cost a noticeable share of a question's encode.
HNSW_FROM = 20_000
HNSW_M = 32


def search_effort(n: int) -> int:
    """HNSW efSearch: candidates visited per question (recall@10 0.96 at 100k passages in bench/scale.py,
    0.37 ms a question); doubled for corpora past where that was measured."""
    return 256 if n >= 200_000 else 128


def dense_index(vectors: np.ndarray, force: str | None = None) -> Any:
    """The FAISS index for these passage vectors (inner product = cosine): flat, or HNSW for large corpora."""
    import faiss

    n, dim = vectors.shape
    index: Any
    if (force or ("hnsw" if n >= HNSW_FROM else "flat")) == "hnsw":
        # HNSW over fp16 copies of the vectors: recall@10 against exact search 0.995 at 100,000 passages in
        # bench/RESULTS.md, against 0.997 over fp32 and 0.980 over 8-bit codes, at 58% of fp32's memory
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = search_effort(n)
    else:
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class Owners:
    """The doc_id of every passage, and which passages a scope admits (both legs of a search ask for the same
    scope, so the last answer is kept)."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = ids
        self._last: tuple[Scope, np.ndarray] | None = None

    @cached_property
    def _codes(self) -> tuple[dict[str, int], np.ndarray]:
        """Each document's number and every passage's document number (a scope is then a lookup per
        document, not per passage: a million passages belong to a few tens of thousands of documents)."""
        numbers = {d: n for n, d in enumerate(dict.fromkeys(self.ids))}
        return numbers, np.fromiter((numbers[d] for d in self.ids), np.int64, count=len(self.ids))

    def admitted(self, scope: Scope) -> np.ndarray:
        last = self._last
        if last is not None and last[0] == scope:
            return last[1]
        numbers, codes = self._codes
        allowed = np.fromiter((scope.admits(d) for d in numbers), dtype=bool, count=len(numbers))
        mask: np.ndarray = allowed[codes] if len(codes) else np.zeros(0, bool)
        self._last = (scope, mask)
        return mask


class FaissVectors:
    def __init__(
        self,
        vectors: np.ndarray,
        dense: Any,
        sentences: np.ndarray,
        ptr: np.ndarray,
        owners: Owners,
        live: np.ndarray | None = None,
    ) -> None:
        self.vectors = vectors  # memory-mapped, like the sentences
        self.dense = dense  # faiss.Index over the passage vectors
        self.sentences = sentences  # memory-mapped: only the candidates' rows are ever read
        self.ptr = ptr
        self.owners = owners
        self.live = live  # rows still in the snapshot (None: all of them)
        self._params: Any = None

    def with_live(self, live: np.ndarray | None) -> FaissVectors:
        """The same arrays, answering for the `live` rows only."""
        return FaissVectors(self.vectors, self.dense, self.sentences, self.ptr, self.owners, live)

    def nearest(self, qvec: np.ndarray, depth: int, scope: Scope | None = None) -> list[int]:
        return [i for i, _ in self.nearest_scored(qvec, depth, scope)]

    def nearest_scored(self, qvec: np.ndarray, depth: int, scope: Scope | None = None) -> list[tuple[int, float]]:
        """The passages nearest the question with their cosine, best first (live rows only)."""
        if scope is None:
            sims, found = self.dense.search(
                np.ascontiguousarray(qvec[None, :], np.float32), depth, params=self._selector()
            )
            return [(int(i), float(s)) for i, s in zip(found[0], sims[0], strict=True) if i >= 0]
        # The ANN index cannot be asked to stay inside a subset: exact inner product over the allowed passages
        # (at most the corpus, a few milliseconds at 100,000).
        admitted = self.owners.admitted(scope)
        ids = np.flatnonzero(admitted if self.live is None else admitted & self.live)
        if not len(ids):
            return []
        sims = self.vectors[ids] @ qvec
        top = np.argsort(-sims, kind="stable")[:depth]
        return [(int(ids[t]), float(sims[t])) for t in top]

    def _selector(self) -> Any:
        """Search parameters keeping the ANN search to live rows (None when every row is live)."""
        if self.live is None or self._params is not None:
            return self._params
        import faiss

        bits = np.packbits(self.live, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(self.live), faiss.swig_ptr(bits))
        params: Any = faiss.SearchParametersHNSW() if hasattr(self.dense, "hnsw") else faiss.SearchParameters()  # type: ignore[attr-defined]
        if hasattr(self.dense, "hnsw"):
            params.efSearch = self.dense.hnsw.efSearch
        params.sel = selector
        self._keep = (bits, selector)  # the bitmap must outlive the parameters that point into it
        self._params = params
        return params

    def scores(self, qvec: np.ndarray, ids: Sequence[int], sentence: float) -> dict[int, float]:
        out: dict[int, float] = {}
        for i in ids:
            own = float(self.vectors[i] @ qvec)
            lo, hi = int(self.ptr[i]), int(self.ptr[i + 1])
            out[i] = (1 - sentence) * own + sentence * float(np.max(self.sentences[lo:hi] @ qvec)) if hi > lo else own
        return out

    def closeness(self, qvec: np.ndarray, i: int) -> list[float]:
        return [float(x) for x in self.sentences[int(self.ptr[i]) : int(self.ptr[i + 1])] @ qvec]

    def background(self) -> np.ndarray:
        return self._background

    @cached_property
    def _background(self) -> np.ndarray:
        rows: np.ndarray = np.asarray(self.vectors[sample_rows(len(self.vectors))], np.float32)
        return rows

    def centroids(self, owner: np.ndarray, documents: int) -> np.ndarray:
        return mean_vectors(self.vectors, owner, documents)


class ArrayLexical:
    def __init__(
        self,
        passages: BM25,
        sentences: BM25,
        sentence_owner: np.ndarray,
        owners: Owners,
        live: np.ndarray | None = None,
    ) -> None:
        self.passages = passages
        self.sentences = sentences  # BM25 over single sentences; sentence_owner[j] is the passage of sentence j
        self.sentence_owner = sentence_owner
        self.owners = owners
        self.live = live  # rows still in the snapshot (None: all of them)
        # collection-wide statistics when this is one segment of several (passages, sentences)
        self.collections: tuple[Collection, Collection] | None = None
        self._last: tuple[tuple[tuple[object, ...], float], np.ndarray] | None = None

    def with_live(self, live: np.ndarray | None) -> ArrayLexical:
        """The same arrays, answering for the `live` rows only."""
        return ArrayLexical(self.passages, self.sentences, self.sentence_owner, self.owners, live)

    def blended(self, words: Terms, sentence: float) -> np.ndarray:
        """Every passage's score: its own and its best sentence's, weighted by `sentence` (the last query's
        are kept: a search asks for the top and then for its hits' scores)."""
        key = (tuple(words.items() if isinstance(words, Mapping) else words), sentence)
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        whole, parts = self.collections or (None, None)
        own = self.passages.scores(words, whole)
        best_sentence = np.zeros_like(own)
        if self.sentences.size:
            np.maximum.at(best_sentence, self.sentence_owner, self.sentences.scores(words, parts))
        out: np.ndarray = (1 - sentence) * own + sentence * best_sentence
        self._last = (key, out)
        return out

    def top(self, words: Terms, depth: int, sentence: float, scope: Scope | None = None) -> dict[int, float]:
        scores = self.blended(words, sentence)
        keep = self.live if scope is None else self.owners.admitted(scope) & (True if self.live is None else self.live)
        pool = scores if keep is None else np.where(keep, scores, 0.0)
        return dict(best(pool, depth))

    def scores(self, words: Terms, ids: Sequence[int], sentence: float) -> dict[int, float]:
        scores = self.blended(words, sentence)
        return {i: float(scores[i]) for i in ids}

    def idf(self, word: str) -> float:
        return self.passages.idf(word)

    def known(self, word: str) -> bool:
        return self.passages.known(word)


class FaissStore:
    """Vectors and BM25 as files of the snapshot folder (or of each of its segments: a SegmentStore): a snapshot
    is whole when its folder is."""

    name = "faiss"
    files_only = True

    def write(
        self, folder: Path, dim: int, vectors: Sequence[Vectors], words: Sequence[Words], owners: Sequence[str]
    ) -> None:
        import faiss

        passages = np.array([g.passage for g in vectors], np.float32).reshape(len(vectors), dim)
        np.save(folder / "vectors.npy", passages.astype(np.float16))
        sizes = [len(g.sentences) for g in vectors]
        np.save(folder / "sentence_ptr.npy", np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64))
        # written row by row into the file: a million passages' sentence vectors are about 3 GB in fp16
        out = np.lib.format.open_memmap(folder / "sentences.npy", mode="w+", dtype=np.float16, shape=(sum(sizes), dim))
        at = 0
        for g, size in zip(vectors, sizes, strict=True):
            if size:
                out[at : at + size] = g.sentences
                at += size
        out.flush()
        del out
        faiss.write_index(dense_index(passages), str(folder / "dense.faiss"))
        BM25.build([w.passage for w in words]).save(folder)
        BM25.build([s for w in words for s in w.sentences]).save(folder, "sentences")
        counts = np.fromiter((len(w.sentences) for w in words), np.int64, count=len(words))
        np.save(folder / "sentence_owner.npy", np.repeat(np.arange(len(words), dtype=np.int64), counts))

    def open(
        self, folder: Path, owners: Sequence[str], live: np.ndarray | None = None
    ) -> tuple[FaissVectors, ArrayLexical]:
        """The folder's stores; with `live`, only the rows it marks are answered."""
        import faiss

        n = len(owners)
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        dense = faiss.read_index(str(folder / "dense.faiss"))
        if hasattr(dense, "hnsw"):
            dense.hnsw.efSearch = search_effort(dense.ntotal)
        if dense.ntotal != n or len(vectors) != n:
            raise ValueError(f"{n} passages, {len(vectors)} vectors, {dense.ntotal} in dense.faiss")
        sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        ptr = np.load(folder / "sentence_ptr.npy")
        if len(ptr) != n + 1 or int(ptr[-1]) != len(sentences):
            raise ValueError("sentence vectors do not match their passages")
        lexical, sentence_lexical = BM25.load(folder), BM25.load(folder, "sentences")
        sentence_owner = np.load(folder / "sentence_owner.npy")
        if lexical.size != n or len(sentence_owner) != sentence_lexical.size:
            raise ValueError("the BM25 files do not match the passages")
        if live is not None and len(live) != n:
            raise ValueError(f"{len(live)} live flags for {n} passages")
        shared = Owners(owners)
        return (
            FaissVectors(vectors, dense, sentences, ptr, shared, live),
            ArrayLexical(lexical, sentence_lexical, sentence_owner, shared, live),
        )

    def vectors(self, folder: Path, rows: Sequence[int] | None = None) -> list[Vectors]:
        """The vectors of every passage (or of the given rows), in order, in fp32."""
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        ptr = np.load(folder / "sentence_ptr.npy")
        wanted = range(len(vectors)) if rows is None else rows
        return [
            Vectors(np.asarray(vectors[i], np.float32), np.asarray(sentences[ptr[i] : ptr[i + 1]], np.float32))
            for i in wanted
        ]

    def join(
        self, parts: Sequence[tuple[VectorStore, LexicalStore]], lives: Sequence[np.ndarray]
    ) -> tuple[JoinedVectors, JoinedLexical]:
        """Segments this engine opened, seen as one store (a snapshot may share the unchanged segments of the
        one before it: snapshot/update.py)."""
        own = [(v, lex) for v, lex in parts if isinstance(v, FaissVectors) and isinstance(lex, ArrayLexical)]
        if len(own) != len(parts):
            raise TypeError("the FAISS store joins only segments it opened")
        return join_segments(own, lives)

    def publish(self, name: str) -> None:
        """Nothing to do: CURRENT names the folder that holds everything."""

    def discard(self, name: str) -> None:
        """Nothing to do: pruning the folder removes everything."""


def connect(url: str = "", api_key: str = "") -> SegmentStore:
    """FAISS has no server: everything is in the snapshot folder."""
    return FaissStore()
