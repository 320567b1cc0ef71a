"""Updates that cost what changed, for large corpora kept by a store of segments (base.SegmentStore: FAISS).

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
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from policyqa.errors import DocumentError
from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import chunk_document
from policyqa.ingest.segment import Segmenter
from policyqa.models import Chunk, Document
from policyqa.snapshot.documents import DocInfo, snapshot_documents, write_documents
from policyqa.snapshot.index import Index, Part
from policyqa.snapshot.layout import (
    BARE,
    DOCUMENTS,
    ROWS,
    check_format,
    check_meta,
    check_sizes,
    link_dictionary,
    link_segment,
    load_meta,
    new_folder,
    pointer,
    publish,
    read_chunks,
    read_dictionary,
    read_rows,
    read_texts,
    saved_identities,
    segments,
    store_of,
    word_rows,
)
from policyqa.snapshot.questions import state as questions_state
from policyqa.snapshot.steps import (
    BuildReport,
    Inputs,
    doc_info,
    embed_new,
    file_stats,
    known_questions,
    left_for_later,
    parse_files,
    passage_words,
    text_entry,
    write_part,
)
from policyqa.store.base import SegmentStore, Vectors, Words

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
        rows = read_rows(folder)
        spans = {d: (int(first), len(chunk_ids)) for d, (first, chunk_ids) in rows.items()}
        return cls(name, folder, deleted, spans, lambda doc_id: list(rows[doc_id][1]))


@dataclass(frozen=True)
class Changes:
    """What moved in the corpus since the snapshot being extended: the documents parsed again (changed or
    new) with their passages, the sources gone, why each file fails now, and the snapshot's documents."""

    docs: list[Document]
    chunked: dict[str, list[Chunk]]
    gone: list[str]
    failed: dict[str, str]
    before: dict[str, DocInfo]  # the extended snapshot's documents by source

    def replaced(self, docs: list[Document]) -> set[str]:
        """The doc_ids whose passages the old segments no longer answer for, when `docs` are written again."""
        again = [d.source for d in docs if d.source in self.before]
        return {self.before[s].doc_id for s in [*self.gone, *again]}


@dataclass(frozen=True)
class NewSegment:
    """What the update writes as its one new segment: the passages of the documents added or changed, after
    those of the segments merged into it, with their vectors, words, texts, documents' rows and identities."""

    chunks: list[Chunk]
    vectors: dict[str, Vectors]  # by chunk id
    words: list[Words]
    texts: list[dict[str, Any]]
    infos: list[DocInfo]
    identities: dict[str, dict[str, object]]  # of the merged documents, read back

    @classmethod
    def of(
        cls, docs: list[Document], change: Changes, vectors: dict[str, Vectors], segmenter: Segmenter, now: float
    ) -> NewSegment:
        """The passages of the documents added or changed, segmented with the snapshot's dictionary."""
        chunks = [c for d in docs for c in change.chunked[d.source]]
        words = [passage_words(c, segmenter) for c in chunks]
        infos = [doc_info(d, len(change.chunked[d.source]), now) for d in docs]
        return cls(chunks, vectors, words, [text_entry(d) for d in docs], infos, {})


