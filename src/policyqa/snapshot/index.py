"""The served index: a published snapshot read back (passages, documents, words, and the store's vectors and
BM25), and where the snapshots are.

Layout of the index folder:
    CURRENT                 name of the snapshot being served (replaced atomically)
    snapshots/<name>/       meta.json, chunks.jsonl, words.jsonl (the BM25 words of each passage and its
                            sentences, reused while the dictionary stays the same), dictionary.txt,
                            rows.json (each document's passage rows), identities.json (what identity.py
                            reads of each document, so a load need not segment them again), centroids.npy
                            (each document's mean passage vector), texts.jsonl +
                            texts.offsets.json (each document's cleaned text and outline, for 查看原文), and
                            what the store keeps
                            there (store/faiss.py: the vectors and BM25 arrays; store/qdrant.py: a local
                            collection, or nothing when it is on a server)
A snapshot of a large corpus updated by a few documents is instead a list of segments (meta.json's
"segments"): segments/<segment>/ holds the per-passage files above for some documents and their rows
(documents.json), written once and hard-linked into every later snapshot that keeps it; meta.json names the
documents each segment no longer answers for, and lists no documents itself (an update writes the rows of
the documents it changed, not tens of thousands). A build (pipeline.py) writes a new snapshot folder,
fsyncs it, renames it into place and only then swaps CURRENT, so a crash at any point leaves the previous
snapshot whole and served.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from functools import cached_property
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.embed import SELECTORS, Embedder
from policyqa.errors import IndexMismatchError, IndexMissingError, ModelMismatchError, StoreError
from policyqa.ingest.identity import DocIdentity, Identities, describe
from policyqa.ingest.metadata import Metadata
from policyqa.ingest.segment import Segmenter
from policyqa.models import Chunk
from policyqa.store import default_store
from policyqa.store.base import LexicalStore, Store, VectorStore
from policyqa.store.faiss import mean_vectors

FORMAT_VERSION = 3
CENTROIDS = "centroids.npy"  # each document's mean passage vector, documents in the order of their passages
IDENTITIES = "identities.json"  # doc_id -> what identity.describe found (read back instead of segmenting again)
DOCUMENTS = "documents.json"  # a segment's documents (DocInfo rows); a snapshot of segments lists none itself
BARE = "bare"  # meta.json of a snapshot of segments: the rows of documents without passages (in no segment)
DEFAULT_STORE = "faiss"  # snapshots written before the store was recorded in meta.json


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    source: str
    sha256: str
    size: int
    chunks: int
    indexed_at: float
    title: str = ""
    metadata: Metadata = field(default_factory=Metadata)  # read at ingestion (metadata.extract)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocInfo:
        """From meta.json; snapshots written before metadata existed read as having none."""
        return cls(**{**data, "metadata": Metadata.from_dict(data.get("metadata"))})

    def as_dict(self) -> dict[str, Any]:
        # by hand, as Metadata.as_dict: every document's row is written when a large index is first updated
        return {**{f: getattr(self, f) for f in self.__dataclass_fields__}, "metadata": self.metadata.as_dict()}

    def row(self) -> dict[str, Any]:
        """The document as the API and `policyqa documents --json` list it (indexed_at in UTC, ISO 8601)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.indexed_at))
        return {**self.as_dict(), "indexed_at": when}


def document_rows(chunks: list[Chunk]) -> tuple[list[str], np.ndarray]:
    """The documents of these passages in the order of their first passage, and each passage's document
    number among them."""
    ids = list(dict.fromkeys(c.doc_id for c in chunks))
    row = {d: n for n, d in enumerate(ids)}
    return ids, np.array([row[c.doc_id] for c in chunks], np.int64)


def read_documents(folder: Path) -> list[DocInfo]:
    """A segment's documents.json: those whose passages it holds (deleted ones too)."""
    return [DocInfo.from_dict(d) for d in json.loads((folder / DOCUMENTS).read_text(encoding="utf-8"))]


def snapshot_documents(folder: Path, meta: dict[str, Any]) -> dict[str, DocInfo]:
    """A snapshot's documents by source: meta.json's list, or (a snapshot of segments) each segment's
    documents that it still answers for, and those without passages."""
    if _lists_documents(meta):
        return {d["source"]: DocInfo.from_dict(d) for d in meta.get("documents", [])}
    return _live_documents(((deleted, read_documents(sub)) for _, sub, deleted in segments(folder, meta)), meta)


def _lists_documents(meta: dict[str, Any]) -> bool:
    """Whether meta.json lists the snapshot's documents: a whole snapshot, or one of segments written before
    segments kept their own."""
    return "documents" in meta or "segments" not in meta


def _live_documents(parts: Iterable[tuple[frozenset[str], list[DocInfo]]], meta: dict[str, Any]) -> dict[str, DocInfo]:
    """A segment answers for the documents of its passages that it has not deleted (a document without
    passages is in no segment: meta.json's "bare" lists them)."""
    found = {
        info.source: info for deleted, docs in parts for info in docs if info.chunks and info.doc_id not in deleted
    }
    found.update((d["source"], DocInfo.from_dict(d)) for d in meta.get(BARE, []))
    return dict(sorted(found.items()))


