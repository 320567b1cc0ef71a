"""The steps a whole build (build.py) and an incremental update (update.py) share: parse files, chunk, embed,
words, write a part, document centroids, and the report of what was done."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from policyqa.embed import Embedder
from policyqa.errors import DocumentError
from policyqa.ingest import loaders as ingest
from policyqa.ingest import validity
from policyqa.ingest.chunk import ChunkSettings, sentence_ranges, sentence_texts
from policyqa.ingest.identity import describe, saved_form
from policyqa.ingest.limits import Limits
from policyqa.ingest.metadata import extract
from policyqa.ingest.sandbox import Sandbox
from policyqa.ingest.segment import Segmenter, split_sentences
from policyqa.models import Chunk, Document
from policyqa.snapshot.documents import DocInfo, document_rows
from policyqa.snapshot.layout import CENTROIDS, IDENTITIES, ROWS
from policyqa.snapshot.questions import attach_questions
from policyqa.store.base import Store, Vectors, Words
from policyqa.store.vectors import mean_vectors


class Progress(Protocol):
    """Told how far a build is: passages embedded (`unit` "passages"), or the pages of a scan read by OCR
    (`unit` "pages", while the scan is parsed)."""

    def __call__(self, done: int, total: int, unit: str = "passages") -> None: ...


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
    merge_pending: bool = False  # segments left to merge by a build of their own (update.MERGE_NOW)


@dataclass(frozen=True)
class Inputs:
    """What a build or an update works from and with."""

    corpus: Path
    index_dir: Path
    embedder: Embedder
    settings: ChunkSettings
    store: Store
    limits: Limits | None
    cache: dict[str, Vectors]  # vectors embedded by builds that were stopped; gains this one's as they come
    progress: Progress | None
    defer_over: int | None  # a document with more passages than this to embed is left for a later build
    began: float  # time.perf_counter() when the build was asked for


Publishing = Callable[[Path, dict[str, Any]], None]  # last step on a snapshot written aside: (its folder, meta)


def known_questions(inputs: Inputs) -> Publishing:
    """The bank attached to the passages of a snapshot about to be published (snapshot/questions.py)."""
    return lambda folder, meta: attach_questions(folder, meta, inputs.corpus, inputs.embedder, inputs.index_dir)


def file_stats(corpus: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of every file of the corpus, by source: a file whose pair is as the
    last build saw it is not read again by an update that writes only what changed (update.py)."""
    out = {}
    for source, entry in ingest.corpus_entries(corpus):
        try:
            st = entry.stat()
        except OSError:
            continue
        out[source] = [st.st_size, st.st_mtime_ns]
    return out


def parse_files(
    corpus: Path, sources: list[str], limits: Limits | None = None, progress: Progress | None = None
) -> tuple[list[Document], dict[str, str]]:
    """Parse these files of the corpus (in a child process under `limits`, after refusing a file over their
    size or a symbolic link: files dropped into the folder are as untrusted as uploads); `progress` is told of
    the pages of each scan read by OCR. Returns the documents
    and, by source, why each of the others failed."""
    docs, failed = [], {}

    def on_page(source: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total, "pages")

    with Sandbox(limits) as box:
        for source in sources:
            try:
                docs.append(box.parse(ingest.read_file(corpus, source, box.limits.file_bytes), source, on_page))
            except DocumentError as exc:
                failed[source] = str(exc)
    return docs, failed


def left_for_later(
    docs: list[Document], chunked: dict[str, list[Chunk]], known: set[str], defer_over: int | None
) -> list[str]:
    """The documents with more than `defer_over` passages whose vectors are not `known`: left for later."""
    if defer_over is None:
        return []
    return [d.source for d in docs if sum(c.chunk_id not in known for c in chunked[d.source]) > defer_over]


def doc_info(doc: Document, chunks: int, indexed_at: float) -> DocInfo:
    """A document's row, with the metadata and the validity read from it."""
    metadata = extract(doc)
    stated = validity.extract(doc, metadata.date)
    return DocInfo(doc.doc_id, doc.source, doc.sha256, doc.size, chunks, indexed_at, doc.title, metadata, stated)


def text_entry(doc: Document) -> dict[str, Any]:
    """What a reader of the whole document needs: its text, its headings as an outline and, for a PDF, where
    each page starts ([page, offset], from the page of the first block on it)."""
    outline = [[len(b.section), b.text, b.start] for b in doc.blocks if b.kind == "heading" and b.section]
    pages: list[list[int]] = []
    for b in doc.blocks:
        if b.page and (not pages or b.page > pages[-1][0]):
            pages.append([b.page, b.start])
    return {"doc_id": doc.doc_id, "source": doc.source, "text": doc.text, "outline": outline, "pages": pages}


