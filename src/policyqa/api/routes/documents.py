"""/api/documents: the indexed documents, each one's text and original file; admin: upload and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from policyqa.api.deps import Admin, ServingEngine, StartedEngine, State, started_engine
from policyqa.api.schemas import Documents, DocumentText, Removed, Uploaded
from policyqa.engine import Engine
from policyqa.errors import NotFoundError, TooLargeError
from policyqa.ingest import corpus as corpus_mod
from policyqa.search.filters import day
from policyqa.snapshot.documents import DocInfo
from policyqa.snapshot.index import Index
from policyqa.snapshot.versions import listing, today

router = APIRouter()
DocId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$", description="12 hex digits")]


@router.get("/api/documents", summary="The indexed documents", response_model=Documents)
def documents(
    eng: StartedEngine,
    on: Annotated[
        str | None, Query(max_length=20, description="judge each status on YYYY-MM-DD (default today)")
    ] = None,
) -> dict[str, Any]:
    ix, hidden = eng.index, eng.hidden
    docs = [] if ix is None else [d for d in ix.documents.values() if d.doc_id not in hidden]
    return listing(None if ix is None else ix.name, docs, day("on", on) or today())


def served(eng: Engine, doc_id: str) -> tuple[Index, DocInfo]:
    ix = eng.index
    info = ix.by_id.get(doc_id) if ix is not None else None
    if ix is None or info is None or doc_id in eng.hidden:
        raise NotFoundError(f"no document with id {doc_id} in the index; list them with GET /api/documents")
    return ix, info


@router.get(
    "/api/documents/{doc_id}/text",
    summary="A document's cleaned text, outline and passage offsets",
    response_model=DocumentText,
)
def document_text(eng: ServingEngine, doc_id: DocId) -> dict[str, Any]:
    ix, info = served(eng, doc_id)
    entry = ix.text(doc_id)
    if entry is None:
        raise NotFoundError(f"the index holds no text for {doc_id}; it is written by the next update")
    passages = [
        {"chunk_id": c.chunk_id, "start": c.start, "end": c.end, "section": c.section, "page": c.page}
        for c in ix.chunks
        if c.doc_id == doc_id
    ]
    outline = [{"depth": d, "title": t, "start": at} for d, t, at in entry.get("outline", [])]
    return {
        "doc_id": doc_id,
        "source": info.source,
        "title": info.title,
        "metadata": info.metadata.as_dict(),
        "text": entry["text"],
        "outline": outline,
        "passages": passages,
        "pages": page_starts(entry, passages),
    }


def page_starts(entry: dict[str, Any], passages: list[dict[str, Any]]) -> list[dict[str, int]]:
    """Where each page of a PDF starts: as the snapshot wrote it, or (a snapshot written before it kept them)
    where the first passage of each page starts."""
    if "pages" in entry:
        return [{"page": p, "start": at} for p, at in entry["pages"]]
    first: dict[int, int] = {}
    for p in passages:
        if p["page"] and p["page"] not in first:
            first[p["page"]] = p["start"]
    return [{"page": p, "start": at} for p, at in sorted(first.items())]


@router.get("/api/documents/{doc_id}/original", summary="Download the document's original file")
def document_original(eng: ServingEngine, state: State, doc_id: DocId) -> FileResponse:
    _, info = served(eng, doc_id)
    root = state.settings.corpus_dir.resolve()
    path = root / info.source
    # the file itself, never what a symbolic link put in its place (or at a folder on its path) points at
    if path.resolve() != path or not path.is_file():
        raise NotFoundError(f"the file of {doc_id} ({info.source}) is no longer in the corpus")
    # an attachment, never shown inline: an uploaded .html must not run as this site's page
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.post(
    "/api/documents",
    status_code=202,
    dependencies=[Admin],
    summary="Add or replace a document",
    response_model=Uploaded,
)
async def upload(
    request: Request,
    state: State,
    replace: Annotated[bool, Query(description="replace a document of the same name (else a new name)")] = False,
) -> dict[str, Any]:
    settings = state.settings
    limit = settings.max_upload_bytes  # a body over it by Content-Length was refused by guard.BodyLimit
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestValidationError(
            [{"loc": ("body", "file"), "msg": "send the document as multipart/form-data in the field 'file'"}]
        )
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError(
                [{"loc": ("body", "file"), "msg": "the multipart field 'file' with the document is required"}]
            )
        data = await upload.read(limit + 1)
        name = upload.filename or "document"
        if upload.size is not None and upload.size > limit:  # its whole size, not the limit + 1 bytes read
            raise TooLargeError(f"{name}: the file is {upload.size} bytes; the limit is {limit} bytes")
    eng = started_engine(state)  # after the body is read, as the admin check is before it
    stored = await run_in_threadpool(corpus_mod.add, settings.corpus_dir, name, data, limit, settings.limits, replace)
    eng.unhide(stored.doc_id)
    job = eng.submit("update", f"uploaded {stored.source}")
    return {**stored.__dict__, "job": job.as_dict()}


@router.delete(
    "/api/documents/{doc_id}",
    status_code=202,
    dependencies=[Admin],
    summary="Remove a document",
    response_model=Removed,
)
def delete(eng: StartedEngine, state: State, doc_id: DocId) -> dict[str, Any]:
    docs = eng.index.documents.values() if eng.index is not None else []
    indexed = next((d for d in docs if d.doc_id == doc_id), None)
    try:
        source = corpus_mod.remove(state.settings.corpus_dir, doc_id)
    except NotFoundError:
        if indexed is None:
            raise
        if doc_id in eng.hidden:  # deleted already (its update has not published yet): nothing to do
            raise NotFoundError(
                f"no document with id {doc_id} in the corpus; it was deleted already, and its update is under way"
            ) from None
        source = indexed.source  # the file went already; its passages are still served
    eng.hide(doc_id)
    job = eng.submit("update", f"removed {source}")
    return {"doc_id": doc_id, "source": source, "job": job.as_dict()}
