"""The build pipeline: scan the corpus, diff it against the last snapshot, chunk, embed what is new, and
publish a new immutable snapshot (the store keeps its vectors and BM25; index.py reads it back).

A build writes a new snapshot folder, fsyncs it, renames it into place and only then swaps CURRENT, so a
crash at any point leaves the previous snapshot whole and served.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.embed import Embedder
from policyqa.errors import CorpusError, DocumentError, IndexMismatchError, ModelMismatchError, StoreError
from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import ChunkSettings, chunk_document, sentence_ranges, sentence_texts
from policyqa.ingest.identity import describe, saved_form
from policyqa.ingest.limits import Limits
from policyqa.ingest.metadata import extract
from policyqa.ingest.sandbox import Sandbox
from policyqa.ingest.segment import Segmenter, domain_words, normalize, split_sentences
from policyqa.models import Chunk, Document
from policyqa.snapshot.index import (
    CENTROIDS,
    DOCUMENTS,
    FORMAT_VERSION,
    IDENTITIES,
    DocInfo,
    Index,
    _check_format,
    _check_sizes,
    _load_meta,
    _pointer,
    _read_chunks,
    _why,
    candidates,
    check_meta,
    document_rows,
    read_text,
    segments,
    snapshot_documents,
    store_of,
)
from policyqa.store import connect, default_store
from policyqa.store.base import Store, Vectors, Words
from policyqa.store.faiss import mean_vectors

KEEP_SNAPSHOTS = 2
ROWS = "rows.json"  # doc_id -> [first row, chunk ids]: where each document's passages are
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildReport:
    snapshot: str
    documents: int
    chunks: int
    embedded: int  # chunks whose vectors were computed in this build (the rest were reused)
    seconds: float
    errors: tuple[str, ...] = ()
    changed: bool = True
    repaired: tuple[str, ...] = ()  # damaged snapshots set aside by this build, each with why
    deferred: tuple[str, ...] = ()  # documents left for a later build: too many passages to embed now
    merge_pending: bool = False  # segments left to merge by a build of their own (delta.MERGE_NOW)


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Serialise builds of one index folder across processes."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Previous:
    """The snapshot a build starts from: its meta, passages and vectors, read whole."""

    meta: dict[str, Any]
    folder: Path
    chunks: list[Chunk]
    vectors: list[Vectors]


def _previous(
    index_dir: Path,
    model: str,
    dim: int,
    settings: ChunkSettings,
    repaired: list[str],
    allow_model_change: bool,
    store: Store,
) -> Previous | None:
    """The newest snapshot that reads whole. Damaged ones are set aside (renamed `.damaged-<name>`, never
    served again) and named in `repaired`. One built with another model is refused unless allowed. One
    kept by another store gives its vectors only when that store can still be read (FAISS: its files)."""
    folders, notes = candidates(index_dir)
    repaired.extend(notes)
    for folder in folders:
        try:
            meta = _load_meta(folder)
            _check_format(meta)
            _check_sizes(folder, meta)
            if store_of(meta) not in (store.name, "faiss"):
                return None  # kept by another engine, maybe on a server this build does not know of
            source = store if store_of(meta) == store.name else connect(store_of(meta))
            chunks, vectors = live_contents(folder, meta, source)
            if len(chunks) != len(vectors) or meta.get("chunks", len(chunks)) != len(chunks):
                raise ValueError(f"{len(chunks)} passages but {len(vectors)} vectors")
        except IndexMismatchError:
            return None  # another format: nothing can be reused
        except StoreError:
            raise  # the store is down: a build now would embed everything again only to fail publishing
        except Exception as exc:
            repaired.append(f"snapshot {folder.name} is damaged ({_why(exc)}); set aside")
            _set_aside(folder)
            continue
        try:
            check_meta(meta, model, dim)
        except ModelMismatchError:
            if allow_model_change:
                return None
            raise
        return Previous(meta, folder, chunks, vectors) if meta.get("chunking") == settings.as_dict() else None
    return None


def live_contents(folder: Path, meta: dict[str, Any], store: Store) -> tuple[list[Chunk], list[Vectors]]:
    """Every live passage of a snapshot and its vectors, in Index.chunks order."""
    chunks: list[Chunk] = []
    vectors: list[Vectors] = []
    for _, sub, deleted in segments(folder, meta):
        rows = _read_chunks(sub)
        if not deleted:
            chunks += rows
            vectors += store.vectors(sub)
            continue
        keep = [i for i, c in enumerate(rows) if c.doc_id not in deleted]
        chunks += [rows[i] for i in keep]
        vectors += store.vectors(sub, keep)  # type: ignore[call-arg]  # segmented stores take rows
    return chunks, vectors


def _set_aside(folder: Path) -> None:
    try:
        os.rename(folder, folder.with_name(f".damaged-{folder.name}"))
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _dictionary(docs: list[Document]) -> set[str]:
    headings = [" ".join(b.section) for d in docs for b in d.blocks] + [d.title for d in docs]
    cells = [c for d in docs for b in d.blocks if b.kind == "table_row" for c in b.text.split("\t")]
    return domain_words(headings, cells, (d.text for d in docs))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """The folder's files and those of its segments, then the folders themselves."""
    parts = [folder, *sorted((folder / "segments").iterdir())] if (folder / "segments").is_dir() else [folder]
    for part in parts:
        for path in part.iterdir():
            if path.is_file():
                _fsync_dir(path)
    for part in [*reversed(parts), *([folder / "segments"] if len(parts) > 1 else [])]:
        _fsync_dir(part)