@dataclass(frozen=True)
class Embedded:
    """The vectors of a build's passages by chunk id, how many were not reused (`new`: from the cache or
    embedded now) and how many of those were embedded now (`fresh`)."""

    vectors: dict[str, Vectors]
    new: int
    fresh: int


def embed_new(inputs: Inputs, chunks: list[Chunk], reused: dict[str, Vectors]) -> Embedded:
    """Vectors for these passages: `reused` ones as they are, those left by a stopped build from the cache,
    and the others embedded now."""
    todo = list({c.chunk_id: c for c in chunks if c.chunk_id not in reused}.values())
    fresh = [c for c in todo if c.chunk_id not in inputs.cache]
    embed_chunks(inputs.embedder, fresh, inputs.progress, inputs.cache)
    return Embedded({**reused, **{c.chunk_id: inputs.cache[c.chunk_id] for c in todo}}, len(todo), len(fresh))


def embed_chunks(
    embedder: Embedder, chunks: list[Chunk], progress: Progress | None, into: dict[str, Vectors], batch: int = 64
) -> None:
    """Embed passages with their sentences, a batch of passages at a time (one encode call per batch, whose
    texts the encoder sorts by length: the larger, the less padding), into `into` as each batch is done (so
    a build stopped by `progress` raising keeps what it embedded, and stops within a batch).
    Each sentence is encoded again on its own, unless the embedder is set to pool it from its passage's
    forward pass (`one_pass`: faster, but it lost quality when measured; see bench/RESULTS.md). A text met
    before in this call (a sentence equal to its passage, boilerplate, the same sentence in two documents)
    is not encoded again."""
    one_pass = getattr(embedder, "encode_passages_with_spans", None) if getattr(embedder, "one_pass", False) else None
    once = EncodedOnce(embedder)
    for i in range(0, len(chunks), batch):
        part = chunks[i : i + batch]
        if one_pass is not None:
            passages, sentences = one_pass([c.embed_text for c in part], [sentence_ranges(c) for c in part])
            for c, passage, rows in zip(part, passages, sentences, strict=True):
                into[c.chunk_id] = Vectors(passage, rows)
        else:
            texts = [[c.embed_text, *sentence_texts(c)] for c in part]
            flat = once.encode([t for group in texts for t in group])
            at = 0
            for c, group in zip(part, texts, strict=True):
                into[c.chunk_id] = Vectors(flat[at], flat[at + 1 : at + len(group)])
                at += len(group)
        if progress:
            progress(min(i + batch, len(chunks)), len(chunks))


class EncodedOnce:
    """Passage texts encoded once each: a text met before (up to `limit` remembered, about 1.5 KiB each) gets
    the vector it got then; repeats within one call are encoded once."""

    def __init__(self, embedder: Embedder, limit: int = 50_000) -> None:
        self.embedder = embedder
        self.limit = limit
        self.seen: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts sent to the model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        todo = list(dict.fromkeys(t for t in texts if t not in self.seen))
        fresh = dict(zip(todo, self.embedder.encode_passages(todo).astype(np.float32), strict=True)) if todo else {}
        self.encoded += len(todo)
        out = np.stack([fresh[t] if t in fresh else self.seen[t] for t in texts])
        if len(self.seen) + len(fresh) > self.limit:
            self.seen.clear()  # a bound on memory: repeats are mostly near each other (one document's)
        self.seen.update(fresh)
        return out


def passage_words(chunk: Chunk, segmenter: Segmenter) -> Words:
    """A passage as BM25 sees it: the words of its context, and of each sentence under its heading."""
    head = " ".join(p for p in (chunk.title, chunk.section) if p)
    body = chunk.body
    spans = split_sentences(body) or [(0, len(body))]
    return Words(segmenter.words_of(chunk.context), [segmenter.words_of(f"{head}\n{body[a:b]}") for a, b in spans])


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


def document_centroids(chunks: list[Chunk], groups: list[Vectors], dim: int) -> np.ndarray:
    """Each document's mean passage vector, normalised, documents in the order of their first passage; from
    the fp16 the vectors are kept in, as a load would work it out."""
    ids, owner = document_rows(chunks)
    passages = np.array([g.passage for g in groups], np.float16).reshape(len(groups), dim)
    return mean_vectors(passages, owner, len(ids))
