"""Readers' 有帮助 / 没帮助 marks on results: `<corpus>/.policyqa/feedback.jsonl`, a bounded log (the oldest
marks dropped past a number of lines or bytes) that operators read to turn helpful marks into known questions."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from policyqa.ingest import sidecar

FILE = "feedback.jsonl"


@dataclass(frozen=True)
class Mark:
    q: str
    chunk_id: str
    doc_id: str
    helpful: bool
    snapshot: str  # the snapshot that answered (a passage's id may be gone from a later one)
    time: str  # UTC, ISO 8601

    @classmethod
    def new(cls, q: str, chunk_id: str, doc_id: str, helpful: bool, snapshot: str) -> Mark:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(" ".join(q.split()), chunk_id, doc_id, helpful, snapshot, when)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tally:
    """The marks of one passage."""

    chunk_id: str
    doc_id: str
    helpful: int
    unhelpful: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def path(corpus_dir: Path) -> Path:
    return sidecar.path(corpus_dir, FILE)


def record(corpus_dir: Path, mark: Mark, max_lines: int, max_bytes: int) -> None:
    """Append the mark; past `max_lines` lines or `max_bytes` bytes the oldest marks are dropped (the file is
    then rewritten atomically)."""
    file = path(corpus_dir)
    new = sidecar.line(mark.as_dict())
    with sidecar.locked(file):
        with file.open("a", encoding="utf-8") as fh:
            fh.write(new)
        data = file.read_bytes()
        if data.count(b"\n") > max_lines or len(data) > max_bytes:
            lines = data.decode("utf-8", "replace").splitlines(keepends=True)[-max_lines:]
            size = sum(len(x.encode()) for x in lines)
            while lines and size > max_bytes:
                size -= len(lines.pop(0).encode())
            sidecar.rewrite(file, lines)


def marks(corpus_dir: Path) -> list[Mark]:
    """The marks, newest first (lines without the fields are passed over)."""
    fields = Mark.__dataclass_fields__
    rows = sidecar.read_rows(path(corpus_dir))
    return [Mark(**{f: r[f] for f in fields}) for r in reversed(rows) if all(f in r for f in fields)]


def tallies(found: list[Mark]) -> list[Tally]:
    """Each marked passage with its counts, the most helpful first."""
    helpful = Counter(m.chunk_id for m in found if m.helpful)
    unhelpful = Counter(m.chunk_id for m in found if not m.helpful)
    docs = {m.chunk_id: m.doc_id for m in found}
    rows = [Tally(c, docs[c], helpful[c], unhelpful[c]) for c in docs]
    return sorted(rows, key=lambda t: (-t.helpful, t.unhelpful, t.chunk_id))
