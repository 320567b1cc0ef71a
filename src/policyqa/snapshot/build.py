"""A whole build: parse the corpus, diff it against the last snapshot, chunk, embed what is new, and publish a
new immutable snapshot that holds every passage (the store keeps its vectors and BM25; index.py reads it back).

A build writes a new snapshot folder, fsyncs it, renames it into place and only then swaps CURRENT, so a
crash at any point leaves the previous snapshot whole and served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policyqa.errors import CorpusError, IndexMismatchError, ModelMismatchError, StoreError
from policyqa.ingest.chunk import chunk_document
from policyqa.ingest.loaders import no_documents
from policyqa.ingest.segment import Segmenter, domain_words, normalize
from policyqa.models import Chunk, Document
from policyqa.snapshot.documents import DocInfo, snapshot_documents, write_documents
from policyqa.snapshot.layout import (
    FORMAT_VERSION,
    candidates,
    check_format,
    check_meta,
    check_sizes,
    damaged,
    load_meta,
    new_folder,
    pointer,
    publish,
    read_chunks,
    read_dictionary,
    read_text,
    segments,
    set_aside,
    store_of,
    word_rows,
    write_dictionary,
)
from policyqa.snapshot.questions import state as questions_state
from policyqa.snapshot.steps import (
    BuildReport,
    Inputs,
    Publishing,
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
from policyqa.store import connect
from policyqa.store.base import SegmentStore, Store, Vectors, Words


@dataclass(frozen=True)
class Previous:
    """The snapshot a build starts from: its meta, passages and vectors, read whole, and its documents."""

    meta: dict[str, Any]
    folder: Path
    chunks: list[Chunk]
    vectors: list[Vectors]

    def documents(self) -> dict[str, DocInfo]:
        return snapshot_documents(self.folder, self.meta)


@dataclass(frozen=True)
class Plan:
    """What a build indexes: the documents parsed now with their passages, and the sources whose passages it
    keeps from the previous snapshot (they failed to parse now, or wait for a later build)."""

    docs: list[Document]
    chunked: dict[str, list[Chunk]]
    keep: set[str]
    deferred: list[str]
    failed: dict[str, str]
    before: dict[str, DocInfo]  # the previous snapshot's documents by source

    @property
    def errors(self) -> list[str]:
        return list(self.failed.values())


def build(inputs: Inputs, force: bool, allow_model_change: bool, stats: dict[str, list[int]] | None) -> BuildReport:
    """Build the index from the corpus folder as one whole snapshot (the caller holds the build lock).

    Every document is parsed (cheap); only passages whose id is not in the previous snapshot are embedded
    (expensive). A document that fails to parse keeps its previously indexed passages, and is reported.
    Damaged snapshots are set aside and the build starts from the newest whole one (or from nothing).
    An index built with another model is refused unless `allow_model_change` (then rebuilt for this one).
    `stats`: the corpus files' sizes and times (file_stats) when the caller has just read them."""
    repaired: list[str] = []
    prev = _previous(inputs, repaired, allow_model_change)
    prev = None if force else prev
    stats = file_stats(inputs.corpus) if stats is None else stats
    plan = _plan(inputs, prev, *parse_files(inputs.corpus, list(stats), inputs.limits, inputs.progress))
    kept, reused = _reuse(prev, plan.keep)
    new_chunks = [c for d in plan.docs for c in plan.chunked[d.source]]
    embedded = embed_new(inputs, new_chunks, reused)
    chunks = [c for c, _ in kept] + new_chunks
    groups = [v for _, v in kept] + [embedded.vectors[c.chunk_id] for c in new_chunks]
    now = time.time()
    infos = _infos(plan, chunks, now)
    if prev and not embedded.new and not repaired and _unchanged(inputs, prev, chunks, infos, plan.before):
        seconds = time.perf_counter() - inputs.began
        errors, deferred = tuple(plan.errors), tuple(plan.deferred)
        return BuildReport(prev.folder.name, len(infos), len(chunks), 0, seconds, errors, False, deferred=deferred)
    segmenter = Segmenter(_dictionary(plan.docs))
    known = _known_words(prev.folder if prev else None, segmenter, chunks)
    texts = [text_entry(d) for d in plan.docs]
    texts += [e for s in sorted(plan.keep) if prev and (e := read_text(prev.folder, plan.before[s].doc_id))]
    meta = _meta(inputs, plan, len(chunks), infos, now, stats)
    dim = inputs.embedder.dim
    finish = known_questions(inputs)
    name = write_snapshot(inputs.index_dir, meta, chunks, groups, dim, segmenter, known, texts, inputs.store, finish)
    seconds = time.perf_counter() - inputs.began
    errors, deferred = tuple(plan.errors), tuple(plan.deferred)
    return BuildReport(name, len(infos), len(chunks), embedded.fresh, seconds, errors, True, tuple(repaired), deferred)


