"""HTTP edge: create_app(settings) -> FastAPI. Routes parse input, make one library call, format output."""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from policyqa import corpus as corpus_mod
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.errors import (
    CorpusError,
    FilterError,
    IndexMissingError,
    NotFoundError,
    PolicyQAError,
    QueryError,
    TooLargeError,
    UploadError,
)
from policyqa.filters import make as make_filters
from policyqa.guard import BodyLimit, SecurityHeaders
from policyqa.messages import chinese
from policyqa.results import group_size, payload
from policyqa.search import MAX_QUERY
from policyqa.store import connect

log = logging.getLogger("policyqa")


def web_dir() -> Path:
    """The static page: packaged inside the wheel, or web/ at the top of a source checkout."""
    packaged = Path(__file__).parent / "web"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "web"


class SearchBody(BaseModel):
    q: str = Field(..., description="The question, 1-500 characters", examples=["南京有几个国家级创新型产业集群？"])
    k: int = Field(5, ge=1, le=50, description="How many passages to return (1-50)")
    doc_id: list[str] = Field(default_factory=list, max_length=100, description="only these documents (doc_id)")
    folder: str | None = Field(None, max_length=500, description="only documents under this corpus folder")
    issuer: str | None = Field(None, max_length=100, description="only documents whose 发文机关 contains this")
    after: str | None = Field(None, max_length=20, description="only documents dated on or after (YYYY-MM-DD)")
    before: str | None = Field(None, max_length=20, description="only documents dated on or before (YYYY-MM-DD)")
    group: bool = Field(False, description="the best passage of each document, with more from it under `more`")

    @field_validator("q")
    @classmethod
    def valid_text(cls, q: str) -> str:
        return valid_text(q)