def saved_identities(folder: Path) -> dict[str, dict[str, object]]:
    """A snapshot's or segment's identities.json ({} when it has none: a snapshot from before, described
    again)."""
    try:
        found: dict[str, dict[str, object]] = json.loads((folder / IDENTITIES).read_text(encoding="utf-8"))
        return found
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Part:
    """One segment of a snapshot as loaded: every row's passage (deleted ones too) and the store's view of
    all rows (a later snapshot keeping the segment reuses it instead of reading it again), with what is
    worked out from them once: each document's identity and centroid."""

    chunks: list[Chunk]
    vectors: Any  # FaissVectors
    lexical: Any  # ArrayLexical
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
                saved = mean_vectors(self.vectors.vectors, owner, len(ids))
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
        _ = self.identities, self.centroids
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


_SNAPSHOT_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,80}")


def _pointer(index_dir: Path) -> tuple[str | None, str | None]:
    """The snapshot name in CURRENT, or why there is none that can be trusted."""
    pointer = index_dir / "CURRENT"
    if not pointer.is_file():
        return None, None
    try:
        name = pointer.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"CURRENT is unreadable ({type(exc).__name__})"
    if not _SNAPSHOT_NAME.fullmatch(name):
        return None, f"CURRENT does not hold a snapshot name ({name[:40]!r})"
    return name, None


def current_snapshot(index_dir: Path) -> Path | None:
    name, _ = _pointer(index_dir)
    if name is None:
        return None
    folder = index_dir / "snapshots" / name
    return folder if (folder / "meta.json").is_file() else None


def candidates(index_dir: Path) -> tuple[list[Path], list[str]]:
    """Snapshot folders to try, best first: CURRENT's, then the others newest first (names sort by time);
    and what is wrong with CURRENT when it cannot be followed."""
    name, problem = _pointer(index_dir)
    folder = index_dir / "snapshots"
    others = (
        sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
        if (folder.is_dir())
        else []
    )
    notes = [problem] if problem else []
    first = [folder / name] if name and (folder / name).is_dir() else []
    if name and not first:
        notes.append(f"CURRENT names snapshot {name}, which is not on disk")
    return first + [p for p in others if not first or p != first[0]], notes


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
            return folder.name, list(snapshot_documents(folder, _read_meta(folder)).values())
        except (IndexMismatchError, TypeError, KeyError, OSError, ValueError):
            continue
    raise IndexMissingError(f"no index in {index_dir}; build it with `policyqa build`")


def listing(snapshot: str | None, docs: Iterable[DocInfo]) -> dict[str, Any]:
    """The documents as JSON, by source: what GET /api/documents and `policyqa documents --json` print."""
    return {"documents": [d.row() for d in sorted(docs, key=lambda d: d.source)], "snapshot": snapshot}


def _load_meta(folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("meta.json does not hold an object")
    return meta


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        return _load_meta(folder)
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"index at {folder} is unreadable; rebuild it with `policyqa build`") from exc


def check_meta(meta: dict[str, Any], model: str, dim: int) -> None:
    """Refuse an index that this code or this model would answer wrongly from."""
    _check_format(meta)
    if meta.get("model") != model or meta.get("dim") != dim:
        raise ModelMismatchError(
            f"index was built with model {meta.get('model')!r} ({meta.get('dim')}-d) but {model!r} ({dim}-d) "
            "is configured; rebuild it for the new model with `policyqa build --rebuild-for-model`, "
            f"or set POLICYQA_MODEL={SELECTORS.get(str(meta.get('model')), meta.get('model'))} to use the index's model"
        )


_CHUNK_FIELDS = frozenset(f.name for f in fields(Chunk))


def _read_chunks(folder: Path) -> list[Chunk]:
    """A snapshot's passages. This is most of a cold start at a million passages, so each line is parsed by
    orjson and its dict becomes the frozen Chunk's attributes as it is, without the dataclass's __init__
    (one object.__setattr__ per field): 2.1 times faster than json and Chunk(**row). A line with other
    fields than a Chunk's is damage, as Chunk(**row) would have found."""
    import orjson

    new, loads, out = object.__new__, orjson.loads, []
    with (folder / "chunks.jsonl").open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = loads(line)
            if not isinstance(row, dict) or row.keys() != _CHUNK_FIELDS:
                raise ValueError(f"chunks.jsonl in {folder} holds a line that is not a passage")
            chunk = new(Chunk)
            chunk.__dict__.update(row)
            out.append(chunk)
    return out


def _check_format(meta: dict[str, Any]) -> None:
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {meta.get('format_version')} is not the supported format {FORMAT_VERSION}; "
            "rebuild it with `policyqa build`"
        )


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
            damage.append(f"snapshot {folder.name} is damaged ({_why(exc)})")
            continue
        index.damage = tuple(damage)
        return index
    if mismatch is not None and not damage:
        raise mismatch
    raise _missing(index_dir, damage)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__


