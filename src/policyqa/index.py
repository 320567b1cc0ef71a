"""The on-disk index: build, update, save and load immutable snapshots (vectors + lexical + chunks + meta).

Layout of the index folder:
    CURRENT                 name of the snapshot being served (replaced atomically)
    snapshots/<name>/       meta.json, chunks.jsonl, vectors.npy, dense.faiss, sentences.npy (a vector per
                            sentence of the longer passages) with sentence_ptr.npy (passage i owns rows
                            ptr[i]:ptr[i+1]), lexical.npz + lexical.terms.json (BM25 over passages),
                            sentences.npz + sentences.terms.json + sentence_owner.npy (BM25 over their
                            sentences), words.jsonl (the words of each, reused while the dictionary
                            stays the same), dictionary.txt, texts.jsonl + texts.offsets.json (each
                            document's cleaned text and outline, for 查看原文)
A build writes a new snapshot folder, fsyncs it, renames it into place and only then swaps CURRENT, so a
crash at any point leaves the previous snapshot whole and served.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from policyqa import ingest
from policyqa.chunk import ChunkSettings, chunk_document, sentence_ranges, sentence_texts
from policyqa.embed import SELECTORS, Embedder
from policyqa.errors import (
    CorpusError,
    DocumentError,
    IndexMismatchError,
    IndexMissingError,
    ModelMismatchError,
)
from policyqa.identity import Identities
from policyqa.lexical import BM25
from policyqa.limits import Limits
from policyqa.metadata import Metadata, extract
from policyqa.models import Chunk, Document
from policyqa.sandbox import Sandbox
from policyqa.segment import Segmenter, domain_words, normalize, split_sentences

FORMAT_VERSION = 3
# Dense index type by corpus size, from bench/scale.py (see bench/RESULTS.md): exact search below the
# switch; HNSW above it, where exact search starts to cost a noticeable share of a question's encode.
HNSW_FROM = 20_000
HNSW_M = 32
KEEP_SNAPSHOTS = 2
Progress = Callable[[int, int], None]


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
        return {**asdict(self), "metadata": self.metadata.as_dict()}


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


@dataclass
class Index:
    """A loaded snapshot: everything a search needs, in memory."""

    folder: Path
    meta: dict[str, Any]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: Any  # faiss.Index
    lexical: BM25
    segmenter: Segmenter
    sentences: np.ndarray  # sentence vectors, memory-mapped: only the candidates' rows are ever read
    sentence_ptr: np.ndarray
    sentence_lexical: BM25  # BM25 over single sentences; sentence_owner[j] is the passage of sentence j
    sentence_owner: np.ndarray
    documents: dict[str, DocInfo] = field(default_factory=dict)
    damage: tuple[str, ...] = ()  # newer snapshots that failed to load, each with why (this one was next)

    @property
    def name(self) -> str:
        return self.folder.name

    def text(self, doc_id: str) -> dict[str, Any] | None:
        """A document's cleaned text and outline, as this snapshot indexed it."""
        return read_text(self.folder, doc_id)

    @cached_property
    def by_id(self) -> dict[str, DocInfo]:
        return {d.doc_id: d for d in self.documents.values()}

    @cached_property
    def identities(self) -> Identities:
        """What each document is, as questions name it (built once per loaded snapshot)."""
        return Identities.build(self.chunks, self.segmenter)

    @cached_property
    def centroids(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Each document's mean passage vector (normalised): doc ids, their vectors, and the row of every
        passage's document."""
        ids = list(dict.fromkeys(c.doc_id for c in self.chunks))
        row = {d: n for n, d in enumerate(ids)}
        owner = np.array([row[c.doc_id] for c in self.chunks], np.int64)
        sums = np.zeros((len(ids), self.vectors.shape[1] if self.vectors.ndim == 2 else 0), np.float32)
        np.add.at(sums, owner, self.vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return ids, sums / np.where(norms > 0, norms, 1.0), owner

    @cached_property
    def background(self) -> np.ndarray:
        """A fixed, evenly spread sample of at most 1,024 passage vectors: the corpus as a whole."""
        n = len(self.vectors)
        return self.vectors[np.unique(np.linspace(0, n - 1, min(n, 1024)).astype(np.int64))] if n else self.vectors


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


def documents(index_dir: Path) -> list[DocInfo]:
    """The documents of the snapshot being served, read from its meta.json (no model needed)."""
    folders, _ = candidates(index_dir)
    for folder in folders:
        try:
            return [DocInfo.from_dict(d) for d in _read_meta(folder).get("documents", [])]
        except (IndexMismatchError, TypeError):
            continue
    raise IndexMissingError(f"no index in {index_dir}; build it with `policyqa build`")


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
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = search_effort(n)
    else:
        index = faiss.IndexFlatIP(dim)
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


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


def _read_chunks(folder: Path) -> list[Chunk]:
    with (folder / "chunks.jsonl").open(encoding="utf-8") as fh:
        return [Chunk(**json.loads(line)) for line in fh if line.strip()]


def _check_format(meta: dict[str, Any]) -> None:
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {meta.get('format_version')} is not the supported format {FORMAT_VERSION}; "
            "rebuild it with `policyqa build`"
        )


def load(index_dir: Path, embedder: Embedder) -> Index:
    """The snapshot to serve, checked against the embedder that will search it."""
    index = read(index_dir)
    check_meta(index.meta, embedder.name, embedder.dim)
    return index


def read(index_dir: Path) -> Index:
    """The newest snapshot that loads whole, unchecked against the model (the caller checks `meta` once the
    model is known: lets the service read the index while the model loads). CURRENT's snapshot comes first;
    when it is damaged the next whole one is returned, with `damage` saying what was passed over and why."""
    folders, damage = candidates(index_dir)
    mismatch: IndexMismatchError | None = None
    for folder in folders:
        try:
            index = read_snapshot(folder)
        except IndexMismatchError as exc:  # another format: not damage, but nothing this code can serve
            mismatch = mismatch or exc
            continue
        except Exception as exc:
            damage.append(f"snapshot {folder.name} is damaged ({_why(exc)})")
            continue
        index.damage = tuple(damage)
        return index
    if mismatch is not None and not damage:
        raise mismatch
    detail = f" ({'; '.join(damage)})" if damage else ""
    raise IndexMissingError(f"no whole index in {index_dir}{detail}; build it with `policyqa build`")


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__


def _check_sizes(folder: Path, meta: dict[str, Any]) -> None:
    """Every file as long as when it was written (meta.json lists them): finds truncation anywhere."""
    for name, size in (meta.get("files") or {}).items():
        actual = (folder / name).stat().st_size
        if actual != size:
            raise ValueError(f"{name} is {actual} bytes, {size} were written")


def read_snapshot(folder: Path) -> Index:
    """One snapshot folder, read whole; any damage raises (IndexMismatchError only for another format)."""
    import faiss

    meta = _load_meta(folder)
    _check_format(meta)  # files of another format may not be there to read
    _check_sizes(folder, meta)
    chunks = _read_chunks(folder)
    vectors = np.load(folder / "vectors.npy")
    dense = faiss.read_index(str(folder / "dense.faiss"))
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = search_effort(dense.ntotal)
    if dense.ntotal != len(chunks) or len(vectors) != len(chunks) or meta.get("chunks", len(chunks)) != len(chunks):
        raise ValueError(f"{len(chunks)} passages, {len(vectors)} vectors, {dense.ntotal} in dense.faiss")
    sentences = np.load(folder / "sentences.npy", mmap_mode="r")
    sentence_ptr = np.load(folder / "sentence_ptr.npy")
    if len(sentence_ptr) != len(chunks) + 1 or int(sentence_ptr[-1]) != len(sentences):
        raise ValueError("sentence vectors do not match their passages")
    words = (folder / "dictionary.txt").read_text(encoding="utf-8").split()
    documents = {d["source"]: DocInfo.from_dict(d) for d in meta.get("documents", [])}
    lexical, segmenter = BM25.load(folder), Segmenter(words)
    owner = np.load(folder / "sentence_owner.npy")
    sentence_lexical = BM25.load(folder, "sentences")
    if lexical.size != len(chunks) or len(owner) != sentence_lexical.size:
        raise ValueError("the BM25 files do not match the passages")
    return Index(
        folder,
        meta,
        chunks,
        vectors,
        dense,
        lexical,
        segmenter,
        sentences,
        sentence_ptr,
        sentence_lexical,
        owner,
        documents,
    )


# --- building -----------------------------------------------------------------------------------


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
    index_dir: Path, model: str, dim: int, settings: ChunkSettings, repaired: list[str], allow_model_change: bool
) -> Previous | None:
    """The newest snapshot that reads whole. Damaged ones are set aside (renamed `.damaged-<name>`, never
    served again) and named in `repaired`. One built with another model is refused unless allowed."""
    folders, notes = candidates(index_dir)
    repaired.extend(notes)
    for folder in folders:
        try:
            meta = _load_meta(folder)
            _check_format(meta)
            _check_sizes(folder, meta)
            chunks, vectors = _read_chunks(folder), _read_vectors(folder)
            if len(chunks) != len(vectors) or meta.get("chunks", len(chunks)) != len(chunks):
                raise ValueError(f"{len(chunks)} passages but {len(vectors)} vectors")
        except IndexMismatchError:
            return None  # another format: nothing can be reused
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
    for path in [*folder.iterdir(), folder]:
        _fsync_dir(path)