def _previous(inputs: Inputs, repaired: list[str], allow_model_change: bool) -> Previous | None:
    """The newest snapshot that reads whole. Damaged ones are set aside (renamed `.damaged-<name>`, never
    served again) and named in `repaired`. One built with another model is refused unless allowed. One
    kept by another store gives its vectors only when that store keeps them all in the folder (FAISS)."""
    folders, notes = candidates(inputs.index_dir)
    repaired.extend(notes)
    for folder in folders:
        try:
            meta = load_meta(folder)
            check_format(meta)
            check_sizes(folder, meta)
            source = _reader(meta, inputs.store)
            if source is None:
                return None  # kept by another engine, maybe on a server this build does not know of
            chunks, vectors = _live_contents(folder, meta, source)
            if len(chunks) != len(vectors) or meta.get("chunks", len(chunks)) != len(chunks):
                raise ValueError(f"{len(chunks)} passages but {len(vectors)} vectors")
        except IndexMismatchError:
            return None  # another format: nothing can be reused
        except StoreError:
            raise  # the store is down: a build now would embed everything again only to fail publishing
        except Exception as exc:
            repaired.append(f"{damaged(folder, exc)}; set aside")
            set_aside(folder)
            continue
        try:
            check_meta(meta, inputs.embedder.name, inputs.embedder.dim)
        except ModelMismatchError:
            if allow_model_change:
                return None
            raise
        return Previous(meta, folder, chunks, vectors) if meta.get("chunking") == inputs.settings.as_dict() else None
    return None


def _reader(meta: dict[str, Any], store: Store) -> Store | None:
    """The engine to read a snapshot's vectors with: this build's, or the one that wrote it when that one
    keeps everything in the snapshot folder (None: the vectors cannot be read back)."""
    if store_of(meta) == store.name:
        return store
    try:
        other = connect(store_of(meta))
    except StoreError:
        return None  # an engine this code does not have
    return other if other.files_only else None


def _live_contents(folder: Path, meta: dict[str, Any], store: Store) -> tuple[list[Chunk], list[Vectors]]:
    """Every live passage of a snapshot and its vectors, in Index.chunks order."""
    chunks: list[Chunk] = []
    vectors: list[Vectors] = []
    for _, sub, deleted in segments(folder, meta):
        rows = read_chunks(sub)
        if not deleted:
            chunks += rows
            vectors += store.vectors(sub)
            continue
        if not isinstance(store, SegmentStore):
            raise ValueError(f"a snapshot of segments kept by the {store.name} store, which keeps none")
        keep = [i for i, c in enumerate(rows) if c.doc_id not in deleted]
        chunks += [rows[i] for i in keep]
        vectors += store.vectors(sub, keep)
    return chunks, vectors


def _plan(inputs: Inputs, prev: Previous | None, docs: list[Document], failed: dict[str, str]) -> Plan:
    """Which documents to index now and which to keep as the previous snapshot has them; no document at
    all is a CorpusError."""
    before = prev.documents() if prev else {}
    chunked = {d.source: chunk_document(d, inputs.settings) for d in docs}
    known = ({c.chunk_id for c in prev.chunks} if prev else set()) | inputs.cache.keys()
    deferred = left_for_later(docs, chunked, known, inputs.defer_over)
    if len(deferred) == len(docs) and not before:
        deferred = []  # nothing else to publish first
    docs = [d for d in docs if d.source not in deferred]
    keep = {s for s in [*failed, *deferred] if s in before}
    if not docs and not keep:
        detail = f" ({'; '.join(failed.values())})" if failed else ""
        raise CorpusError(no_documents(inputs.corpus, detail))
    return Plan(docs, chunked, keep, deferred, failed, before)


def _reuse(prev: Previous | None, keep: set[str]) -> tuple[list[tuple[Chunk, Vectors]], dict[str, Vectors]]:
    """From the previous snapshot: the passages of the documents kept as they are, with their vectors, and
    every other passage's vectors by chunk id (an edited document keeps those of the passages it still has)."""
    kept: list[tuple[Chunk, Vectors]] = []
    reused: dict[str, Vectors] = {}
    for c, v in zip(prev.chunks, prev.vectors, strict=True) if prev else ():
        if c.source in keep:
            kept.append((c, v))
        else:
            reused[c.chunk_id] = v
    return kept, reused