def _check_sizes(folder: Path, meta: dict[str, Any]) -> None:
    """Every file as long as when it was written (meta.json lists them): finds truncation anywhere."""
    for name, size in (meta.get("files") or {}).items():
        actual = (folder / name).stat().st_size
        if actual != size:
            raise ValueError(f"{name} is {actual} bytes, {size} were written")


def store_of(meta: dict[str, Any]) -> str:
    """The engine that keeps a snapshot's vectors and BM25."""
    return str(meta.get("store") or DEFAULT_STORE)


def read_snapshot(folder: Path, store: Store | None = None, previous: Index | None = None) -> Index:
    """One snapshot folder, read whole; any damage raises (IndexMismatchError only for another format or
    another store). Segments that `previous` (a snapshot loaded before) has loaded are reused, not read."""
    meta = _load_meta(folder)
    _check_format(meta)  # files of another format may not be there to read
    store = store or default_store()
    if store_of(meta) != store.name:
        raise IndexMismatchError(
            f"index at {folder} was built for the {store_of(meta)} store, not {store.name} (POLICYQA_STORE); "
            "build it again with `policyqa build`"
        )
    _check_sizes(folder, meta)
    words = (folder / "dictionary.txt").read_text(encoding="utf-8").split()
    documents = _documents(meta, previous) if _lists_documents(meta) else None
    if "segments" not in meta:
        chunks = _read_chunks(folder)
        if meta.get("chunks", len(chunks)) != len(chunks):
            raise ValueError(f"{len(chunks)} passages, {meta.get('chunks')} in meta.json")
        cached = previous.parts.get(folder.name) if previous is not None else None
        if cached is not None:
            vectors, lexical = cached.vectors, cached.lexical
        else:
            vectors, lexical = store.open(folder, [c.doc_id for c in chunks])
        whole = Index(folder, meta, chunks, vectors, lexical, Segmenter(words), documents or {})
        if getattr(store, "segmented", False):  # the first update links this folder as a segment: keep it loaded
            known = {"documents": list(whole.documents.values())}
            whole.parts = {folder.name: cached or Part(chunks, vectors, lexical, known, folder)}
        return whole
    return _read_segments(folder, meta, store, Segmenter(words), documents, previous)


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


def segments(folder: Path, meta: dict[str, Any]) -> list[tuple[str, Path, frozenset[str]]]:
    """A snapshot's segments: name, folder and the doc_ids it no longer answers for (a snapshot without
    segments is one, in its own folder)."""
    if "segments" not in meta:
        return [(folder.name, folder, frozenset())]
    return [(s["name"], folder / "segments" / s["name"], frozenset(s["deleted"])) for s in meta["segments"]]


def _read_segments(
    folder: Path,
    meta: dict[str, Any],
    store: Store,
    segmenter: Segmenter,
    documents: dict[str, DocInfo] | None,
    previous: Index | None,
) -> Index:
    """A snapshot of segments; its documents are its segments' (`documents` None) or meta.json's (a snapshot
    written before segments kept their own)."""
    from policyqa.store.segments import JoinedLexical, JoinedVectors, Numbering

    parts: dict[str, Part] = {}
    lives: list[np.ndarray] = []
    for name, sub, deleted in segments(folder, meta):
        part = previous.parts.get(name) if previous is not None else None
        if part is None:
            rows = _read_chunks(sub)
            vectors, lexical = store.open(sub, [c.doc_id for c in rows])
            part = Part(rows, vectors, lexical, folder=sub)
        parts[name] = part
        lives.append(part.live(deleted))
    chunks = [c for part, live in zip(parts.values(), lives, strict=True) for c in compress(part.chunks, live)]
    if meta.get("chunks", len(chunks)) != len(chunks):
        raise ValueError(f"{len(chunks)} live passages, {meta.get('chunks')} in meta.json")
    if documents is None:
        documents = _live_documents(((d, parts[n].documents(sub)) for n, sub, d in segments(folder, meta)), meta)
    numbering = Numbering(lives)
    masks = [None if live.all() else live for live in lives]
    vector_parts = [p.vectors.with_live(m) for p, m in zip(parts.values(), masks, strict=True)]
    lexical_parts = [p.lexical.with_live(m) for p, m in zip(parts.values(), masks, strict=True)]
    joined = Index(
        folder,
        meta,
        chunks,
        JoinedVectors(vector_parts, numbering),
        JoinedLexical(lexical_parts, numbering),
        segmenter,
        documents,
    )
    joined.parts = parts
    return joined


def read_text(folder: Path, doc_id: str, meta: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """One document's entry in a snapshot's texts.jsonl (None: not there, or a snapshot from before); in a
    snapshot of segments, in the segment that answers for the document."""
    try:
        meta = meta if meta is not None else _load_meta(folder)
    except (OSError, ValueError):
        return None
    for _, sub, deleted in reversed(segments(folder, meta)):
        if doc_id in deleted:
            continue
        try:
            offsets = json.loads((sub / "texts.offsets.json").read_text(encoding="utf-8"))
            if doc_id not in offsets:
                continue
            at, size = offsets[doc_id]
            with (sub / "texts.jsonl").open("rb") as fh:
                fh.seek(at)
                entry: dict[str, Any] = json.loads(fh.read(size))
            return entry
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None