def valid_text(text: str) -> str:
    """Text that can be written out again: no lone surrogates (JSON allows "\\ud800"; UTF-8 does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        message = "the text holds a lone surrogate (an invalid \\uD800-\\uDFFF escape); send valid Unicode"
        raise ValueError(message) from None
    return text


# What an OSError means to the client: the status, and what to do about it.
_OS_ERRORS = {
    errno.ENOSPC: (507, "free disk space on the server and retry"),
    errno.EDQUOT: (507, "raise the disk quota on the server and retry"),
    errno.EFBIG: (507, "the file is too large for the server's disk"),
    errno.EROFS: (507, "the corpus or index folder is read-only; the operator must make it writable"),
    errno.EIO: (507, "the server's disk failed; the operator must check it"),
    errno.ENAMETOOLONG: (422, "use a shorter file name"),
    errno.EILSEQ: (422, "use a file name in valid UTF-8"),
    errno.EACCES: (403, "the service may not write there; the operator must fix the folder's permissions"),
    errno.EPERM: (403, "the service may not write there; the operator must fix the folder's permissions"),
    errno.ENOENT: (404, "the file or folder is gone; retry, or check the corpus folder"),
}


def os_error_response(exc: OSError) -> tuple[int, str]:
    code, advice = _OS_ERRORS.get(exc.errno or 0, (409, "retry; if it persists, the operator must check the server"))
    name = errno.errorcode.get(exc.errno or 0, "OSError")
    return code, f"{exc.strerror or exc} ({name}); {advice}"


def get_engine(request: Request) -> Engine:
    """Dependency: the engine serving searches, once its index is loaded."""
    state: dict[str, Any] = request.app.state.policyqa
    eng: Engine | None = state["engine"]
    if eng is None or eng.index is None:
        raise IndexMissingError(state["error"] or "the index is still loading; retry in a few seconds")
    return eng


EngineDep = Annotated[Engine, Depends(get_engine)]


def _error(
    code: int, message: str, headers: dict[str, str] | None = None, zh: str | None = None, **extra: Any
) -> JSONResponse:
    """An error as JSON: `error` (English, for machines and logs), a Chinese `message` for people, and
    whatever names the cause (`field`, `rule`)."""
    field = extra.get("field")
    text = zh or chinese(message, code, field if isinstance(field, str) else None)
    return JSONResponse(status_code=code, content={"error": message, "message": text, **extra}, headers=headers)


class Denied(Exception):
    """An admin request without the right to make it (403: admin disabled; 401: no or wrong token)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The service. The index is loaded (or built) at startup and handed to routes through a dependency."""
    state: dict[str, Any] = {"engine": engine, "error": None}

    def start() -> None:
        try:
            eng = state["engine"] or Engine.start(
                settings.corpus_dir,
                settings.index_dir,
                settings.model,
                settings.model_dir,
                settings.threads,
                settings.micro_batch,
                settings.rebuild_for_model,
                connect(settings.store, settings.qdrant_url, settings.qdrant_api_key),
            )
            eng.limits = settings.limits
            state["engine"] = eng
            # Serve what is on disk at once; pick up documents dropped in while the service was down, and
            # write a whole snapshot when the one CURRENT names was damaged.
            eng.submit("update", "service start")
        except PolicyQAError as exc:
            state["error"] = str(exc)
            log.error("policyqa cannot serve: %s", exc)
        except Exception as exc:  # whatever it is, health must say it rather than "starting" for ever
            state["error"] = f"the service failed to start ({type(exc).__name__}: {exc}); see the server log"
            log.exception("policyqa cannot serve")

    async def watch() -> None:
        while settings.watch_seconds > 0:
            await asyncio.sleep(settings.watch_seconds)
            eng: Engine | None = state["engine"]
            if eng is not None:
                try:
                    await run_in_threadpool(eng.poll)
                except Exception:  # keep watching whatever one look ran into
                    log.exception("watching %s failed", settings.corpus_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=start, name="policyqa-start", daemon=True)
        thread.start()
        watcher = asyncio.create_task(watch())
        yield
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher

    app = FastAPI(
        title="policyqa",
        description="Document-grounded question answering over Chinese policy documents.",
        version="0.1.0",
        lifespan=lifespan,
    )

    app.state.policyqa = state

    def body_limit(scope: Any) -> tuple[int, str]:
        if scope.get("path") == "/api/documents" and scope.get("method") == "POST":
            return settings.max_upload_bytes + 64 * 1024, "split the document or raise POLICYQA_MAX_UPLOAD_BYTES"
        return settings.max_body_bytes, "send a shorter body (a question is at most 500 characters)"

    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(SecurityHeaders)  # outermost: also on the 413s above and on every error

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> JSONResponse:
        code, message = os_error_response(exc)
        log.error("%s %s: %s", request.method, request.url.path, message)
        return _error(code, message)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", []) if p not in ("query", "body", "path")]
        field = ".".join(loc) or "body"
        rule = first.get("msg", "invalid value")
        return _error(422, f"{field}: {rule}", field=field, rule=rule)

    @app.exception_handler(FilterError)
    async def bad_filter(request: Request, exc: FilterError) -> JSONResponse:
        return _error(422, str(exc), field=exc.field, rule=exc.rule)

    @app.exception_handler(QueryError)
    async def bad_query(request: Request, exc: QueryError) -> JSONResponse:
        return _error(422, str(exc), field="q", rule=f"1-{MAX_QUERY} characters after trimming")

    @app.exception_handler(IndexMissingError)
    async def not_ready(request: Request, exc: IndexMissingError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(CorpusError)
    async def corpus(request: Request, exc: CorpusError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.code == 401 else None
        return _error(exc.code, str(exc), headers)

    @app.exception_handler(TooLargeError)
    async def too_large(request: Request, exc: TooLargeError) -> JSONResponse:
        return _error(413, f"{exc}; split the document or raise POLICYQA_MAX_UPLOAD_BYTES", field="file")

    @app.exception_handler(UploadError)
    async def refused(request: Request, exc: UploadError) -> JSONResponse:
        return _error(422, str(exc), field="file", rule="a readable .txt .md .html .docx or .pdf file")

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return _error(404, str(exc))

    def admin(request: Request) -> None:
        """Dependency of every mutating endpoint: `Authorization: Bearer <POLICYQA_ADMIN_TOKEN>`."""
        token = settings.admin_token
        if not token:
            raise Denied(403, "admin endpoints are disabled; set POLICYQA_ADMIN_TOKEN for the service and restart it")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        ok = hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
        if scheme.lower() != "bearer" or not ok:
            raise Denied(401, "missing or wrong admin token; send the header Authorization: Bearer <token>")

    Admin = Depends(admin)

    def ready_engine() -> Engine:
        eng: Engine | None = state["engine"]
        if eng is None:
            raise IndexMissingError(state["error"] or "the service is still starting; retry in a few seconds")
        return eng

    @app.get("/api/health", summary="200 when the index is loaded and searches can be served")
    def health() -> JSONResponse:
        eng = state["engine"]
        if eng is None or eng.index is None:
            detail = state["error"] or (eng.last_error if eng else None)
            damage = list(eng.damage) if eng else []
            if detail is None and eng is not None:
                job = eng.status()["job"]
                progress = f": {job['done']}/{job['total']} passages embedded" if job and job["total"] else ""
                detail = f"building the index from the corpus{progress}"
                if damage:
                    detail = f"no snapshot loads ({'; '.join(damage)}); rebuilding the index from the corpus{progress}"
            status = "failed" if state["error"] else ("rebuilding" if damage else "starting")
            zh = {
                "starting": "服务正在启动：正在加载模型和索引，请稍候。",
                "rebuilding": "索引已损坏，正在根据文档库重建，请稍候。",
            }.get(status) or f"服务无法启动：{chinese(detail or '', 503)}"
            return _error(
                503, detail or "starting: loading the model and the index", zh=zh, status=status, damaged=damage
            )
        ix = eng.index
        return JSONResponse(
            {
                "status": "ok",
                "model": eng.embedder.name,
                "snapshot": ix.name,
                "documents": len(ix.documents),
                "chunks": len(ix.chunks),
                "damaged": list(eng.damage),  # snapshots passed over since the start, each with why
            }
        )

    def answer(eng: Engine, q: str, k: int, group: bool, *filter_values: Any) -> JSONResponse:
        filters = make_filters(*filter_values)
        result = eng.search(q, group_size(k) if group else k, filters=filters)
        return JSONResponse(payload(result, eng.index, group, k))

    @app.get("/api/search", summary="Ranked passages for a question")
    def search_get(
        eng: EngineDep,
        q: Annotated[str, Query(description="The question, 1-500 characters")],
        k: Annotated[int, Query(ge=1, le=50, description="How many passages (1-50)")] = 5,
        doc_id: Annotated[list[str] | None, Query(max_length=100, description="only these documents")] = None,
        folder: Annotated[str | None, Query(max_length=500, description="only documents under this folder")] = None,
        issuer: Annotated[str | None, Query(max_length=100, description="only this 发文机关 (part of it)")] = None,
        after: Annotated[str | None, Query(max_length=20, description="dated on or after YYYY-MM-DD")] = None,
        before: Annotated[str | None, Query(max_length=20, description="dated on or before YYYY-MM-DD")] = None,
        group: Annotated[bool, Query(description="best passage of each document, more under it")] = False,
    ) -> JSONResponse:
        return answer(eng, q, k, group, doc_id, folder, issuer, after, before)

    @app.post("/api/search", summary="Ranked passages for a question (JSON body)")
    def search_post(eng: EngineDep, body: SearchBody) -> JSONResponse:
        b = body
        return answer(eng, b.q, b.k, b.group, b.doc_id, b.folder, b.issuer, b.after, b.before)

    # --- admin -------------------------------------------------------------------------------

    @app.get("/api/documents", summary="The indexed documents")
    def documents() -> dict[str, Any]:
        eng = ready_engine()
        ix, hidden = eng.index, eng.hidden
        docs = [] if ix is None else [d for d in ix.documents.values() if d.doc_id not in hidden]
        return {
            "documents": [
                {
                    "doc_id": d.doc_id,
                    "source": d.source,
                    "title": d.title,
                    "size": d.size,
                    "sha256": d.sha256,
                    "chunks": d.chunks,
                    "indexed_at": _iso(d.indexed_at),
                    "metadata": d.metadata.as_dict(),
                }
                for d in sorted(docs, key=lambda d: d.source)
            ],
            "snapshot": None if ix is None else ix.name,
        }

    def served(eng: Engine, doc_id: str) -> tuple[Any, Any]:
        ix = eng.index
        info = ix.by_id.get(doc_id) if ix is not None else None
        if ix is None or info is None or doc_id in eng.hidden:
            raise NotFoundError(f"no document with id {doc_id} in the index; list them with GET /api/documents")
        return ix, info

    @app.get("/api/documents/{doc_id}/text", summary="A document's cleaned text, outline and passage offsets")
    def document_text(
        eng: EngineDep, doc_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$", description="12 hex digits")]
    ) -> dict[str, Any]:
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
        }

    @app.get("/api/documents/{doc_id}/original", summary="Download the document's original file")
    def document_original(
        eng: EngineDep, doc_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$", description="12 hex digits")]
    ) -> FileResponse:
        _, info = served(eng, doc_id)
        root = settings.corpus_dir.resolve()
        path = (root / info.source).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFoundError(f"the file of {doc_id} ({info.source}) is no longer in the corpus")
        # an attachment, never shown inline: an uploaded .html must not run as this site's page
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)

    @app.post("/api/documents", status_code=202, dependencies=[Admin], summary="Add or replace a document")
    async def upload(
        request: Request,
        replace: Annotated[bool, Query(description="replace a document of the same name (else a new name)")] = False,
    ) -> JSONResponse:
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise TooLargeError(f"the upload is {declared} bytes; the limit is {limit} bytes")
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
        eng = ready_engine()
        stored = await run_in_threadpool(
            corpus_mod.add, settings.corpus_dir, name, data, limit, settings.limits, replace
        )
        eng.unhide(stored.doc_id)
        job = eng.submit("update", f"uploaded {stored.source}")
        body = {**stored.__dict__, "job": job.as_dict()}
        return JSONResponse(status_code=202, content=body)

    @app.delete("/api/documents/{doc_id}", status_code=202, dependencies=[Admin], summary="Remove a document")
    def delete(
        doc_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{12}$", description="12 hex digits")],
    ) -> JSONResponse:
        eng = ready_engine()
        docs = eng.index.documents.values() if eng.index is not None else []
        indexed = next((d for d in docs if d.doc_id == doc_id), None)
        try:
            source = corpus_mod.remove(settings.corpus_dir, doc_id)
        except NotFoundError:
            if indexed is None:
                raise
            source = indexed.source  # the file went already; its passages are still served
        eng.hide(doc_id)
        job = eng.submit("update", f"removed {source}")
        return JSONResponse(status_code=202, content={"doc_id": doc_id, "source": source, "job": job.as_dict()})

    @app.post("/api/index/rebuild", status_code=202, dependencies=[Admin], summary="Rebuild the index")
    def rebuild(
        full: Annotated[bool, Query(description="also re-embed passages whose vectors could be reused")] = False,
    ) -> JSONResponse:
        job = ready_engine().submit("rebuild" if full else "update", "requested by an admin")
        return JSONResponse(status_code=202, content={"job": job.as_dict()})

    @app.get("/api/index/status", summary="Index state, the current or last job, its progress and last error")
    def status() -> dict[str, Any]:
        return ready_engine().status()

    @app.get("/api/index/jobs/{job_id}", summary="One update job")
    def job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        found = ready_engine().jobs.get(job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id}; jobs are kept for the last 50 updates")
        return found.as_dict()

    @app.delete("/api/index/jobs/{job_id}", dependencies=[Admin], summary="Cancel a queued or running job")
    def cancel_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        found = ready_engine().cancel(job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id}; jobs are kept for the last 50 updates")
        return found.as_dict()

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def no_such_endpoint(rest: str) -> JSONResponse:
        return _error(404, f"no endpoint /api/{rest}; the API is described at /docs")

    app.mount("/", StaticFiles(directory=web_dir(), html=True), name="web")
    return app
