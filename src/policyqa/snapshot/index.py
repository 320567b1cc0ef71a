"""The served index: a published snapshot read back (passages, documents, words, and the store's vectors and
BM25), whole or segment by segment (layout.py says where each file is)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.embed import Embedder
from policyqa.errors import IndexMismatchError, IndexMissingError, StoreError
from policyqa.ingest.identity import DocIdentity, Identities, describe
from policyqa.ingest.segment import Segmenter
from policyqa.models import Chunk
from policyqa.snapshot.documents import (
    DocInfo,
    document_rows,
    lists_documents,
    live_documents,
    read_documents,
    snapshot_documents,
)
from policyqa.snapshot.layout import (
    CENTROIDS,
    candidates,
    check_format,
    check_meta,
    check_sizes,
    damaged,
    load_meta,
    read_chunks,
    read_dictionary,
    read_meta,
    read_text,
    saved_identities,
    segments,
    store_of,
)
from policyqa.snapshot.questions import KnownQuestions, read_questions
from policyqa.snapshot.versions import Versions
from policyqa.store import default_store
from policyqa.store.base import LexicalStore, SegmentStore, Store, VectorStore


@dataclass(frozen=True)
class Part:
    """One segment of a snapshot as loaded: every row's passage (deleted ones too) and the store's view of
    all rows (a later snapshot keeping the segment reuses it instead of reading it again), with what is
    worked out from them once: each document's identity and centroid."""

    chunks: list[Chunk]
    vectors: VectorStore  # as its SegmentStore opened it: every row
    lexical: LexicalStore
    known: dict[str, Any] = field(default_factory=dict)  # "identities", "centroids": worked out when first asked
    folder: Path | None = None  # where its files are

    def identities(self, segmenter: Segmenter) -> dict[str, DocIdentity]:
        """Read back from the segment's identities.json when it has one (written with the same dictionary)."""
        if "identities" not in self.known:
            saved = saved_identities(self.folder) if self.folder is not None else {}
            self.known["identities"] = describe(self.chunks, segmenter, saved)
        found: dict[str, DocIdentity] = self.known["identities"]
        return found

    def owners(self) -> tuple[list[str], np.ndarray]:
        """Its documents in the order of their passages, and the document number of each row (worked out once:
        a loop over every passage, and a large segment is kept by every later snapshot)."""
        if "owners" not in self.known:
            self.known["owners"] = document_rows(self.chunks)
        found: tuple[list[str], np.ndarray] = self.known["owners"]
        return found

    def spans(self) -> dict[str, tuple[int, int]]:
        """Each document's first row and number of passages (a document's rows are consecutive)."""
        if "spans" not in self.known:
            ids, owner = self.owners()
            firsts = np.flatnonzero(np.diff(owner, prepend=-1))
            counts = np.diff(np.append(firsts, len(owner)))
            self.known["spans"] = {ids[owner[f]]: (int(f), int(n)) for f, n in zip(firsts, counts, strict=True)}
        found: dict[str, tuple[int, int]] = self.known["spans"]
        return found

    def live(self, deleted: frozenset[str]) -> np.ndarray:
        """Which rows still answer: those of documents not in `deleted`."""
        ids, owner = self.owners()
        gone = [n for n, d in enumerate(ids) if d in deleted]
        return ~np.isin(owner, gone) if gone else np.ones(len(owner), bool)

    def documents(self, folder: Path) -> list[DocInfo]:
        """Its documents, deleted ones too (read once from the documents.json in `folder`, where the snapshot
        being read keeps the segment)."""
        if "documents" not in self.known:
            self.known["documents"] = read_documents(folder)
        found: list[DocInfo] = self.known["documents"]
        return found

    def counts(self, segmenter: Segmenter) -> Counter[str]:
        """How many of its documents each identity word names."""
        if "counts" not in self.known:
            self.known["counts"] = Counter(w for i in self.identities(segmenter).values() for w in i.words)
        found: Counter[str] = self.known["counts"]
        return found

    def centroids(self) -> dict[str, np.ndarray]:
        """Each document's mean passage vector, normalised."""
        if "centroids" not in self.known:
            ids, owner = self.owners()
            saved = None
            if self.folder is not None and (self.folder / CENTROIDS).is_file():
                saved = np.load(self.folder / CENTROIDS)
            if saved is None or len(saved) != len(ids):  # a snapshot from before: worked out again
                saved = self.vectors.centroids(owner, len(ids))
            self.known["centroids"] = dict(zip(ids, saved, strict=True))
        found: dict[str, np.ndarray] = self.known["centroids"]
        return found


