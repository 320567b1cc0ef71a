"""A snapshot on disk: its files, the CURRENT pointer, meta.json read and checked, and a new snapshot written
aside, sealed, published and pruned.

Layout of the index folder:
    CURRENT                 name of the snapshot being served (replaced atomically)
    .lock                   held by the build or update writing a snapshot (one at a time)
    snapshots/<name>/       meta.json, chunks.jsonl, words.jsonl (the BM25 words of each passage and its
                            sentences, reused while the dictionary stays the same), dictionary.txt,
                            rows.json (each document's passage rows), identities.json (what identity.py
                            reads of each document, so a load need not segment them again), centroids.npy
                            (each document's mean passage vector), texts.jsonl +
                            texts.offsets.json (each document's cleaned text and outline, for 查看原文),
                            questions.jsonl + questions.npy (the known questions attached to its passages:
                            snapshot/questions.py), and
                            what the store keeps
                            there (store/faiss.py: the vectors and BM25 arrays; store/qdrant.py: a local
                            collection, or nothing when it is on a server)
A snapshot of a large corpus updated by a few documents is instead a list of segments (meta.json's
"segments"): segments/<segment>/ holds the per-passage files above for some documents and their rows
(documents.json), written once and hard-linked into every later snapshot that keeps it; meta.json names the
documents each segment no longer answers for, and lists no documents itself (an update writes the rows of
the documents it changed, not tens of thousands). A build (build.py) or an update (update.py) writes a new
snapshot folder, fsyncs it, renames it into place and only then swaps CURRENT, so a crash at any point
leaves the previous snapshot whole and served.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from policyqa.durable import fsync_path, replace_file
from policyqa.embed import SELECTORS
from policyqa.errors import IndexMismatchError, ModelMismatchError
from policyqa.models import Chunk
from policyqa.store.base import Store

FORMAT_VERSION = 3
CENTROIDS = "centroids.npy"  # each document's mean passage vector, documents in the order of their passages
IDENTITIES = "identities.json"  # doc_id -> what identity.describe found (read back instead of segmenting again)
DOCUMENTS = "documents.json"  # a segment's documents (DocInfo rows); a snapshot of segments lists none itself
ROWS = "rows.json"  # doc_id -> [first row, chunk ids]: where each document's passages are
BARE = "bare"  # meta.json of a snapshot of segments: the rows of documents without passages (in no segment)
QUESTIONS = "questions.jsonl"  # the known questions attached to the snapshot's passages (snapshot/questions.py)
QUESTION_VECTORS = "questions.npy"  # their vectors, a row a line of questions.jsonl
# a snapshot's own files: not part of any segment
SNAPSHOT_FILES = {"meta.json", "dictionary.txt", QUESTIONS, QUESTION_VECTORS}
DEFAULT_STORE = "faiss"  # snapshots written before the store was recorded in meta.json
KEEP_SNAPSHOTS = 2

# --- where the snapshots are ------------------------------------------------------------------

_SNAPSHOT_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,80}")


def pointer(index_dir: Path) -> tuple[str | None, str | None]:
    """The snapshot name in CURRENT, or why there is none that can be trusted."""
    path = index_dir / "CURRENT"
    if not path.is_file():
        return None, None
    try:
        name = path.read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"CURRENT is unreadable ({type(exc).__name__})"
    if not _SNAPSHOT_NAME.fullmatch(name):
        return None, f"CURRENT does not hold a snapshot name ({name[:40]!r})"
    return name, None


def current_snapshot(index_dir: Path) -> Path | None:
    name, _ = pointer(index_dir)
    if name is None:
        return None
    folder = index_dir / "snapshots" / name
    return folder if (folder / "meta.json").is_file() else None


def candidates(index_dir: Path) -> tuple[list[Path], list[str]]:
    """Snapshot folders to try, best first: CURRENT's, then the others newest first (names sort by time);
    and what is wrong with CURRENT when it cannot be followed."""
    name, problem = pointer(index_dir)
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


def damaged(folder: Path, exc: BaseException) -> str:
    """What a snapshot that failed to read is said to be, with why."""
    why = f"{type(exc).__name__}: {str(exc)[:200]}" if str(exc) else type(exc).__name__
    return f"snapshot {folder.name} is damaged ({why})"


# --- reading and checking -----------------------------------------------------------------------


def load_meta(folder: Path) -> dict[str, Any]:
    """A snapshot's meta.json (OSError or ValueError when it cannot be read)."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("meta.json does not hold an object")
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    """A snapshot's meta.json; one that cannot be read is an IndexMismatchError."""
    try:
        return load_meta(folder)
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"index at {folder} is unreadable; rebuild it with `policyqa build`") from exc


