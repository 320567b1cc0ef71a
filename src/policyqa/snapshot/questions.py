"""A snapshot's known questions: the bank (shipped + the operators') attached to its passages when it is
published, with each question's vector, written beside meta.json and read back by a load.

Files of the snapshot folder (its own, never part of a segment):
    questions.jsonl   a known question a line: the bank line, its "origin", and the chunk ids of the
                      passages it is attached to ([]: an operator's question that holds on to nothing)
    questions.npy     the questions' vectors (float32, a row a line; zeros for those attached to nothing),
                      each encoded as a search encodes a question: alone, normalize_query'd
meta.json's "questions" holds the bank's hashes, so a change of the operators' file makes a new snapshot.
A snapshot from before has neither file: no known questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.embed import Embedder
from policyqa.ingest.bank import Known, Passage, attach, bank_state, corpus_bank, parse_line, wanted
from policyqa.ingest.segment import Segmenter, normalize_query
from policyqa.models import Chunk
from policyqa.snapshot.documents import snapshot_documents
from policyqa.snapshot.layout import (
    QUESTION_VECTORS,
    QUESTIONS,
    current_snapshot,
    read_chunks,
    read_rows,
    read_text,
    segments,
)
from policyqa.store.lexical import BM25


@dataclass(frozen=True)
class Questions:
    """Known questions as a snapshot keeps them: each with the chunk ids it is attached to, and its vector."""

    known: list[Known]
    chunk_ids: list[list[str]]
    vectors: np.ndarray  # len(known) x dim

    @property
    def unmatched(self) -> list[Known]:
        return [k for k, ids in zip(self.known, self.chunk_ids, strict=True) if not ids]


def state(corpus: Path) -> dict[str, str]:
    """What meta.json records of the bank a snapshot of `corpus` attaches (a change means a new snapshot)."""
    return bank_state(corpus)


def bank_passages(folder: Path, meta: dict[str, Any], bank: list[Known]) -> list[Chunk]:
    """The live passages of a snapshot (written in `folder`, `meta` not yet saved) that bank questions may be
    attached to: only the documents of the laws and sources the bank names are read."""
    wants = wanted(bank)
    docs = {d.doc_id for d in snapshot_documents(folder, meta).values() if wants(d.source, d.title)}
    out: list[Chunk] = []
    for _, sub, deleted in segments(folder, meta):
        if docs & (read_rows(sub).keys() - deleted):
            out += [c for c in read_chunks(sub) if c.doc_id in docs and c.doc_id not in deleted]
    return out


def attach_questions(folder: Path, meta: dict[str, Any], corpus: Path, embedder: Embedder, index_dir: Path) -> None:
    """Attach the bank to the passages of the snapshot written in `folder` and write its questions files;
    records the bank's state in `meta`. Vectors of questions the served snapshot holds are reused."""
    bank = corpus_bank(corpus)
    chunks = bank_passages(folder, meta, bank)
    spans = _spans(folder, meta, chunks, {k.source for k in bank if not k.law})
    attached = attach(
        bank, [Passage(c.source, c.title, c.section, c.text, s) for c, s in zip(chunks, spans, strict=True)]
    )
    kept = [(k, [chunks[n].chunk_id for n in rows]) for k, rows in zip(bank, attached.rows, strict=True)]
    kept = [(k, ids) for k, ids in kept if ids or k in attached.unmatched]
    before = _previous_vectors(index_dir, embedder)
    vectors = np.zeros((len(kept), embedder.dim), np.float32)
    for n, (k, ids) in enumerate(kept):
        if ids:
            found = before.get(k.q)
            vectors[n] = found if found is not None else embedder.encode_queries([normalize_query(k.q)])[0]
    with (folder / QUESTIONS).open("w", encoding="utf-8") as fh:
        for k, ids in kept:
            fh.write(json.dumps({**k.as_dict(), "chunks": list(dict.fromkeys(ids))}, ensure_ascii=False) + "\n")
    np.save(folder / QUESTION_VECTORS, vectors)
    meta["questions"] = state(corpus)


def _spans(folder: Path, meta: dict[str, Any], chunks: list[Chunk], sources: set[str]) -> list[str]:
    """Each passage's span of its document's text, for the documents operators' questions name ("" for the
    others): the text their strings were checked against, which a table row's passage reads otherwise."""
    texts: dict[str, str] = {}
    out = []
    for c in chunks:
        if c.source in sources and c.doc_id not in texts:
            entry = read_text(folder, c.doc_id, meta)
            texts[c.doc_id] = str(entry["text"]) if entry is not None else ""
        out.append(texts[c.doc_id][c.start : c.end] if c.source in sources else "")
    return out


def _previous_vectors(index_dir: Path, embedder: Embedder) -> dict[str, np.ndarray]:
    """The served snapshot's question vectors by question, when they were made by this model."""
    folder = current_snapshot(index_dir)
    if folder is None:
        return {}
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("model") != embedder.name:
            return {}
        found = read_questions(folder)
    except (OSError, ValueError):
        return {}
    if found is None:
        return {}
    return {k.q: v for k, ids, v in zip(found.known, found.chunk_ids, found.vectors, strict=True) if ids}


def read_questions(folder: Path) -> Questions | None:
    """A snapshot's known questions; None for a snapshot written before them."""
    if not (folder / QUESTIONS).is_file():
        return None
    known, ids = [], []
    for line in (folder / QUESTIONS).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        k = parse_line(row, str(row.get("origin") or ""))
        if k is None:
            raise ValueError(f"{QUESTIONS} in {folder} holds a line that is no known question")
        known.append(k)
        ids.append([str(c) for c in row.get("chunks", [])])
    vectors = np.load(folder / QUESTION_VECTORS).astype(np.float32)
    if len(vectors) != len(known):
        raise ValueError(f"{len(known)} known questions, {len(vectors)} vectors in {folder}")
    return Questions(known, ids, vectors)


@dataclass(frozen=True)
class KnownQuestions:
    """The known questions a search compares a question with: those attached to a passage of the loaded
    snapshot, each with its passage rows (Index.chunks positions), its vector, and a BM25 over their words."""

    known: list[Known]
    rows: list[list[int]]
    vectors: np.ndarray
    lexical: BM25
    unmatched: list[Known]

    @classmethod
    def of(cls, found: Questions | None, chunks: list[Chunk], segmenter: Segmenter) -> KnownQuestions:
        if found is None:
            return cls([], [], np.zeros((0, 0), np.float32), BM25.build([]), [])
        wanted = {i for ids in found.chunk_ids for i in ids}
        at: dict[str, list[int]] = {}
        for n, c in enumerate(chunks):
            if c.chunk_id in wanted:
                at.setdefault(c.chunk_id, []).append(n)
        keep = [n for n, ids in enumerate(found.chunk_ids) if any(i in at for i in ids)]
        known = [found.known[n] for n in keep]
        rows = [[r for i in found.chunk_ids[n] for r in at.get(i, [])] for n in keep]
        lexical = BM25.build([segmenter.words_of(k.q) for k in known])
        return cls(known, rows, found.vectors[keep], lexical, found.unmatched)
