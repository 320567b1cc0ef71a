"""Durable writes: a file written aside, fsynced, renamed (or linked) into place, and its folder fsynced, so
that once a write returns it survives a kill -9 or a power cut, and a crash before leaves the old file whole.

The one implementation of it: the corpus's uploads (ingest/corpus.py), the corpus's own files
(ingest/sidecar.py) and the index's CURRENT pointer (snapshot/layout.py) all write through it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path | str) -> None:
    """Flush a file's or a folder's entry (a folder: the names in it, after a rename or a link) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def written_aside(folder: Path, prefix: str, data: bytes) -> Iterator[Path]:
    """A temporary file in `folder`, named `prefix` and random characters, holding `data` flushed to the disk,
    for the caller to rename or link into place; removed on leaving (a link made from it stays). The caller
    then fsyncs `folder`."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def replace_file(file: Path, data: bytes) -> None:
    """Replace `file` by `data`, durably: a reader sees the old bytes or the new ones, never part of either."""
    with written_aside(file.parent, f".{file.name}.", data) as tmp:
        os.replace(tmp, file)
    fsync_path(file.parent)