def check_format(meta: dict[str, Any]) -> None:
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {meta.get('format_version')} is not the supported format {FORMAT_VERSION}; "
            "rebuild it with `policyqa build`"
        )


def check_meta(meta: dict[str, Any], model: str, dim: int) -> None:
    """Refuse an index that this code or this model would answer wrongly from."""
    check_format(meta)
    if meta.get("model") != model or meta.get("dim") != dim:
        raise ModelMismatchError(
            f"index was built with model {meta.get('model')!r} ({meta.get('dim')}-d) but {model!r} ({dim}-d) "
            "is configured; rebuild it for the new model with `policyqa build --rebuild-for-model`, "
            f"or set POLICYQA_MODEL={SELECTORS.get(str(meta.get('model')), meta.get('model'))} to use the index's model"
        )


def check_sizes(folder: Path, meta: dict[str, Any]) -> None:
    """Every file as long as when it was written (meta.json lists them): finds truncation anywhere."""
    for name, size in (meta.get("files") or {}).items():
        actual = (folder / name).stat().st_size
        if actual != size:
            raise ValueError(f"{name} is {actual} bytes, {size} were written")


def store_of(meta: dict[str, Any]) -> str:
    """The engine that keeps a snapshot's vectors and BM25."""
    return str(meta.get("store") or DEFAULT_STORE)


def segments(folder: Path, meta: dict[str, Any]) -> list[tuple[str, Path, frozenset[str]]]:
    """A snapshot's segments: name, folder and the doc_ids it no longer answers for (a snapshot without
    segments is one, in its own folder)."""
    if "segments" not in meta:
        return [(folder.name, folder, frozenset())]
    return [(s["name"], folder / "segments" / s["name"], frozenset(s["deleted"])) for s in meta["segments"]]


def read_dictionary(folder: Path) -> list[str]:
    """The domain words a snapshot's passages were segmented with (dictionary.txt)."""
    return (folder / "dictionary.txt").read_text(encoding="utf-8").split()


_CHUNK_FIELDS = frozenset(f.name for f in fields(Chunk))


def read_chunks(folder: Path) -> list[Chunk]:
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


def read_rows(folder: Path) -> dict[str, list[Any]]:
    """A snapshot's or segment's rows.json: doc_id -> [first row, its chunk ids]."""
    rows: dict[str, list[Any]] = json.loads((folder / ROWS).read_text(encoding="utf-8"))
    return rows


def word_rows(folder: Path) -> Iterator[list[Any]]:
    """words.jsonl, a passage a line: [chunk id, its words, each sentence's words]."""
    with (folder / "words.jsonl").open(encoding="utf-8") as fh:
        yield from map(json.loads, fh)


def saved_identities(folder: Path) -> dict[str, dict[str, object]]:
    """A snapshot's or segment's identities.json ({} when it has none: a snapshot from before, described
    again)."""
    try:
        found: dict[str, dict[str, object]] = json.loads((folder / IDENTITIES).read_text(encoding="utf-8"))
        return found
    except (OSError, ValueError):
        return {}


