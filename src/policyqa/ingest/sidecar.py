"""The corpus's own folder `.policyqa/`: JSON-lines files people change beside the documents (operators' known
questions, readers' feedback), each changed under a lock and rewritten atomically. The corpus walk skips
hidden folders, so none of it is indexed as a document."""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from policyqa.durable import replace_file

log = logging.getLogger("policyqa")
FOLDER = ".policyqa"
QUESTIONS = "questions.jsonl"  # the operators' known questions (ingest/questions.py writes, ingest/bank.py reads)


def path(corpus_dir: Path, name: str) -> Path:
    """Where the file `name` of the corpus's own folder is (the folder is not made here)."""
    return corpus_dir / FOLDER / name


@contextmanager
def locked(file: Path) -> Iterator[None]:
    """Hold `file`'s lock (a `.lock` beside it) across processes: two writers never lose each other's line."""
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file.with_name(file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_rows(file: Path) -> list[dict[str, Any]]:
    """The file's JSON objects, in order; a line that is not one (edited by hand) is logged and passed over."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            log.warning("%s line %d is not a JSON object; passed over", file, n)
    return rows


def line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def rewrite(file: Path, lines: Iterable[str]) -> None:
    """Replace the file by `lines` (each ending in a newline): written aside, fsynced, renamed into place, so a
    crash leaves the old file or the new one, never half of one. The caller holds the lock."""
    replace_file(file, "".join(lines).encode("utf-8"))


def stamp(corpus_dir: Path, name: str) -> tuple[tuple[str, int, int], ...]:
    """A sidecar file's (relative path, size, modification time), or nothing when it does not exist: what a
    look for changes compares, beside the corpus's own files (which the corpus walk lists without this folder)."""
    try:
        st = path(corpus_dir, name).stat()
    except OSError:
        return ()
    return ((f"{FOLDER}/{name}", st.st_size, st.st_mtime_ns),)
