"""/api/questions (admin): operators' known questions, listed, added (by a string of the passage or by a search
result's passage) and removed; each change queues the update that re-attaches them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool

from policyqa.api.deps import Admin, ServingEngine, StartedEngine, State
from policyqa.api.schemas import KnownQuestions, QuestionAdded, QuestionBody, QuestionRemoved
from policyqa.engine import Engine
from policyqa.errors import NotFoundError, QuestionError
from policyqa.ingest import questions
from policyqa.ingest.questions import Target

router = APIRouter()
QuestionId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{10}$", description="10 hex digits")]


def targets(eng: Engine, sources: set[str] | None = None) -> dict[str, Target]:
    """The served documents (of `sources` only, when given) with their text, by file."""
    ix = eng.index
    if ix is None:
        return {}
    texts = {}
    for d in ix.documents.values():
        if d.doc_id in eng.hidden or (sources is not None and d.source not in sources):
            continue
        entry = ix.text(d.doc_id)
        if entry is not None:
            texts[d.source] = (d.doc_id, str(entry["text"]))
    spans = passage_spans(eng, {doc_id for doc_id, _ in texts.values()})
    return {source: Target(d, source, text, spans.get(d, ())) for source, (d, text) in texts.items()}


def passage_spans(eng: Engine, doc_ids: set[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Where each passage of these documents sits in its text, in reading order."""
    ix = eng.index
    found: dict[str, list[tuple[int, int]]] = {}
    for c in ix.chunks if ix is not None and doc_ids else ():
        if c.doc_id in doc_ids:
            found.setdefault(c.doc_id, []).append((c.start, c.end))
    return {d: tuple(sorted(s)) for d, s in found.items()}


def listing(eng: Engine, corpus: Path) -> dict[str, Any]:
    found = questions.read(corpus)
    snapshot = eng.index.name if eng.index is not None else None
    return questions.report(found, targets(eng, {q.source for q in found}), snapshot)


@router.get("/api/questions", dependencies=[Admin], summary="Operators' known questions", response_model=KnownQuestions)
def known_questions(eng: StartedEngine, state: State) -> dict[str, Any]:
    return listing(eng, state.settings.corpus_dir)


def resolve(eng: Engine, body: QuestionBody) -> tuple[Target, str]:
    """The document a question is for and the string of it that it points at: `contains` as given, or the
    answering sentence of the passage `chunk_id` names."""
    ix = eng.index
    assert ix is not None  # a ServingEngine
    doc_id, contains, span = body.doc_id, body.contains, None
    if body.chunk_id is not None:
        chunk = next((c for c in ix.chunks if c.chunk_id == body.chunk_id and c.doc_id not in eng.hidden), None)
        if chunk is None:
            raise NotFoundError(f"no passage {body.chunk_id} in the index; search again and use a result's chunk_id")
        doc_id, span = chunk.doc_id, (chunk.start, chunk.end)
    by_source = {d.source: d.doc_id for d in ix.documents.values() if d.doc_id not in eng.hidden}
    if doc_id is None and body.source is not None:
        doc_id = by_source.get(body.source)
        if doc_id is None:
            raise NotFoundError(f"{body.source} is not a document of the index; list them with GET /api/documents")
    if doc_id is None:
        raise QuestionError("doc_id", "doc_id or source", "give the document: doc_id or source (or a chunk_id)")
    info = ix.by_id.get(doc_id)
    entry = ix.text(doc_id) if info is not None and doc_id not in eng.hidden else None
    if info is None or entry is None:
        raise NotFoundError(f"no document with id {doc_id} in the index; list them with GET /api/documents")
    text = str(entry["text"])
    if contains is None:
        if span is None:
            raise QuestionError("contains", "contains or chunk_id", "give the passage: contains or chunk_id")
        contains = questions.answering(body.q, text[span[0] : span[1]])
    return Target(doc_id, info.source, text, passage_spans(eng, {doc_id}).get(doc_id, ())), contains


@router.post(
    "/api/questions",
    status_code=202,
    dependencies=[Admin],
    summary="Add a known question to a passage",
    response_model=QuestionAdded,
)
async def add_question(eng: ServingEngine, state: State, body: QuestionBody) -> dict[str, Any]:
    target, contains = await run_in_threadpool(resolve, eng, body)
    added = await run_in_threadpool(questions.add, state.settings.corpus_dir, body.q, target, contains)
    job = eng.submit("update", f"known question {added.id} added")
    row = questions.listed([added], {target.source: target})[0]
    return {"question": row, "job": job.as_dict()}


@router.delete(
    "/api/questions/{question_id}",
    status_code=202,
    dependencies=[Admin],
    summary="Remove a known question",
    response_model=QuestionRemoved,
)
def remove_question(eng: StartedEngine, state: State, question_id: QuestionId) -> dict[str, Any]:
    (gone,) = questions.remove(state.settings.corpus_dir, [question_id])
    job = eng.submit("update", f"known question {question_id} removed")
    row = questions.listed([gone], targets(eng, {gone.source}))[0]
    return {"removed": row, "job": job.as_dict()}