@dataclass(frozen=True)
class Words:
    """A passage as BM25 sees it: its words (with title and breadcrumb) and each sentence's words."""

    passage: list[str]
    sentences: list[list[str]]


def _words(chunk: Chunk, segmenter: Segmenter) -> Words:
    head = " ".join(p for p in (chunk.title, chunk.section) if p)
    body = chunk.body
    spans = split_sentences(body) or [(0, len(body))]
    return Words(segmenter.words_of(chunk.context), [segmenter.words_of(f"{head}\n{body[a:b]}") for a, b in spans])


def _known_words(folder: Path | None, segmenter: Segmenter, chunks: list[Chunk]) -> dict[str, Words]:
    """Words of the previous snapshot's passages that segmenting again would not change: those holding
    none of the dictionary words added or dropped since (jieba cuts elsewhere the same way)."""
    if folder is None or not (folder / "words.jsonl").is_file():
        return {}
    try:
        changed = set((folder / "dictionary.txt").read_text(encoding="utf-8").split()) ^ set(segmenter.words)
        wanted = {c.chunk_id for c in chunks if not any(w in normalize(c.context) for w in changed)}
        with (folder / "words.jsonl").open(encoding="utf-8") as fh:
            return {row[0]: Words(row[1], row[2]) for row in map(json.loads, fh) if row[0] in wanted}
    except (OSError, ValueError, IndexError, TypeError):
        return {}  # only a shortcut: segment everything again