def _words(chunk: Chunk, segmenter: Segmenter) -> Words:
    head = " ".join(p for p in (chunk.title, chunk.section) if p)
    body = chunk.body
    spans = split_sentences(body) or [(0, len(body))]
    return Words(segmenter.words_of(chunk.context), [segmenter.words_of(f"{head}\n{body[a:b]}") for a, b in spans])


def _known_words(folder: Path | None, segmenter: Segmenter, chunks: list[Chunk]) -> dict[str, Words]:
    """Words of the previous snapshot's passages that segmenting again would not change: those holding
    none of the dictionary words added or dropped since (jieba cuts elsewhere the same way)."""
    if folder is None:
        return {}
    try:
        changed = set((folder / "dictionary.txt").read_text(encoding="utf-8").split()) ^ set(segmenter.words)
        wanted = {c.chunk_id for c in chunks if not any(w in normalize(c.context) for w in changed)}
        out: dict[str, Words] = {}
        for _, sub, _ in segments(folder, _load_meta(folder)):
            with (sub / "words.jsonl").open(encoding="utf-8") as fh:
                out.update({row[0]: Words(row[1], row[2]) for row in map(json.loads, fh) if row[0] in wanted})
        return out
    except (OSError, ValueError, IndexError, TypeError):
        return {}  # only a shortcut: segment everything again


def snapshot_name() -> str:
    # one clock reading for the seconds and the nanoseconds: two readings straddling a second's end named a later
    # snapshot before an earlier one, and the newest snapshot is the one whose name sorts last
    now = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now // 1_000_000_000)) + f"-{now % 1_000_000_000:09d}"


def write_part(
    folder: Path,
    chunks: list[Chunk],
    groups: list[Vectors],
    dim: int,
    words: list[Words],
    texts: list[dict[str, Any]],
    store: Store,
    segmenter: Segmenter,
    identities: dict[str, dict[str, object]] | None = None,
) -> None:
    """The per-passage files of a snapshot, or of one segment: passages, their vectors and BM25 (the store's
    files), their words, each document's rows, text and identity (`identities`: those already worked out)."""
    with (folder / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for c in chunks:
            fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    store.write(folder, dim, groups, words, [c.doc_id for c in chunks])
    with (folder / "words.jsonl").open("w", encoding="utf-8") as fh:
        for c, w in zip(chunks, words, strict=True):
            fh.write(json.dumps([c.chunk_id, w.passage, w.sentences], ensure_ascii=False) + "\n")
    rows: dict[str, list[Any]] = {}
    for n, c in enumerate(chunks):
        rows.setdefault(c.doc_id, [n, []])[1].append(c.chunk_id)
    (folder / ROWS).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    _write_texts(folder, texts)
    described = saved_form(describe(chunks, segmenter, identities))
    (folder / IDENTITIES).write_text(json.dumps(described, ensure_ascii=False), encoding="utf-8")
    np.save(folder / CENTROIDS, document_centroids(chunks, groups, dim))


def write_documents(folder: Path, rows: list[dict[str, Any]]) -> None:
    """A segment's documents.json (DocInfo rows): a snapshot of segments keeps each document's row with its
    passages, so an update writes the rows of the documents it changed, not of every document."""
    (folder / DOCUMENTS).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def document_centroids(chunks: list[Chunk], groups: list[Vectors], dim: int) -> np.ndarray:
    """Each document's mean passage vector, normalised, documents in the order of their first passage; from
    the fp16 the vectors are kept in, as a load would work it out."""
    ids, owner = document_rows(chunks)
    passages = np.array([g.passage for g in groups], np.float16).reshape(len(groups), dim)
    return mean_vectors(passages, owner, len(ids))


def publish(index_dir: Path, tmp: Path, name: str, meta: dict[str, Any], store: Store) -> str:
    """Seal a snapshot written in `tmp` (meta.json with every file's size, fsync), rename it into place, point
    CURRENT at it and prune the old ones. Removes `tmp` when anything fails."""
    snapshots = index_dir / "snapshots"
    try:
        files = [p for p in sorted(tmp.iterdir()) if p.is_file()]
        if (tmp / "segments").is_dir():
            files += [p for sub in sorted((tmp / "segments").iterdir()) for p in sorted(sub.iterdir()) if p.is_file()]
        meta = {**meta, "files": {p.relative_to(tmp).as_posix(): p.stat().st_size for p in files}}
        # without indent: json's C encoder (14 MB for 23,000 documents took 3 s with indent, in Python)
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        _fsync_tree(tmp)
        os.rename(tmp, snapshots / name)
        _fsync_tree(snapshots)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        store.discard(name)
        raise
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n", encoding="utf-8")
    with open(pointer) as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / "CURRENT")
    _fsync_dir(index_dir)
    store.publish(name)
    _prune(snapshots, name, store)
    return name


