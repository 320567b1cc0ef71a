"""The corpus folder as operators change it: add a document (safe name, checked content), find, remove.

Used by the admin API and by `policyqa add` / `policyqa remove`; the index follows with an update.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from policyqa.durable import fsync_path, written_aside
from policyqa.errors import LIST_DOCUMENTS, DocumentError, NotFoundError, TooLargeError, UploadError
from policyqa.ingest import formats, sandbox
from policyqa.ingest import loaders as ingest
from policyqa.ingest.limits import Limits

UPLOADING = ".upload-"  # an upload being written (hidden: never indexed); left only by a crash
MAX_NAME = 120
MAX_NAME_BYTES = 200  # file systems allow 255 bytes; leave room for a collision suffix
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_DOC_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class Stored:
    doc_id: str
    source: str  # path relative to the corpus folder
    size: int
    sha256: str
    replaced: bool  # a document of that name was there before
    unchanged: bool = False  # the same bytes were there already under `source`: nothing was written


def safe_name(name: str, data: bytes) -> str:
    """A file name that stays inside the corpus folder and whose extension matches the content.

    Directory parts (`../../x.txt`, `C:\\x.txt`) are dropped, control and reserved characters replaced,
    leading dots removed (hidden files are not indexed) and the extension set from the content itself.
    """
    base = PureWindowsPath(PurePosixPath(clean_name(name or "")).name).name
    base = _UNSAFE.sub("_", base).strip().lstrip(".").strip()
    found = formats.recognise(data)
    if found is None:
        raise UploadError(f"{name}: the file is neither {formats.kinds()}; use one of {formats.extensions(' ', ' ')}")
    stem, suffix = os.path.splitext(base)
    named = formats.by_name(base)  # text saved as .md stays .md, and a page saved as .htm stays .htm
    kind = suffix.lower() if named is not None and named.family == found.family else found.extensions[0]
    stem = stem.strip(" ._") or "document"
    stem = stem[: MAX_NAME - len(kind)]
    while len(stem.encode("utf-8")) > MAX_NAME_BYTES - len(kind):
        stem = stem[:-1]
    return stem + kind


def clean_name(name: str) -> str:
    """An upload's name as its author wrote it: GBK bytes that arrived as Latin-1 decoded again, NFC, without
    the invisible characters (bidi controls, zero-width, soft hyphen) that make one name look like another in
    the admin table, and on one line."""
    if name and max(name) <= "\xff" and any(c >= "\x80" for c in name):
        raw = name.encode("latin-1")
        readings = []
        for codec in ("utf-8", "gb18030"):
            with contextlib.suppress(UnicodeDecodeError):
                readings.append(raw.decode(codec))
        # Two-byte GBK pairs can also be valid UTF-8 (of Greek or Hebrew): the reading with Chinese wins.
        chinese = [r for r in readings if any("\u4e00" <= c <= "\u9fff" for c in r)]
        utf8 = raw.decode("utf-8", "replace")
        if chinese or utf8 in readings:
            name = chinese[0] if chinese else utf8
    name = name.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?" (then "_")
    name = unicodedata.normalize("NFC", name)
    # line and paragraph separators (U+2028, U+2029) and controls (C0, C1: NEL) break a name over lines in a
    # log, a listing or a citation: each becomes "_"; the invisible format characters go
    return "".join("_" if _breaks(c) else c for c in name if unicodedata.category(c) != "Cf")


def _breaks(c: str) -> bool:
    return unicodedata.category(c) in ("Zl", "Zp", "Cc")


def check(name: str, data: bytes, max_bytes: int | None = None, limits: Limits | None = None) -> str:
    """The safe name a document would be stored under, once it is known to be small enough and readable
    (parsed in a child process under `limits`, so a parse bomb costs the child only)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLargeError(f"{name}: the file is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data:
        raise UploadError(f"{name}: the file is empty")
    source = safe_name(name, data)
    try:
        sandbox.parse(data, source, limits)
    except DocumentError as exc:
        raise UploadError(str(exc)) from exc
    return source


def add(
    corpus_dir: Path,
    name: str,
    data: bytes,
    max_bytes: int | None = None,
    limits: Limits | None = None,
    replace: bool = False,
) -> Stored:
    """Store one document in the corpus folder under a safe name, after checking that it can be read.

    Nothing is written for a file that is too large, of an unknown type, or unreadable. A document of the
    same name is replaced (a new version) only when `replace`; otherwise the new one gets a free name
    (通知-2.txt), unless the same bytes are already there under that name or one of its variants: then
    nothing is written and that document is the answer (an upload sent twice is one document). The write is
    atomic, so the index never sees half a file.
    """
    return store(corpus_dir, check(name, data, max_bytes, limits), data, replace)


def store(corpus_dir: Path, source: str, data: bytes, replace: bool = False) -> Stored:
    """Write a document that `check` accepted under the name it returned, or the first free variant of it
    (atomically: a file appears whole or not at all, and a concurrent upload never takes the same name), and
    durably: on return the file and its name are on the disk, so an acknowledged upload survives a crash."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    with written_aside(corpus_dir, UPLOADING, data) as tmp:
        replaced = unchanged = False
        if replace:
            unchanged = _holds(corpus_dir, source, data)
            replaced = not unchanged and (corpus_dir / source).exists()
            if not unchanged:  # the same bytes again would only move the file's time and re-index it
                os.replace(tmp, corpus_dir / source)
        else:
            source, unchanged = _link_free(tmp, corpus_dir, source, data)
    if not unchanged:
        fsync_path(corpus_dir)  # the new name is on the disk before the upload is acknowledged
    digest = hashlib.sha256(data).hexdigest()
    return Stored(ingest.document_id(source), source, len(data), digest, replaced, unchanged)


def _holds(corpus_dir: Path, source: str, data: bytes) -> bool:
    """Whether the corpus file `source` is exactly `data` (a larger one is not read; a link is not followed)."""
    try:
        return ingest.read_file(corpus_dir, source, len(data)) == data
    except DocumentError:
        return False


def _link_free(tmp: Path, corpus_dir: Path, source: str, data: bytes) -> tuple[str, bool]:
    """The name the document takes, and whether it was there already: the first name of source, stem-2,
    stem-3 ... that is free (taken by a link, which fails if the name is taken, unlike a rename), unless one
    before it holds these very bytes."""
    stem, suffix = os.path.splitext(source)
    for n in range(1, 10_000):
        name = source if n == 1 else f"{stem}-{n}{suffix}"
        try:
            os.link(tmp, corpus_dir / name)
            return name, False
        except FileExistsError:
            if _holds(corpus_dir, name, data):
                return name, True
    raise UploadError(f"{source}: too many documents of that name; delete some or upload with replace")


def clean_leftovers(corpus_dir: Path, older_than: float = 60.0) -> list[str]:
    """Remove uploads a crash left half-written (`.upload-*` older than `older_than` seconds: a younger one
    may be another process's, being written now). Returns their names."""
    removed = []
    for path in corpus_dir.glob(UPLOADING + "*") if corpus_dir.is_dir() else []:
        with contextlib.suppress(OSError):
            if time.time() - path.lstat().st_mtime > older_than:
                path.unlink()
                removed.append(path.name)
    return removed


def find(corpus_dir: Path, wanted: str) -> Path:
    """The corpus file whose doc_id is `wanted`."""
    if not _DOC_ID.match(wanted):
        raise NotFoundError(f"{wanted!r} is not a document id (12 hex digits, as listed by {LIST_DOCUMENTS})")
    if corpus_dir.is_dir():
        for path in ingest.corpus_files(corpus_dir):
            if ingest.document_id(path.relative_to(corpus_dir).as_posix()) == wanted:
                return path
    raise NotFoundError(f"no document with id {wanted} in the corpus; list them with {LIST_DOCUMENTS}")


def remove(corpus_dir: Path, wanted: str) -> str:
    """Delete the document file with this doc_id; returns its source path."""
    path = find(corpus_dir, wanted)
    source = path.relative_to(corpus_dir).as_posix()
    path.unlink()
    fsync_path(path.parent)  # gone for good once the delete is acknowledged, power cut or not
    return source