def update(
    inputs: Inputs, delta_from: int | None, stats: dict[str, list[int]] | None, previous: Index | None
) -> BuildReport | None:
    """Publish a snapshot that shares the served one's unchanged segments; None when it cannot be extended
    (a store without segments, too small, damaged, another model or chunking, or from before updates like
    this), for a whole build. `previous`: the snapshot a service has loaded; when it is the one being
    extended, its documents are taken from it rather than read again. The caller holds the build lock."""
    store = inputs.store
    if not isinstance(store, SegmentStore):
        return None
    found = _current(inputs, DELTA_FROM if delta_from is None else delta_from)
    if found is None:
        return None
    folder, meta = found
    stats = file_stats(inputs.corpus) if stats is None else stats
    if previous is not None and previous.folder.resolve() != folder.resolve():
        previous = None  # a snapshot other than the one being extended
    change = _changes(inputs, folder, meta, stats, previous)
    loaded = previous.parts if previous is not None else {}
    parts = [Segment.read(name, sub, deleted, loaded.get(name)) for name, sub, deleted in segments(folder, meta)]
    edited = [change.before[d.source].doc_id for d in change.docs if d.source in change.before]
    reused = _old_vectors(parts, edited, store)
    deferred = left_for_later(change.docs, change.chunked, reused.keys() | inputs.cache.keys(), inputs.defer_over)
    docs = [d for d in change.docs if d.source not in deferred]
    kept, merged, later = _keep(parts, change.replaced(docs), any(change.chunked[d.source] for d in docs), inputs)
    errors = tuple(change.failed.values())
    asked = meta.get("questions") != questions_state(inputs.corpus)  # the bank changed (operators' questions)
    if not (docs or change.gone or change.failed != meta.get("failed", {}) or merged or asked):
        seconds = time.perf_counter() - inputs.began
        return BuildReport(
            folder.name, len(change.before), int(meta["chunks"]), 0, seconds, errors, False, (), tuple(deferred), later
        )
    new_chunks = [c for d in docs for c in change.chunked[d.source]]
    embedded = embed_new(inputs, new_chunks, reused)
    segmenter = Segmenter(read_dictionary(folder))
    now = time.time()
    new = NewSegment.of(docs, change, embedded.vectors, segmenter, now)
    by_id = {d.doc_id: d for d in change.before.values()}
    for part in reversed(merged):  # merged passages go first, in their order
        if inputs.progress is not None:  # what was embedded, again: a merge job gives way to a user's update here
            inputs.progress(embedded.fresh, embedded.fresh)
        new = _merge(new, part, store, by_id)
    with new_folder(inputs.index_dir, store) as (tmp, name):
        listed = _write(tmp, name, folder, kept, new, by_id, inputs, segmenter)
        meta = _meta(meta, change, docs, deferred, stats, kept, new, listed, now)
        known_questions(inputs)(tmp, meta)
    publish(inputs.index_dir, tmp, name, meta, store)
    documents = len((change.before.keys() - set(change.gone)) | {d.source for d in docs})
    seconds = time.perf_counter() - inputs.began
    return BuildReport(
        name, documents, meta["chunks"], embedded.fresh, seconds, errors, True, (), tuple(deferred), later
    )


def _current(inputs: Inputs, delta_from: int) -> tuple[Path, dict[str, Any]] | None:
    """The snapshot being served when an update can extend it: whole, of this model, chunking and store,
    large enough, and written with what an update needs (file times, each segment's rows)."""
    name = pointer(inputs.index_dir)[0]
    if name is None:
        return None
    folder = inputs.index_dir / "snapshots" / name
    try:
        meta = load_meta(folder)
        check_format(meta)
        check_sizes(folder, meta)
        check_meta(meta, inputs.embedder.name, inputs.embedder.dim)
    except Exception:
        return None  # a whole build deals with it (repair, or the model's error)
    usable = meta.get("chunking") == inputs.settings.as_dict() and store_of(meta) == inputs.store.name
    usable = usable and "stat" in meta and int(meta.get("chunks", 0)) >= delta_from
    if not usable or not all((sub / ROWS).is_file() for _, sub, _ in segments(folder, meta)):
        return None
    return folder, meta


def _changes(
    inputs: Inputs, folder: Path, meta: dict[str, Any], stats: dict[str, list[int]], previous: Index | None
) -> Changes:
    """Parse the files whose size or time moved since the snapshot was written (and whose bytes did)."""
    seen: dict[str, list[int]] = meta["stat"]
    failed_before: dict[str, str] = meta.get("failed", {})
    before = previous.documents if previous is not None else snapshot_documents(folder, meta)
    to_parse = []
    for source, stat in stats.items():
        if seen.get(source) == stat:
            continue
        old = before.get(source)
        if old is not None and source not in failed_before and _sha256(inputs.corpus, source) == old.sha256:
            continue  # touched, not changed
        to_parse.append(source)
    docs, failed_now = parse_files(inputs.corpus, to_parse, inputs.limits, inputs.progress)
    failed = {s: m for s, m in failed_before.items() if s in stats and s not in to_parse} | failed_now
    chunked = {d.source: chunk_document(d, inputs.settings) for d in docs}
    return Changes(docs, chunked, [s for s in before if s not in stats], failed, before)


def _sha256(corpus: Path, source: str) -> str:
    try:
        return hashlib.sha256(ingest.read_file(corpus, source)).hexdigest()
    except DocumentError:
        return ""


def _old_vectors(parts: list[Segment], doc_ids: list[str], store: SegmentStore) -> dict[str, Vectors]:
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
            out.update(zip(ids, store.vectors(part.folder, rows), strict=True))
    return out