def new_folder(index_dir: Path) -> tuple[Path, str]:
    """A fresh `.tmp-<name>` folder for a snapshot being written, and its name."""
    snapshots = index_dir / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    name = snapshot_name()
    tmp = snapshots / f".tmp-{name}"
    tmp.mkdir()
    return tmp, name


def _write_snapshot(
    index_dir: Path,
    meta: dict[str, Any],
    chunks: list[Chunk],
    groups: list[Vectors],
    dim: int,
    segmenter: Segmenter,
    known: dict[str, Words],
    texts: list[dict[str, Any]],
    store: Store,
) -> str:
    tmp, name = new_folder(index_dir)
    try:
        words = [known.get(c.chunk_id) or _words(c, segmenter) for c in chunks]
        write_part(tmp, chunks, groups, dim, words, texts, store, segmenter)
        # meta.json lists the documents too; this copy goes with the passages when an update links them
        write_documents(tmp, meta["documents"])
        (tmp / "dictionary.txt").write_text("\n".join(segmenter.words) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        store.discard(name)
        raise
    return publish(index_dir, tmp, name, meta, store)


def _write_texts(folder: Path, texts: list[dict[str, Any]]) -> None:
    """texts.jsonl: each document's cleaned text and outline, one line each (what 查看原文 shows; every
    passage offset points into it); texts.offsets.json: where each document's line starts and its length."""
    offsets: dict[str, list[int]] = {}
    with (folder / "texts.jsonl").open("wb") as fh:
        for entry in texts:
            line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
            offsets[entry["doc_id"]] = [fh.tell(), len(line)]
            fh.write(line)
    (folder / "texts.offsets.json").write_text(json.dumps(offsets), encoding="utf-8")


def text_entry(doc: Document) -> dict[str, Any]:
    """What a reader of the whole document needs: its text and its headings as an outline."""
    outline = [[len(b.section), b.text, b.start] for b in doc.blocks if b.kind == "heading" and b.section]
    return {"doc_id": doc.doc_id, "source": doc.source, "text": doc.text, "outline": outline}


def _prune(snapshots: Path, keep: str, store: Store) -> None:
    """Remove old snapshots (all but the newest few) and leftovers of builds that were killed, with what the
    store keeps for them outside the folder."""
    names = sorted(p.name for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in [n for n in names if n != keep][: max(0, len(names) - KEEP_SNAPSHOTS)]:
        shutil.rmtree(snapshots / old, ignore_errors=True)
        store.discard(old)
    for tmp in [*snapshots.glob(".tmp-*"), *snapshots.glob(".damaged-*")]:
        if time.time() - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)
            store.discard(tmp.name.removeprefix(".tmp-").removeprefix(".damaged-"))


def file_stats(corpus: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of every file of the corpus, by source: a file whose pair is as the
    last build saw it is not read again by an update that writes only what changed (delta.py)."""
    out = {}
    for source, entry in ingest.corpus_entries(corpus):
        try:
            st = entry.stat()
        except OSError:
            continue
        out[source] = [st.st_size, st.st_mtime_ns]
    return out


def parse_files(
    corpus: Path, sources: list[str], limits: Limits | None = None
) -> tuple[list[Document], dict[str, str]]:
    """Parse these files of the corpus (in a child process under `limits`: files dropped into the folder are
    as untrusted as uploads). Returns the documents and, by source, why each of the others failed."""
    docs, failed = [], {}
    with Sandbox(limits) as box:
        for source in sources:
            try:
                docs.append(box.parse((corpus / source).read_bytes(), source))
            except DocumentError as exc:
                failed[source] = str(exc)
            except OSError as exc:
                failed[source] = f"{source}: cannot read ({exc.strerror})"
    return docs, failed


def _scan(
    corpus: Path, limits: Limits | None = None, stats: dict[str, list[int]] | None = None
) -> tuple[list[Document], dict[str, str], dict[str, list[int]]]:
    """Parse every document of the corpus. Returns the documents, why each failed one failed (by source),
    and every file's size and time as seen before it was read (`stats`: as the caller just saw them)."""
    stats = file_stats(corpus) if stats is None else stats
    docs, failed = parse_files(corpus, list(stats), limits)
    return docs, failed, stats


def build(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings | None = None,
    progress: Progress | None = None,
    force: bool = False,
    allow_model_change: bool = False,
    limits: Limits | None = None,
    cache: dict[str, Vectors] | None = None,
    defer_over: int | None = None,
    store: Store | None = None,
    delta_from: int | None = None,
    stats: dict[str, list[int]] | None = None,
    previous: Index | None = None,
) -> BuildReport:
    """Build or update the index from the corpus folder.

    Every document is parsed (cheap); only chunks whose id is not in the previous snapshot are embedded
    (expensive). A document that fails to parse keeps its previously indexed chunks, and is reported.
    Damaged snapshots are set aside and the build starts from the newest whole one (or from nothing).
    An index built with another model is refused unless `allow_model_change` (then rebuilt for this one).
    `cache` holds vectors embedded by builds that were stopped (and gains this build's, as they come);
    a document with more than `defer_over` passages still to embed is left as it was, for a later build.
    `store` keeps the vectors and BM25 (default: FAISS and arrays in the snapshot folder).
    From `delta_from` passages on (default delta.DELTA_FROM), a store that keeps segments gets a snapshot
    that shares the previous one's unchanged data and adds what changed (delta.py). `stats`: the corpus
    files' sizes and times (file_stats) when the caller has just read them (one walk of a large folder is
    seconds). `previous`: the snapshot the caller serves, whose documents an update need not read again.
    """
    cache = {} if cache is None else cache
    store = store or default_store()
    settings = settings or ChunkSettings()
    began = time.perf_counter()
    with build_lock(index_dir):
        if not force and getattr(store, "segmented", False):
            from policyqa.snapshot import delta

            report = delta.update(
                corpus,
                index_dir,
                embedder,
                settings,
                store,
                limits,
                cache,
                progress,
                defer_over,
                delta_from,
                stats,
                previous,
            )
            if report is not None:
                return report
        repaired: list[str] = []
        prev = _previous(index_dir, embedder.name, embedder.dim, settings, repaired, allow_model_change, store)
        prev = None if force else prev
        docs, failed, stats = _scan(corpus, limits, stats)
        errors = list(failed.values())
        prev_docs = snapshot_documents(prev.folder, prev.meta) if prev else {}
        chunked = {d.source: chunk_document(d, settings) for d in docs}
        known_ids = {c.chunk_id for c in prev.chunks} if prev else set()
        known_ids |= cache.keys()
        deferred = [
            d.source
            for d in docs
            if defer_over is not None and sum(c.chunk_id not in known_ids for c in chunked[d.source]) > defer_over
        ]
        if len(deferred) == len(docs) and not prev_docs:
            deferred = []  # nothing else to publish first
        docs = [d for d in docs if d.source not in deferred]
        keep = {s for s in [*failed, *deferred] if s in prev_docs}
        if not docs and not keep:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise CorpusError(ingest.no_documents(corpus, detail))

        old_vectors: dict[str, Vectors] = {}
        kept: list[tuple[Chunk, Vectors]] = []
        old_ids: list[str] = []
        if prev:
            for c, v in zip(prev.chunks, prev.vectors, strict=True):
                old_ids.append(c.chunk_id)
                if c.source in keep:
                    kept.append((c, v))
                else:
                    old_vectors[c.chunk_id] = v

        new_chunks = [c for d in docs for c in chunked[d.source]]
        todo = list({c.chunk_id: c for c in new_chunks if c.chunk_id not in old_vectors}.values())
        fresh = [c for c in todo if c.chunk_id not in cache]
        _embed(embedder, fresh, progress, cache)
        vec_of = {**old_vectors, **{c.chunk_id: cache[c.chunk_id] for c in todo}}
        chunks = [c for c, _ in kept] + new_chunks
        groups = [v for _, v in kept] + [vec_of[c.chunk_id] for c in new_chunks]

        now = time.time()
        counts: dict[str, int] = {}
        for c in chunks:
            counts[c.source] = counts.get(c.source, 0) + 1
        infos = [prev_docs[s] for s in sorted(keep)]
        for d in docs:
            old = prev_docs.get(d.source)
            when = old.indexed_at if old is not None and old.sha256 == d.sha256 else now
            info = DocInfo(d.doc_id, d.source, d.sha256, d.size, counts.get(d.source, 0), when, d.title, extract(d))
            infos.append(info)
        infos.sort(key=lambda i: i.source)
        # metadata read differently (an index from before it existed, or better rules) is a change: a new
        # snapshot with the same vectors
        unchanged = [c.chunk_id for c in chunks] == old_ids and len(infos) == len(prev_docs)
        unchanged = unchanged and infos == [prev_docs.get(i.source) for i in infos]
        unchanged = unchanged and (prev is not None and (prev.folder / "texts.jsonl").is_file())
        unchanged = unchanged and prev is not None and store_of(prev.meta) == store.name  # a store switched to
        if prev and not todo and unchanged and not repaired and _pointer(index_dir)[0] == prev.folder.name:
            seconds = time.perf_counter() - began
            return BuildReport(
                prev.folder.name, len(infos), len(chunks), 0, seconds, tuple(errors), False, (), tuple(deferred)
            )

        segmenter = Segmenter(_dictionary(docs))
        meta = {
            "format_version": FORMAT_VERSION,
            "store": store.name,
            "model": embedder.name,
            "dim": embedder.dim,
            "chunking": settings.as_dict(),
            "chunks": len(chunks),
            "created": now,
            "documents": [i.as_dict() for i in infos],
            "errors": errors,
            "stat": {s: v for s, v in stats.items() if s not in deferred},
            "failed": failed,
        }
        known = _known_words(prev.folder if prev else None, segmenter, chunks)
        texts = [text_entry(d) for d in docs]
        texts += [e for s in sorted(keep) if prev and (e := read_text(prev.folder, prev_docs[s].doc_id))]
        name = _write_snapshot(index_dir, meta, chunks, groups, embedder.dim, segmenter, known, texts, store)
        seconds = time.perf_counter() - began
        return BuildReport(
            name, len(infos), len(chunks), len(fresh), seconds, tuple(errors), True, tuple(repaired), tuple(deferred)
        )


def _embed(
    embedder: Embedder, chunks: list[Chunk], progress: Progress | None, into: dict[str, Vectors], batch: int = 32
) -> None:
    """Embed passages with their sentences, a batch of passages at a time (one encode call per batch), into
    `into` as each batch is done (so a build stopped by `progress` raising keeps what it embedded).
    Each sentence is encoded again on its own, unless the embedder is set to pool it from its passage's
    forward pass (`one_pass`: faster, but it lost quality when measured; see bench/RESULTS.md)."""
    one_pass = getattr(embedder, "encode_passages_with_spans", None) if getattr(embedder, "one_pass", False) else None
    for i in range(0, len(chunks), batch):
        part = chunks[i : i + batch]
        if one_pass is not None:
            passages, sentences = one_pass([c.embed_text for c in part], [sentence_ranges(c) for c in part])
            for c, passage, rows in zip(part, passages, sentences, strict=True):
                into[c.chunk_id] = Vectors(passage, rows)
        else:
            texts = [[c.embed_text, *sentence_texts(c)] for c in part]
            flat = embedder.encode_passages([t for group in texts for t in group]).astype(np.float32)
            at = 0
            for c, group in zip(part, texts, strict=True):
                into[c.chunk_id] = Vectors(flat[at], flat[at + 1 : at + len(group)])
                at += len(group)
        if progress:
            progress(min(i + batch, len(chunks)), len(chunks))