def _write_snapshot(
    index_dir: Path,
    meta: dict[str, Any],
    chunks: list[Chunk],
    groups: list[Vectors],
    dim: int,
    segmenter: Segmenter,
    known: dict[str, Words],
    texts: list[dict[str, Any]] | None = None,
) -> str:
    import faiss

    snapshots = index_dir / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    tmp = snapshots / f".tmp-{name}"
    tmp.mkdir()
    try:
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        vectors = np.array([g.passage for g in groups], np.float32).reshape(len(groups), dim)
        np.save(tmp / "vectors.npy", vectors)
        sizes = [len(g.sentences) for g in groups]
        np.save(tmp / "sentence_ptr.npy", np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64))
        rows = [g.sentences for g in groups if len(g.sentences)]
        np.save(
            tmp / "sentences.npy", np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
        )
        faiss.write_index(dense_index(vectors), str(tmp / "dense.faiss"))
        words = [known.get(c.chunk_id) or _words(c, segmenter) for c in chunks]
        BM25.build([w.passage for w in words]).save(tmp)
        owner = [n for n, w in enumerate(words) for _ in w.sentences]
        BM25.build([s for w in words for s in w.sentences]).save(tmp, "sentences")
        np.save(tmp / "sentence_owner.npy", np.array(owner, np.int64))
        with (tmp / "words.jsonl").open("w", encoding="utf-8") as fh:
            for c, w in zip(chunks, words, strict=True):
                fh.write(json.dumps([c.chunk_id, w.passage, w.sentences], ensure_ascii=False) + "\n")
        (tmp / "dictionary.txt").write_text("\n".join(segmenter.words) + "\n", encoding="utf-8")
        _write_texts(tmp, texts or [])
        meta = {**meta, "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        _fsync_tree(tmp)
        os.rename(tmp, snapshots / name)
        _fsync_tree(snapshots)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n", encoding="utf-8")
    with open(pointer) as fh:
        os.fsync(fh.fileno())
    os.replace(pointer, index_dir / "CURRENT")
    _fsync_dir(index_dir)
    _prune(snapshots, keep=name)
    return name


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


def read_text(folder: Path, doc_id: str) -> dict[str, Any] | None:
    """One document's entry in a snapshot's texts.jsonl (None: not there, or a snapshot from before)."""
    try:
        offsets = json.loads((folder / "texts.offsets.json").read_text(encoding="utf-8"))
        at, size = offsets[doc_id]
        with (folder / "texts.jsonl").open("rb") as fh:
            fh.seek(at)
            entry: dict[str, Any] = json.loads(fh.read(size))
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def text_entry(doc: Document) -> dict[str, Any]:
    """What a reader of the whole document needs: its text and its headings as an outline."""
    outline = [[len(b.section), b.text, b.start] for b in doc.blocks if b.kind == "heading" and b.section]
    return {"doc_id": doc.doc_id, "source": doc.source, "text": doc.text, "outline": outline}


def _prune(snapshots: Path, keep: str) -> None:
    """Remove old snapshots (all but the newest few) and leftovers of builds that were killed."""
    names = sorted(p.name for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in [n for n in names if n != keep][: max(0, len(names) - KEEP_SNAPSHOTS)]:
        shutil.rmtree(snapshots / old, ignore_errors=True)
    for tmp in [*snapshots.glob(".tmp-*"), *snapshots.glob(".damaged-*")]:
        if time.time() - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)


def _scan(corpus: Path, limits: Limits | None = None) -> tuple[list[Document], list[str], set[str]]:
    """Parse every document of the corpus (in a child process under `limits`: files dropped into the
    folder are as untrusted as uploads). Returns the documents, errors, and the sources that failed."""
    docs, errors, failed = [], [], set()
    with Sandbox(limits) as box:
        for path in ingest.corpus_files(corpus):
            source = path.relative_to(corpus).as_posix()
            try:
                docs.append(box.parse(path.read_bytes(), source))
            except DocumentError as exc:
                errors.append(str(exc))
                failed.add(source)
            except OSError as exc:
                errors.append(f"{source}: cannot read ({exc.strerror})")
                failed.add(source)
    return docs, errors, failed


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
) -> BuildReport:
    """Build or update the index from the corpus folder.

    Every document is parsed (cheap); only chunks whose id is not in the previous snapshot are embedded
    (expensive). A document that fails to parse keeps its previously indexed chunks, and is reported.
    Damaged snapshots are set aside and the build starts from the newest whole one (or from nothing).
    An index built with another model is refused unless `allow_model_change` (then rebuilt for this one).
    `cache` holds vectors embedded by builds that were stopped (and gains this build's, as they come);
    a document with more than `defer_over` passages still to embed is left as it was, for a later build.
    """
    cache = {} if cache is None else cache
    settings = settings or ChunkSettings()
    began = time.perf_counter()
    with build_lock(index_dir):
        repaired: list[str] = []
        prev = _previous(index_dir, embedder.name, embedder.dim, settings, repaired, allow_model_change)
        prev = None if force else prev
        docs, errors, failed = _scan(corpus, limits)
        prev_docs = {d["source"]: DocInfo.from_dict(d) for d in prev.meta["documents"]} if prev else {}
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
            raise CorpusError(f"no documents found in {corpus}{detail}; add .txt, .md, .html, .docx or .pdf files")

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
        if prev and not todo and unchanged and not repaired and _pointer(index_dir)[0] == prev.folder.name:
            seconds = time.perf_counter() - began
            return BuildReport(
                prev.folder.name, len(infos), len(chunks), 0, seconds, tuple(errors), False, (), tuple(deferred)
            )

        segmenter = Segmenter(_dictionary(docs))
        meta = {
            "format_version": FORMAT_VERSION,
            "model": embedder.name,
            "dim": embedder.dim,
            "chunking": settings.as_dict(),
            "chunks": len(chunks),
            "created": now,
            "documents": [i.as_dict() for i in infos],
            "errors": errors,
        }
        known = _known_words(prev.folder if prev else None, segmenter, chunks)
        texts = [text_entry(d) for d in docs]
        texts += [e for s in sorted(keep) if prev and (e := read_text(prev.folder, prev_docs[s].doc_id))]
        name = _write_snapshot(index_dir, meta, chunks, groups, embedder.dim, segmenter, known, texts)
        seconds = time.perf_counter() - began
        return BuildReport(
            name, len(infos), len(chunks), len(fresh), seconds, tuple(errors), True, tuple(repaired), tuple(deferred)
        )


@dataclass(frozen=True)
class Vectors:
    """What the dense leg knows of one passage: its own vector and one per sentence (maybe none)."""

    passage: np.ndarray
    sentences: np.ndarray


def _read_vectors(folder: Path) -> list[Vectors]:
    vectors = np.load(folder / "vectors.npy")
    sentences = np.load(folder / "sentences.npy")
    ptr = np.load(folder / "sentence_ptr.npy")
    return [Vectors(v, sentences[ptr[i] : ptr[i + 1]]) for i, v in enumerate(vectors)]


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
