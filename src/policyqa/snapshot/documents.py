"""A snapshot's documents: the row each keeps (DocInfo, in meta.json or beside its passages in a segment's
documents.json), read back and listed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.ingest.metadata import Metadata
from policyqa.ingest.validity import Validity
from policyqa.models import Chunk
from policyqa.snapshot.layout import BARE, DOCUMENTS, segments


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
    validity: Validity = field(default_factory=Validity)  # read at ingestion (validity.extract)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocInfo:
        """From meta.json; snapshots written before metadata or validity existed read as having none."""
        return cls(
            **{
                **data,
                "metadata": Metadata.from_dict(data.get("metadata")),
                "validity": Validity.from_dict(data.get("validity")),
            }
        )

    def as_dict(self) -> dict[str, Any]:
        # by hand, as Metadata.as_dict: every document's row is written when a large index is first updated
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "metadata": self.metadata.as_dict(),
            "validity": self.validity.as_dict(),
        }

    def row(self) -> dict[str, Any]:
        """The document as the API and `policyqa documents --json` list it (indexed_at in UTC, ISO 8601)."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.indexed_at))
        return {**self.as_dict(), "indexed_at": when}


def document_rows(chunks: list[Chunk]) -> tuple[list[str], np.ndarray]:
    """The documents of these passages in the order of their first passage, and each passage's document
    number among them."""
    ids = list(dict.fromkeys(c.doc_id for c in chunks))
    row = {d: n for n, d in enumerate(ids)}
    return ids, np.array([row[c.doc_id] for c in chunks], np.int64)


def read_documents(folder: Path) -> list[DocInfo]:
    """A segment's documents.json: those whose passages it holds (deleted ones too)."""
    return [DocInfo.from_dict(d) for d in json.loads((folder / DOCUMENTS).read_text(encoding="utf-8"))]


def write_documents(folder: Path, rows: list[dict[str, Any]]) -> None:
    """A segment's documents.json (DocInfo rows): a snapshot of segments keeps each document's row with its
    passages, so an update writes the rows of the documents it changed, not of every document."""
    (folder / DOCUMENTS).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def snapshot_documents(folder: Path, meta: dict[str, Any]) -> dict[str, DocInfo]:
    """A snapshot's documents by source: meta.json's list, or (a snapshot of segments) each segment's
    documents that it still answers for, and those without passages."""
    if lists_documents(meta):
        return {d["source"]: DocInfo.from_dict(d) for d in meta.get("documents", [])}
    return live_documents(((deleted, read_documents(sub)) for _, sub, deleted in segments(folder, meta)), meta)


def lists_documents(meta: dict[str, Any]) -> bool:
    """Whether meta.json lists the snapshot's documents: a whole snapshot, or one of segments written before
    segments kept their own."""
    return "documents" in meta or "segments" not in meta


def live_documents(parts: Iterable[tuple[frozenset[str], list[DocInfo]]], meta: dict[str, Any]) -> dict[str, DocInfo]:
    """A segment answers for the documents of its passages that it has not deleted (a document without
    passages is in no segment: meta.json's "bare" lists them)."""
    found = {
        info.source: info for deleted, docs in parts for info in docs if info.chunks and info.doc_id not in deleted
    }
    found.update((d["source"], DocInfo.from_dict(d)) for d in meta.get(BARE, []))
    return dict(sorted(found.items()))