def _keep(
    parts: list[Segment], replaced: set[str], adding: bool, inputs: Inputs
) -> tuple[list[Segment], list[Segment], bool]:
    """The segments kept as they are (less the documents `replaced`), those merged into the new segment, and
    whether some were left to merge later: a job that must stay quick (`defer_over`: one a user waits for)
    leaves large rewrites to a job of their own."""
    kept = [replace(p, deleted=p.deleted | {d for d in replaced if p.holds(d)}) for p in parts]
    kept = [p for p in kept if p.live]
    merged = _to_merge(kept, adding)
    later = [p for p in merged if inputs.defer_over is not None and p.live > MERGE_NOW]
    merged = [p for p in merged if p not in later]
    return [p for p in kept if p not in merged], merged, bool(later)


def _to_merge(parts: list[Segment], adding: bool) -> list[Segment]:
    """The segments to write again (with the new one, when `adding` one): those that lost too many
    passages, and when there would be too many segments, all but the largest."""
    merge = [p for p in parts if p.live < (1 - MERGE_DELETED) * p.size]
    if len(parts) + adding > MAX_SEGMENTS:
        largest = max(parts, key=lambda p: p.live)
        merge = [p for p in parts if p is not largest or p in merge]
    return merge


def _merge(new: NewSegment, part: Segment, store: SegmentStore, by_id: dict[str, DocInfo]) -> NewSegment:
    """The new segment with a merged segment's live passages before its own, read back (vectors, words,
    texts and identities: nothing is parsed, segmented or embedded again)."""
    rows = read_chunks(part.folder)
    keep = [i for i, c in enumerate(rows) if c.doc_id not in part.deleted]
    chunks = [rows[i] for i in keep]
    lines = list(word_rows(part.folder))
    identities = {d: i for d, i in saved_identities(part.folder).items() if part.holds(d)}  # not old versions
    return NewSegment(
        chunks + new.chunks,
        {**new.vectors, **dict(zip((c.chunk_id for c in chunks), store.vectors(part.folder, keep), strict=True))},
        [Words(lines[i][1], lines[i][2]) for i in keep] + new.words,
        read_texts(part.folder, part.deleted) + new.texts,
        [by_id[d] for d in part.answers_for()] + new.infos,
        new.identities | identities,
    )


def _write(
    tmp: Path,
    name: str,
    folder: Path,
    kept: list[Segment],
    new: NewSegment,
    by_id: dict[str, DocInfo],
    inputs: Inputs,
    segmenter: Segmenter,
) -> list[dict[str, Any]]:
    """The kept segments linked into `tmp`, the new one written, the dictionary linked. Returns meta.json's
    list of segments."""
    (tmp / "segments").mkdir()
    listed = []
    for part in kept:
        _link(part, tmp / "segments" / part.name, folder, by_id)
        listed.append({"name": part.name, "passages": part.size, "deleted": sorted(part.deleted)})
    if new.chunks:
        target = tmp / "segments" / name
        target.mkdir()
        groups = [new.vectors[c.chunk_id] for c in new.chunks]
        dim = inputs.embedder.dim
        write_part(target, new.chunks, groups, dim, new.words, new.texts, inputs.store, segmenter, new.identities)
        write_documents(target, [i.as_dict() for i in new.infos if i.chunks])
        listed.append({"name": name, "passages": len(new.chunks), "deleted": []})
    link_dictionary(folder, tmp)
    return listed


def _link(part: Segment, target: Path, folder: Path, by_id: dict[str, DocInfo]) -> None:
    """A kept segment in the new snapshot, with its documents' rows when it was written before segments
    kept them."""
    link_segment(part.folder, target, root=part.folder == folder)
    if not (part.folder / DOCUMENTS).is_file():
        write_documents(target, [by_id[d].as_dict() for d in part.answers_for()])


def _meta(
    meta: dict[str, Any],
    change: Changes,
    docs: list[Document],
    deferred: list[str],
    stats: dict[str, list[int]],
    kept: list[Segment],
    new: NewSegment,
    listed: list[dict[str, Any]],
    now: float,
) -> dict[str, Any]:
    """The new snapshot's meta.json: the extended one's, with its segments, live passages, file times, and
    the documents without passages (in no segment)."""
    indexed = {d.source for d in docs}
    bare = [d for s, d in change.before.items() if not d.chunks and s not in change.gone and s not in indexed]
    bare += [i for i in new.infos if not i.chunks]
    seen = meta["stat"]
    stat = {s: v for s, v in stats.items() if s not in deferred} | {s: seen[s] for s in deferred if s in seen}
    return {
        **{k: v for k, v in meta.items() if k not in ("files", "documents")},  # documents: in the segments
        "chunks": sum(p.live for p in kept) + len(new.chunks),
        "created": now,
        "errors": list(change.failed.values()),
        "stat": stat,
        "failed": change.failed,
        "segments": listed,
        BARE: [d.as_dict() for d in sorted(bare, key=lambda d: d.source)],
    }
