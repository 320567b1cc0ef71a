"""Updates that cost what changed, for large corpora kept by a store of segments (FAISS).

The new snapshot is the previous one's segments, hard-linked into its folder (nothing is copied), the
documents each of them no longer answers for (removed, or changed and written again), and one new segment
holding the passages of the documents added or changed. Only the files whose size or time moved since the
last build are read; only new passages are segmented and embedded; only the new segment and meta.json are
written. It is published like any snapshot (written aside, fsynced, renamed, then CURRENT), so a crash at
any point leaves the previous one whole and served.

Segments are merged when there are too many (all but the largest are written again as one) or when a
segment has lost too many of its passages (it is written again without them). A merge reads vectors and
words back from the segments: nothing is parsed, segmented or embedded again. Small merges happen in the
same build. A segment of more than MERGE_NOW live passages takes minutes to write again at a million
passages, so an update a user waits for (the service's, with `defer_over`) publishes its change without
merging it and reports `merge_pending`; the service then merges in a job of its own, which gives way to
users' updates between segments (`policyqa build` merges at once).

What a whole build does and this does not: the dictionary of domain words stays the previous snapshot's
(the new passages are segmented with it, as questions are), so a new document's own terms join it at the
next whole build (`policyqa build --force`, or a full rebuild from the API). BM25's statistics are those
of the live passages, exactly as one index over them would have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from policyqa.embed import Embedder
from policyqa.ingest.chunk import ChunkSettings, chunk_document
from policyqa.ingest.limits import Limits
from policyqa.ingest.metadata import extract
from policyqa.ingest.segment import Segmenter
from policyqa.models import Chunk
from policyqa.snapshot.index import (
    BARE,
    DOCUMENTS,
    DocInfo,
    Index,
    Part,
    _check_format,
    _check_sizes,
    _load_meta,
    _pointer,
    _read_chunks,
    check_meta,
    saved_identities,
    segments,
    snapshot_documents,
    store_of,
)
from policyqa.snapshot.pipeline import (
    ROWS,
    BuildReport,
    Progress,
    _embed,
    _words,
    file_stats,
    new_folder,
    parse_files,
    publish,
    text_entry,
    write_documents,
    write_part,
)
from policyqa.store.base import Store, Vectors, Words

DELTA_FROM = 20_000  # passages: below this a whole snapshot is written (seconds); from it, only what changed
MAX_SEGMENTS = 8  # more, and all but the largest are merged into one
MERGE_DELETED = 0.25  # a segment that no longer answers for this share of its passages is written again
MERGE_NOW = 10_000  # live passages: a segment larger than this is merged by a job of its own, not by an upload's


@dataclass(frozen=True)
class Segment:
    """One segment of the previous snapshot, as this update will keep it."""

    name: str
    folder: Path
    deleted: frozenset[str]
    spans: dict[str, tuple[int, int]]  # doc_id -> (first row, passages)
    chunk_ids: Callable[[str], list[str]]  # a document's chunk ids, in its rows' order

    @property
    def size(self) -> int:
        return sum(n for _, n in self.spans.values())

    @property
    def live(self) -> int:
        return self.size - sum(self.spans[d][1] for d in self.deleted if d in self.spans)

    def holds(self, doc_id: str) -> bool:
        return doc_id in self.spans and doc_id not in self.deleted

    def answers_for(self) -> list[str]:
        """The documents it holds passages of and has not deleted."""
        return [d for d in self.spans if d not in self.deleted]

    @classmethod
    def read(cls, name: str, folder: Path, deleted: frozenset[str], loaded: Part | None) -> Segment:
        """From the segment as the service has it loaded, or else from its rows.json (a million chunk ids for
        a large segment: parsing them was a tenth of an update)."""
        if loaded is not None:
            chunks, spans = loaded.chunks, loaded.spans()

            def ids(doc_id: str) -> list[str]:
                first, n = spans[doc_id]
                return [c.chunk_id for c in chunks[first : first + n]]

            return cls(name, folder, deleted, spans, ids)
        rows: dict[str, list[Any]] = json.loads((folder / ROWS).read_text(encoding="utf-8"))
        spans = {d: (int(first), len(chunk_ids)) for d, (first, chunk_ids) in rows.items()}
        return cls(name, folder, deleted, spans, lambda doc_id: list(rows[doc_id][1]))


def _current(
    index_dir: Path, embedder: Embedder, settings: ChunkSettings, store: Store, delta_from: int
) -> tuple[Path, dict[str, Any]] | None:
    """The snapshot being served when an update can extend it: whole, of this model, chunking and store,
    large enough, and written with what an update needs (file times, each segment's rows)."""
    name = _pointer(index_dir)[0]
    if name is None:
        return None
    folder = index_dir / "snapshots" / name
    try:
        meta = _load_meta(folder)
        _check_format(meta)
        _check_sizes(folder, meta)
        check_meta(meta, embedder.name, embedder.dim)
    except Exception:
        return None  # a whole build deals with it (repair, or the model's error)
    usable = meta.get("chunking") == settings.as_dict() and store_of(meta) == store.name and "stat" in meta
    usable = usable and int(meta.get("chunks", 0)) >= delta_from
    if not usable or not all((sub / ROWS).is_file() for _, sub, _ in segments(folder, meta)):
        return None
    return folder, meta


def update(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings,
    store: Store,
    limits: Limits | None,
    cache: dict[str, Vectors],
    progress: Progress | None,
    defer_over: int | None,
    delta_from: int | None,
    stats: dict[str, list[int]] | None = None,
    previous: Index | None = None,
) -> BuildReport | None:
    """Publish a snapshot that shares the served one's unchanged segments; None when it cannot be extended
    (too small, damaged, another model or chunking, or from before updates like this), for a whole build.
    `previous`: the snapshot a service has loaded; when it is the one being extended, its documents are
    taken from it rather than read again."""
    began = time.perf_counter()
    found = _current(index_dir, embedder, settings, store, DELTA_FROM if delta_from is None else delta_from)
    if found is None:
        return None
    folder, meta = found
    stats = file_stats(corpus) if stats is None else stats
    before: dict[str, list[int]] = meta["stat"]
    failed_before: dict[str, str] = meta.get("failed", {})
    if previous is not None and previous.folder.resolve() != folder.resolve():
        previous = None  # a snapshot other than the one being extended
    docs_before = previous.documents if previous is not None else snapshot_documents(folder, meta)
    by_id = {d.doc_id: d for d in docs_before.values()}
    gone = [s for s in docs_before if s not in stats]
    to_parse = []
    for source, seen in stats.items():
        if before.get(source) == seen:
            continue
        old = docs_before.get(source)
        if old is not None and source not in failed_before and _sha256(corpus / source) == old.sha256:
            continue  # touched, not changed
        to_parse.append(source)
    docs, failed_now = parse_files(corpus, to_parse, limits)
    failed = {s: m for s, m in failed_before.items() if s in stats and s not in to_parse} | failed_now

    loaded = previous.parts if previous is not None else {}
    parts = [Segment.read(name, sub, deleted, loaded.get(name)) for name, sub, deleted in segments(folder, meta)]
    chunked = {d.source: chunk_document(d, settings) for d in docs}
    old_vectors = _old_vectors(parts, [docs_before[d.source].doc_id for d in docs if d.source in docs_before], store)
    known = old_vectors.keys() | cache.keys()
    deferred = [
        d.source
        for d in docs
        if defer_over is not None and sum(c.chunk_id not in known for c in chunked[d.source]) > defer_over
    ]
    docs = [d for d in docs if d.source not in deferred]
    replaced = {docs_before[s].doc_id for s in gone} | {
        docs_before[d.source].doc_id for d in docs if d.source in docs_before
    }
    kept = [replace(p, deleted=p.deleted | {d for d in replaced if p.holds(d)}) for p in parts]
    kept = [p for p in kept if p.live]
    merged = _to_merge(kept, adding=any(chunked[d.source] for d in docs))
    # a job that must stay quick (defer_over: one a user waits for) leaves large rewrites to a job of their own
    later = [p for p in merged if defer_over is not None and p.live > MERGE_NOW]
    merged = [p for p in merged if p not in later]
    changed = bool(docs) or bool(gone) or failed != failed_before or bool(merged)
    errors = tuple(failed.values())
    if not changed:
        seconds = time.perf_counter() - began
        return BuildReport(
            folder.name,
            len(docs_before),
            int(meta["chunks"]),
            0,
            seconds,
            errors,
            False,
            (),
            tuple(deferred),
            bool(later),
        )

    new_chunks = [c for d in docs for c in chunked[d.source]]
    todo = list({c.chunk_id: c for c in new_chunks if c.chunk_id not in old_vectors}.values())
    fresh = [c for c in todo if c.chunk_id not in cache]
    _embed(embedder, fresh, progress, cache)
    vec_of = {**old_vectors, **{c.chunk_id: cache[c.chunk_id] for c in todo}}
    segmenter = Segmenter((folder / "dictionary.txt").read_text(encoding="utf-8").split())
    words = [_words(c, segmenter) for c in new_chunks]
    texts = [text_entry(d) for d in docs]

    saved: dict[str, dict[str, object]] = {}  # identities of the merged documents, read back
    kept = [p for p in kept if p not in merged]
    now = time.time()
    infos = [
        DocInfo(d.doc_id, d.source, d.sha256, d.size, len(chunked[d.source]), now, d.title, extract(d)) for d in docs
    ]
    for part in reversed(merged):  # merged passages go first, in their order
        if progress is not None:  # what was embedded, again: a merge job gives way to a user's update here
            progress(len(fresh), len(fresh))
        chunks, groups, part_words, part_texts = _contents(part, store)
        saved.update((d, i) for d, i in saved_identities(part.folder).items() if part.holds(d))  # not old versions
        new_chunks, words, texts = chunks + new_chunks, part_words + words, part_texts + texts
        infos = [by_id[d] for d in part.answers_for()] + infos
        vec_of.update(zip((c.chunk_id for c in chunks), groups, strict=True))
    indexed = {d.source for d in docs}
    documents = len((docs_before.keys() - set(gone)) | indexed)
    # documents without passages are in no segment: meta.json lists them
    bare = [d for s, d in docs_before.items() if not d.chunks and s not in gone and s not in indexed]
    bare += [i for i in infos if not i.chunks]
    stat = {s: v for s, v in stats.items() if s not in deferred} | {s: before[s] for s in deferred if s in before}
    tmp, name = new_folder(index_dir)
    try:
        (tmp / "segments").mkdir()
        listed = []
        for part in kept:
            _link(part.folder, tmp / "segments" / part.name, root=part.folder == folder)
            if not (part.folder / DOCUMENTS).is_file():  # written before segments kept their documents
                write_documents(tmp / "segments" / part.name, [by_id[d].as_dict() for d in part.answers_for()])
            listed.append({"name": part.name, "passages": part.size, "deleted": sorted(part.deleted)})
        if new_chunks:
            (tmp / "segments" / name).mkdir()
            groups = [vec_of[c.chunk_id] for c in new_chunks]
            part_folder = tmp / "segments" / name
            write_part(part_folder, new_chunks, groups, embedder.dim, words, texts, store, segmenter, saved)
            write_documents(part_folder, [i.as_dict() for i in infos if i.chunks])
            listed.append({"name": name, "passages": len(new_chunks), "deleted": []})
        os.link(folder / "dictionary.txt", tmp / "dictionary.txt")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    live = sum(p.live for p in kept) + len(new_chunks)
    meta = {
        **{k: v for k, v in meta.items() if k not in ("files", "documents")},  # documents: in the segments
        "chunks": live,
        "created": now,
        "errors": list(errors),
        "stat": stat,
        "failed": failed,
        "segments": listed,
        BARE: [d.as_dict() for d in sorted(bare, key=lambda d: d.source)],
    }
    publish(index_dir, tmp, name, meta, store)
    seconds = time.perf_counter() - began
    return BuildReport(name, documents, live, len(fresh), seconds, errors, True, (), tuple(deferred), bool(later))


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _old_vectors(parts: list[Segment], doc_ids: list[str], store: Store) -> dict[str, Vectors]:
    """The vectors of the passages the changed documents had, by chunk id: an edit keeps those of the
    passages it did not touch."""
    out: dict[str, Vectors] = {}
    for part in parts:
        rows: list[int] = []
        ids: list[str] = []
        for doc_id in doc_ids:
            if part.holds(doc_id):
                first, n = part.spans[doc_id]
                rows += range(first, first + n)
                ids += part.chunk_ids(doc_id)
        if rows:
            out.update(zip(ids, store.vectors(part.folder, rows), strict=True))  # type: ignore[call-arg]
    return out


def _to_merge(parts: list[Segment], adding: bool) -> list[Segment]:
    """The segments to write again (with the new one, when `adding` one): those that lost too many
    passages, and when there would be too many segments, all but the largest."""
    merge = [p for p in parts if p.live < (1 - MERGE_DELETED) * p.size]
    if len(parts) + adding > MAX_SEGMENTS:
        largest = max(parts, key=lambda p: p.live)
        merge = [p for p in parts if p is not largest or p in merge]
    return merge


def _contents(part: Segment, store: Store) -> tuple[list[Chunk], list[Vectors], list[Words], list[dict[str, Any]]]:
    """A segment's live passages with their vectors, words and documents' texts, to be written again."""
    chunks = _read_chunks(part.folder)
    keep = [i for i, c in enumerate(chunks) if c.doc_id not in part.deleted]
    with (part.folder / "words.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    words = [Words(rows[i][1], rows[i][2]) for i in keep]
    vectors = store.vectors(part.folder, keep)  # type: ignore[call-arg]
    offsets = json.loads((part.folder / "texts.offsets.json").read_text(encoding="utf-8"))
    texts = []
    with (part.folder / "texts.jsonl").open("rb") as fh:
        for doc_id, (at, size) in offsets.items():
            if doc_id not in part.deleted:
                fh.seek(at)
                texts.append(json.loads(fh.read(size)))
    return [chunks[i] for i in keep], vectors, words, texts


SNAPSHOT_FILES = {"meta.json", "dictionary.txt"}  # a snapshot's own files: not part of any segment


def _link(source: Path, target: Path, root: bool) -> None:
    """Hard-link a segment's files into the new snapshot (a whole snapshot's, less its own files, when the
    previous snapshot had no segments)."""
    target.mkdir()
    for path in source.iterdir():
        if path.is_file() and not (root and path.name in SNAPSHOT_FILES):
            os.link(path, target / path.name)
