"""One file as the index would hold it, without building: title, metadata, sections, what each removal
rule took, the passages, and how much of the body the passages cover."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath

from policyqa.errors import DocumentError
from policyqa.ingest import formats, sandbox, validity
from policyqa.ingest.bank import Known, Passage, attach
from policyqa.ingest.chunk import ChunkSettings, chunk_document
from policyqa.ingest.limits import Limits
from policyqa.ingest.metadata import extract
from policyqa.models import Chunk, Document

EXAMPLES = 3


@dataclass(frozen=True)
class Removal:
    rule: str
    count: int
    characters: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Inspection:
    document: Document
    passages: tuple[Chunk, ...]
    removals: tuple[Removal, ...]
    coverage: float  # share of the body's characters (whitespace aside) inside some passage
    questions: tuple[tuple[str, ...], ...] = ()  # per passage, the known questions a build attaches to it

    @property
    def ocr_confidence(self) -> float:
        """The mean confidence of the lines read by OCR (0 when no page was)."""
        pages = self.document.scanned
        lines = sum(p.lines for p in pages)
        return sum(p.confidence * p.lines for p in pages) / lines if lines else 0.0

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(p.section for p in self.passages if p.section))

    def as_dict(self) -> dict[str, object]:
        doc = self.document
        return {
            "source": doc.source,
            "doc_id": doc.doc_id,
            "title": doc.title,
            "metadata": (metadata := extract(doc)).as_dict(),
            "validity": validity.extract(doc, metadata.date).as_dict(),
            "characters": len(re.sub(r"\s+", "", doc.text)),
            "coverage": round(self.coverage, 4),
            "sections": self.sections,
            "ocr": {
                "pages": [asdict(p) for p in doc.scanned],
                "confidence": round(self.ocr_confidence, 4),
            },
            "removed": {
                r.rule: {"count": r.count, "characters": r.characters, "examples": list(r.examples)}
                for r in self.removals
            },
            "passages": [
                {
                    "text": p.text,
                    "section": p.section,
                    "kind": p.kind,
                    "page": p.page,
                    "start": p.start,
                    "end": p.end,
                    "questions": list(self.questions[n]) if self.questions else [],
                }
                for n, p in enumerate(self.passages)
            ],
        }


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def coverage(doc: Document, passages: list[Chunk] | tuple[Chunk, ...]) -> float:
    """Share of the non-whitespace characters of the cleaned text that some passage holds: by its span, or,
    for a heading that opens no passage (a table's title, its header row), by every cell of it appearing
    in some passage's text (table rows show their title and column labels)."""
    covered = bytearray(len(doc.text))
    for p in passages:
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
    shown = "\n".join(_squash(p.text) for p in passages)
    for block in doc.blocks:
        if block.kind in ("heading", "table_header") and not all(covered[block.start : block.end]):
            cells = [_squash(c) for c in block.text.split("\t")]
            if all(c in shown for c in cells if c):
                covered[block.start : block.end] = b"\x01" * (block.end - block.start)
    total = hit = 0
    for ch, flag in zip(doc.text, covered, strict=True):
        if not ch.isspace():
            total += 1
            hit += flag
    return hit / total if total else 1.0


def removals(doc: Document) -> tuple[Removal, ...]:
    by_rule: dict[str, list[str]] = {}
    for rule, text in doc.removed:
        by_rule.setdefault(rule, []).append(text)
    return tuple(
        Removal(rule, len(texts), sum(len(re.sub(r"\s+", "", t)) for t in texts), tuple(texts[:EXAMPLES]))
        for rule, texts in by_rule.items()
    )


def inspect_document(doc: Document, settings: ChunkSettings | None = None) -> Inspection:
    passages = chunk_document(doc, settings)
    return Inspection(doc, tuple(passages), removals(doc), coverage(doc, passages))


def with_questions(found: Inspection, bank: Sequence[Known]) -> Inspection:
    """The inspection with the known questions of `bank` that a build attaches to each passage."""
    got = attach(
        bank,
        [Passage(p.source, p.title, p.section, p.text, found.document.text[p.start : p.end]) for p in found.passages],
    )
    per: list[list[str]] = [[] for _ in found.passages]
    for k, rows in zip(bank, got.rows, strict=True):
        for r in rows:
            per[r].append(k.q)
    return replace(found, questions=tuple(tuple(dict.fromkeys(q)) for q in per))


def inspect_file(
    path: Path, source: str | None = None, settings: ChunkSettings | None = None, limits: Limits | None = None
) -> Inspection:
    """Read one file (in the corpus or not) as a build would: under the same limits, in a child process of
    its own (sandbox.py), so a file the index would refuse is refused here too; raises DocumentError naming
    it. A file whose extension says nothing is read as its content says, as an upload would be stored."""
    name = source or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{name}: cannot read ({exc.strerror})") from exc
    if not formats.supported(path.name):
        sniffed = formats.sniff(data)
        if sniffed is None:
            suffix = path.suffix.lower() or "(none)"
            raise DocumentError(f"{name}: unsupported file type {suffix}; use {formats.extensions()}")
        name = PurePosixPath(name).with_suffix(sniffed).as_posix()
    return inspect_document(sandbox.parse(data, name, limits), settings)