def _infos(plan: Plan, chunks: list[Chunk], now: float) -> list[DocInfo]:
    """Every document's row, by source: a document whose bytes did not change keeps when it was indexed."""
    counts: dict[str, int] = {}
    for c in chunks:
        counts[c.source] = counts.get(c.source, 0) + 1
    infos = [plan.before[s] for s in sorted(plan.keep)]
    for d in plan.docs:
        old = plan.before.get(d.source)
        infos.append(doc_info(d, counts.get(d.source, 0), old.indexed_at if old and old.sha256 == d.sha256 else now))
    return sorted(infos, key=lambda i: i.source)


def _unchanged(
    inputs: Inputs, prev: Previous, chunks: list[Chunk], infos: list[DocInfo], before: dict[str, DocInfo]
) -> bool:
    """Whether the snapshot being served already is what this build would write: the same passages, the same
    rows (metadata read differently, by an index from before it existed or by better rules, is a change: a
    new snapshot with the same vectors), its texts kept, and the same store (not one switched to)."""
    return (
        [c.chunk_id for c in chunks] == [c.chunk_id for c in prev.chunks]
        and len(infos) == len(before)
        and infos == [before.get(i.source) for i in infos]
        and (prev.folder / "texts.jsonl").is_file()
        and store_of(prev.meta) == inputs.store.name
        and pointer(inputs.index_dir)[0] == prev.folder.name
        and prev.meta.get("questions") == questions_state(inputs.corpus)
    )


def _meta(
    inputs: Inputs, plan: Plan, chunks: int, infos: list[DocInfo], now: float, stats: dict[str, list[int]]
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "store": inputs.store.name,
        "model": inputs.embedder.name,
        "dim": inputs.embedder.dim,
        "chunking": inputs.settings.as_dict(),
        "chunks": chunks,
        "created": now,
        "documents": [i.as_dict() for i in infos],
        "errors": plan.errors,
        "stat": {s: v for s, v in stats.items() if s not in plan.deferred},
        "failed": plan.failed,
    }


def _dictionary(docs: list[Document]) -> set[str]:
    headings = [" ".join(b.section) for d in docs for b in d.blocks] + [d.title for d in docs]
    cells = [c for d in docs for b in d.blocks if b.kind == "table_row" for c in b.text.split("\t")]
    return domain_words(headings, cells, (d.text for d in docs))


def _known_words(folder: Path | None, segmenter: Segmenter, chunks: list[Chunk]) -> dict[str, Words]:
    """Words of the previous snapshot's passages that segmenting again would not change: those holding
    none of the dictionary words added or dropped since (jieba cuts elsewhere the same way)."""
    if folder is None:
        return {}
    try:
        changed = set(read_dictionary(folder)) ^ set(segmenter.words)
        wanted = {c.chunk_id for c in chunks if not any(w in normalize(c.context) for w in changed)}
        out: dict[str, Words] = {}
        for _, sub, _ in segments(folder, load_meta(folder)):
            out.update({row[0]: Words(row[1], row[2]) for row in word_rows(sub) if row[0] in wanted})
        return out
    except (OSError, ValueError, IndexError, TypeError):
        return {}  # only a shortcut: segment everything again


def write_snapshot(
    index_dir: Path,
    meta: dict[str, Any],
    chunks: list[Chunk],
    groups: list[Vectors],
    dim: int,
    segmenter: Segmenter,
    known: dict[str, Words],
    texts: list[dict[str, Any]],
    store: Store,
    finish: Publishing | None = None,
) -> str:
    """Write and publish a whole snapshot of these passages (`known`: words already worked out, by chunk id;
    `finish`: what is added last, with the passages written, e.g. the known questions)."""
    with new_folder(index_dir, store) as (tmp, name):
        words = [known.get(c.chunk_id) or passage_words(c, segmenter) for c in chunks]
        write_part(tmp, chunks, groups, dim, words, texts, store, segmenter)
        # meta.json lists the documents too; this copy goes with the passages when an update links them
        write_documents(tmp, meta["documents"])
        write_dictionary(tmp, segmenter.words)
        if finish is not None:
            finish(tmp, meta)
    return publish(index_dir, tmp, name, meta, store)