@dataclass
class Index:
    """A loaded snapshot: everything a search needs, the vectors and BM25 behind the store's protocols."""

    folder: Path
    meta: dict[str, Any]
    chunks: list[Chunk]
    vectors: VectorStore
    lexical: LexicalStore
    segmenter: Segmenter
    documents: dict[str, DocInfo] = field(default_factory=dict)
    damage: tuple[str, ...] = ()  # newer snapshots that failed to load, each with why (this one was next)
    parts: dict[str, Part] = field(default_factory=dict)  # segment name -> loaded segment

    @property
    def name(self) -> str:
        return self.folder.name

    def text(self, doc_id: str) -> dict[str, Any] | None:
        """A document's cleaned text and outline, as this snapshot indexed it."""
        return read_text(self.folder, doc_id, self.meta)

    def warm(self) -> Index:
        """Work out what searches share before the first one needs it (a service does this before it swaps
        the snapshot in, so no search waits for it)."""
        _ = self.identities, self.centroids, self.known, self.version_rows
        return self

    @cached_property
    def by_id(self) -> dict[str, DocInfo]:
        return {d.doc_id: d for d in self.documents.values()}

    @cached_property
    def identities(self) -> Identities:
        """What each document is, as questions name it (built once per loaded snapshot; a segment shared
        with the snapshot served before keeps what was worked out for its documents)."""
        if not self.parts:
            return Identities.build(self.chunks, self.segmenter)
        docs: dict[str, DocIdentity] = {}
        counts: Counter[str] = Counter()
        for name, _, deleted in segments(self.folder, self.meta):  # each segment's counts, less its deleted
            part = self.parts[name]
            found = part.identities(self.segmenter)
            counts.update(part.counts(self.segmenter))
            counts.subtract(w for d in deleted if d in found for w in found[d].words)
            docs.update((d, found[d]) for d in part.owners()[0] if d not in deleted)
        return Identities.of(docs, counts)

    @cached_property
    def versions(self) -> Versions:
        """Which documents replace which (snapshot/versions.py), worked out once per loaded snapshot."""
        return Versions.of(self.documents.values())

    @cached_property
    def version_rows(self) -> dict[str, list[int]]:
        """The passages (rows) of each document that has another version, in reading order."""
        linked = self.versions.linked
        out: dict[str, list[int]] = {}
        if linked:
            for i, c in enumerate(self.chunks):
                if c.doc_id in linked:
                    out.setdefault(c.doc_id, []).append(i)
        return out

    @cached_property
    def known(self) -> KnownQuestions:
        """The known questions attached to its passages (none for a snapshot written before them)."""
        return KnownQuestions.of(read_questions(self.folder), self.chunks, self.segmenter)

    @cached_property
    def centroids(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each document's mean passage vector (normalised): doc ids, their vectors, and the row of every
        passage's document."""
        if not self.parts:
            ids, owner = document_rows(self.chunks)
            return ids, self.vectors.centroids(owner, len(ids)), owner
        ids, owners, vectors = [], [], []
        for name, _, deleted in segments(self.folder, self.meta):  # live documents, segment by segment
            part = self.parts[name]
            part_ids, owner = part.owners()
            kept = np.fromiter((d not in deleted for d in part_ids), bool, count=len(part_ids))
            number = np.cumsum(kept) - 1 + len(ids)  # a kept document's number among all live ones
            owners.append(number[owner[part.live(deleted)]])
            centroids = part.centroids()
            live_ids = list(compress(part_ids, kept))
            ids += live_ids
            vectors += [centroids[d] for d in live_ids]
        dim = int(self.meta.get("dim", 0))
        owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        return ids, np.array(vectors, np.float32).reshape(len(ids), dim), owner.astype(np.int64)


# --- reading ------------------------------------------------------------------------------------


def require(index_dir: Path) -> None:
    """Raise IndexMissingError when there is no snapshot to try at all (reads CURRENT, nothing more): a command
    can say so before it loads the model. What read() finds damaged is still found by read()."""
    folders, notes = candidates(index_dir)
    if not folders:
        raise _missing(index_dir, notes)


def _missing(index_dir: Path, notes: list[str]) -> IndexMissingError:
    """No snapshot of `index_dir` can be served; `notes` say what was passed over and why."""
    detail = f" ({'; '.join(notes)})" if notes else ""
    return IndexMissingError(f"no whole index in {index_dir}{detail}; build it with `policyqa build`")


def documents(index_dir: Path) -> list[DocInfo]:
    """The documents of the snapshot being served, read from its meta.json (no model needed)."""
    return catalogue(index_dir)[1]


def catalogue(index_dir: Path) -> tuple[str, list[DocInfo]]:
    """The name of the snapshot being served and its documents, from its meta.json (no model, no store)."""
    folders, _ = candidates(index_dir)
    for folder in folders:
        try:
            return folder.name, list(snapshot_documents(folder, read_meta(folder)).values())
        except (IndexMismatchError, TypeError, KeyError, OSError, ValueError):
            continue
    raise IndexMissingError(f"no index in {index_dir}; build it with `policyqa build`")


def load(index_dir: Path, embedder: Embedder, store: Store | None = None, previous: Index | None = None) -> Index:
    """The snapshot to serve, checked against the embedder that will search it."""
    index = read(index_dir, store, previous)
    check_meta(index.meta, embedder.name, embedder.dim)
    return index


def read(index_dir: Path, store: Store | None = None, previous: Index | None = None) -> Index:
    """The newest snapshot that loads whole, unchecked against the model (the caller checks `meta` once the
    model is known: lets the service read the index while the model loads). CURRENT's snapshot comes first;
    when it is damaged the next whole one is returned, with `damage` saying what was passed over and why."""
    folders, damage = candidates(index_dir)
    mismatch: IndexMismatchError | None = None
    for folder in folders:
        try:
            index = read_snapshot(folder, store or default_store(), previous)
        except IndexMismatchError as exc:  # another format: not damage, but nothing this code can serve
            mismatch = mismatch or exc
            continue
        except StoreError:  # the store is down, not the snapshot damaged: the caller retries later
            raise
        except Exception as exc:
            damage.append(damaged(folder, exc))
            continue
        index.damage = tuple(damage)
        return index
    if mismatch is not None and not damage:
        raise mismatch
    raise _missing(index_dir, damage)


def read_snapshot(folder: Path, store: Store | None = None, previous: Index | None = None) -> Index:
    """One snapshot folder, read whole; any damage raises (IndexMismatchError only for another format or
    another store). Segments that `previous` (a snapshot loaded before) has loaded are reused, not read."""
    meta = load_meta(folder)
    check_format(meta)  # files of another format may not be there to read
    store = store or default_store()
    if store_of(meta) != store.name:
        raise IndexMismatchError(
            f"index at {folder} was built for the {store_of(meta)} store, not {store.name} (POLICYQA_STORE); "
            "build it again with `policyqa build`"
        )
    check_sizes(folder, meta)
    segmenter = Segmenter(read_dictionary(folder))
    documents = _documents(meta, previous) if lists_documents(meta) else None
    if "segments" not in meta:
        return _read_whole(folder, meta, store, segmenter, documents or {}, previous)
    if not isinstance(store, SegmentStore):
        raise ValueError(f"a snapshot of segments, and the {store.name} store keeps none")
    return _read_segments(folder, meta, store, segmenter, documents, previous)


def _read_whole(
    folder: Path,
    meta: dict[str, Any],
    store: Store,
    segmenter: Segmenter,
    documents: dict[str, DocInfo],
    previous: Index | None,
) -> Index:
    """A snapshot without segments. A store of segments keeps it as one too: the first update links this
    folder as a segment, and the service keeps it loaded."""
    chunks = read_chunks(folder)
    if meta.get("chunks", len(chunks)) != len(chunks):
        raise ValueError(f"{len(chunks)} passages, {meta.get('chunks')} in meta.json")
    cached = previous.parts.get(folder.name) if previous is not None else None
    if cached is not None:
        vectors, lexical = cached.vectors, cached.lexical
    else:
        vectors, lexical = store.open(folder, [c.doc_id for c in chunks])
    whole = Index(folder, meta, chunks, vectors, lexical, segmenter, documents)
    if isinstance(store, SegmentStore):
        known = {"documents": list(whole.documents.values())}
        whole.parts = {folder.name: cached or Part(chunks, vectors, lexical, known, folder)}
    return whole


def _documents(meta: dict[str, Any], previous: Index | None) -> dict[str, DocInfo]:
    """The snapshot's documents by source; one whose row is as in the snapshot loaded before keeps the
    object made then (tens of thousands of documents take seconds to make again after every update)."""
    before: dict[str, tuple[dict[str, Any], DocInfo]] = {}
    if previous is not None:
        made = previous.documents
        before = {
            d["source"]: (d, made[d["source"]]) for d in previous.meta.get("documents", []) if d["source"] in made
        }
    out = {}
    for row in meta.get("documents", []):
        kept = before.get(row["source"])
        out[row["source"]] = kept[1] if kept is not None and kept[0] == row else DocInfo.from_dict(row)
    return out


def _read_segments(
    folder: Path,
    meta: dict[str, Any],
    store: SegmentStore,
    segmenter: Segmenter,
    documents: dict[str, DocInfo] | None,
    previous: Index | None,
) -> Index:
    """A snapshot of segments; its documents are its segments' (`documents` None) or meta.json's (a snapshot
    written before segments kept their own)."""
    parts: dict[str, Part] = {}
    lives: list[np.ndarray] = []
    for name, sub, deleted in segments(folder, meta):
        part = previous.parts.get(name) if previous is not None else None
        if part is None:
            rows = read_chunks(sub)
            vectors, lexical = store.open(sub, [c.doc_id for c in rows])
            part = Part(rows, vectors, lexical, folder=sub)
        parts[name] = part
        lives.append(part.live(deleted))
    chunks = [c for part, live in zip(parts.values(), lives, strict=True) for c in compress(part.chunks, live)]
    if meta.get("chunks", len(chunks)) != len(chunks):
        raise ValueError(f"{len(chunks)} live passages, {meta.get('chunks')} in meta.json")
    if documents is None:
        documents = live_documents(((d, parts[n].documents(sub)) for n, sub, d in segments(folder, meta)), meta)
    vectors, lexical = store.join([(p.vectors, p.lexical) for p in parts.values()], lives)
    joined = Index(folder, meta, chunks, vectors, lexical, segmenter, documents)
    joined.parts = parts
    return joined
