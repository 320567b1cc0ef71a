"""The store seam: what search and confidence ask of a snapshot's vectors and words, what a build hands to an
engine to keep, and what an engine that keeps a snapshot as segments offers an incremental update. One file
per engine beside this one implements it (faiss.py, qdrant.py), named in store/__init__.py's ENGINES.

Passages are numbered by their row in the snapshot's chunks.jsonl; every engine answers in those numbers.
A `Scope` restricts a query to the passages of some documents (a search filter) and away from others
(deleted, but still in the served snapshot); None means every passage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

# A BM25 query: its words, or its words each with a weight (a word's term score is multiplied by it; a
# query expanded with statute wording weighs the words it adds below 1).
Terms = Sequence[str] | Mapping[str, float]


@dataclass(frozen=True)
class Vectors:
    """What the dense leg knows of one passage: its own vector and one per sentence (maybe none)."""

    passage: np.ndarray
    sentences: np.ndarray


@dataclass(frozen=True)
class Scope:
    """Which documents a query may answer from: only `docs` (None: any) and never `hidden`."""

    docs: frozenset[str] | None = None
    hidden: frozenset[str] = frozenset()

    def admits(self, doc_id: str) -> bool:
        return (self.docs is None or doc_id in self.docs) and doc_id not in self.hidden


@dataclass(frozen=True)
class Words:
    """A passage as BM25 sees it: its words (with title and breadcrumb) and each sentence's words."""

    passage: list[str]
    sentences: list[list[str]]


class VectorStore(Protocol):
    """Passage and sentence vectors of one snapshot (inner product of normalised vectors = cosine)."""

    def nearest(self, qvec: np.ndarray, depth: int, scope: Scope | None = None) -> list[int]:
        """The passages whose own vector is closest to the question, best first."""
        ...

    def scores(self, qvec: np.ndarray, ids: Sequence[int], sentence: float) -> dict[int, float]:
        """Each given passage's cosine blended with its best sentence's: (1 - sentence) * own + sentence * best."""
        ...

    def closeness(self, qvec: np.ndarray, i: int) -> list[float]:
        """The cosine of each sentence of passage i, in order (none for a passage without sentence vectors)."""
        ...

    def background(self) -> np.ndarray:
        """A fixed, evenly spread sample of at most 1,024 passage vectors: the corpus as a whole."""
        ...

    def centroids(self, owner: np.ndarray, documents: int) -> np.ndarray:
        """Each document's mean passage vector, normalised; `owner[i]` is the document row of passage i."""
        ...


class LexicalStore(Protocol):
    """BM25 over the jieba words of one snapshot's passages and of their sentences."""

    def top(self, words: Terms, depth: int, sentence: float, scope: Scope | None = None) -> dict[int, float]:
        """The `depth` passages of highest blended score (own and best sentence's), only positive ones."""
        ...

    def scores(self, words: Terms, ids: Sequence[int], sentence: float) -> dict[int, float]:
        """The blended BM25 score of each given passage."""
        ...

    def idf(self, word: str) -> float: ...

    def known(self, word: str) -> bool:
        """Whether any passage holds the word."""
        ...


class Store(Protocol):
    """One engine: writes a snapshot's vectors and words, and opens them again for searching."""

    name: str
    # every snapshot it writes is wholly in its folder (no server): a build that has moved to another engine
    # reads its vectors back rather than embedding every passage again
    files_only: bool

    def write(
        self, folder: Path, dim: int, vectors: Sequence[Vectors], words: Sequence[Words], owners: Sequence[str]
    ) -> None:
        """Keep a new snapshot's passages (`owners[i]`: the doc_id of passage i). `folder` is the snapshot's
        folder while it is written, named `.tmp-<snapshot name>`; it is renamed into place after."""
        ...

    def open(self, folder: Path, owners: Sequence[str]) -> tuple[VectorStore, LexicalStore]:
        """A published snapshot's stores; any damage raises."""
        ...

    def vectors(self, folder: Path) -> list[Vectors]:
        """Every passage's vectors, in order (a build reuses those of unchanged passages)."""
        ...

    def publish(self, name: str) -> None:
        """The snapshot `name` is now the one served (after CURRENT names it)."""
        ...

    def discard(self, name: str) -> None:
        """Forget what the engine keeps outside the snapshot folder for a pruned snapshot."""
        ...


@runtime_checkable
class SegmentStore(Store, Protocol):
    """An engine that keeps a snapshot as a list of segments, so an update writes only what changed
    (snapshot/update.py): each segment is a folder it wrote with `write`, opened on its own, and a snapshot
    of several is their live rows joined into one numbering (segment by segment, live rows in order)."""

    def vectors(self, folder: Path, rows: Sequence[int] | None = None) -> list[Vectors]:
        """The vectors of every passage of a segment (or of the given rows), in order: an update keeps those
        of the passages it did not change, and a merge writes them again."""
        ...

    def join(
        self, parts: Sequence[tuple[VectorStore, LexicalStore]], lives: Sequence[np.ndarray]
    ) -> tuple[VectorStore, LexicalStore]:
        """One snapshot's stores over segments it opened (`open`), each answering for the rows its `lives`
        mask marks; BM25 scores with the statistics of all live passages, as one index over them would."""
        ...