def read_texts(folder: Path, skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Every entry of a snapshot's or segment's texts.jsonl, less the documents in `skip`."""
    offsets = json.loads((folder / "texts.offsets.json").read_text(encoding="utf-8"))
    texts = []
    with (folder / "texts.jsonl").open("rb") as fh:
        for doc_id, (at, size) in offsets.items():
            if doc_id not in skip:
                fh.seek(at)
                texts.append(json.loads(fh.read(size)))
    return texts


def passage_spans(folder: Path, doc_ids: set[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Where each passage of these documents sits in its document's text, in reading order (a snapshot of
    segments: in the segment that answers for the document)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for _, sub, deleted in segments(folder, load_meta(folder)) if doc_ids else ():
        for c in read_chunks(sub):
            if c.doc_id in doc_ids and c.doc_id not in deleted:
                found.setdefault(c.doc_id, []).append((c.start, c.end))
    return {d: tuple(sorted(s)) for d, s in found.items()}


def read_text(folder: Path, doc_id: str, meta: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """One document's entry in a snapshot's texts.jsonl (None: not there, or a snapshot from before); in a
    snapshot of segments, in the segment that answers for the document."""
    try:
        meta = meta if meta is not None else load_meta(folder)
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


# --- writing --------------------------------------------------------------------------------------


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


def snapshot_name() -> str:
    # one clock reading for the seconds and the nanoseconds: two readings straddling a second's end named a later
    # snapshot before an earlier one, and the newest snapshot is the one whose name sorts last
    now = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now // 1_000_000_000)) + f"-{now % 1_000_000_000:09d}"


@contextmanager
def new_folder(index_dir: Path, store: Store) -> Iterator[tuple[Path, str]]:
    """A fresh `.tmp-<name>` folder for a snapshot being written, and its name; dropped with what the store
    kept of it when the writing fails."""
    snapshots = index_dir / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    name = snapshot_name()
    tmp = snapshots / f".tmp-{name}"
    tmp.mkdir()
    try:
        yield tmp, name
    except BaseException:
        discard(tmp, name, store)
        raise


def write_dictionary(folder: Path, words: Iterable[str]) -> None:
    (folder / "dictionary.txt").write_text("\n".join(words) + "\n", encoding="utf-8")


def link_dictionary(source: Path, target: Path) -> None:
    """A snapshot keeps the dictionary of the one it extends (hard-linked, not copied)."""
    os.link(source / "dictionary.txt", target / "dictionary.txt")


def link_segment(source: Path, target: Path, root: bool) -> None:
    """Hard-link a segment's files into a new snapshot (a whole snapshot's, less its own files, when `root`:
    the snapshot extended had no segments)."""
    target.mkdir()
    for path in source.iterdir():
        if path.is_file() and not (root and path.name in SNAPSHOT_FILES):
            os.link(path, target / path.name)


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
        discard(tmp, name, store)
        raise
    replace_file(index_dir / "CURRENT", f"{name}\n".encode())
    store.publish(name)
    _prune(snapshots, name, store)
    return name


def discard(tmp: Path, name: str, store: Store) -> None:
    """Drop a snapshot that was being written, with what the store kept of it outside the folder."""
    shutil.rmtree(tmp, ignore_errors=True)
    store.discard(name)


def set_aside(folder: Path) -> None:
    """Rename a damaged snapshot `.damaged-<name>` (never served again, pruned later)."""
    try:
        os.rename(folder, folder.with_name(f".damaged-{folder.name}"))
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """The folder's files and those of its segments, then the folders themselves."""
    parts = [folder, *sorted((folder / "segments").iterdir())] if (folder / "segments").is_dir() else [folder]
    for part in parts:
        for path in part.iterdir():
            if path.is_file():
                fsync_path(path)
    for part in [*reversed(parts), *([folder / "segments"] if len(parts) > 1 else [])]:
        fsync_path(part)


def clean_leftovers(index_dir: Path, store: Store) -> list[str]:
    """Remove what builds killed in the middle left (`.tmp-<name>` snapshot folders, with what the store kept
    for them, and `.CURRENT.*` files); the caller holds the build lock, so no build is writing any of it.
    Returns the names removed."""
    snapshots = index_dir / "snapshots"
    folders = sorted(snapshots.glob(".tmp-*")) if snapshots.is_dir() else []
    for tmp in folders:
        discard(tmp, tmp.name.removeprefix(".tmp-"), store)
    files = sorted(index_dir.glob(".CURRENT.*"))
    for path in files:
        path.unlink(missing_ok=True)
    return [p.name for p in [*folders, *files]]


def _prune(snapshots: Path, keep: str, store: Store) -> None:
    """Remove old snapshots (all but the newest few) and leftovers of builds that were killed, with what the
    store keeps for them outside the folder."""
    names = sorted(p.name for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in [n for n in names if n != keep][: max(0, len(names) - KEEP_SNAPSHOTS)]:
        shutil.rmtree(snapshots / old, ignore_errors=True)
        store.discard(old)
    for tmp in snapshots.glob(".damaged-*"):
        if time.time() - tmp.stat().st_mtime > 3600:
            shutil.rmtree(tmp, ignore_errors=True)
            store.discard(tmp.name.removeprefix(".damaged-"))
