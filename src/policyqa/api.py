"""HTTP edge: create_app(settings) -> FastAPI. Routes parse input, make one library call, format output."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.errors import CorpusError, IndexMismatchError, IndexMissingError, PolicyQAError, QueryError
from policyqa.search import MAX_QUERY, result_dict

log = logging.getLogger("policyqa")


def web_dir() -> Path:
    """The static page: packaged inside the wheel, or web/ at the top of a source checkout."""
    packaged = Path(__file__).parent / "web"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "web"


class SearchBody(BaseModel):
    q: str = Field(..., description="The question, 1-500 characters", examples=["南京有几个国家级创新型产业集群？"])
    k: int = Field(5, ge=1, le=50, description="How many passages to return (1-50)")


def get_engine(request: Request) -> Engine:
    """Dependency: the engine serving searches, once its index is loaded."""
    state: dict[str, Any] = request.app.state.policyqa
    eng: Engine | None = state["engine"]
    if eng is None or eng.index is None:
        raise IndexMissingError(state["error"] or "the index is still loading; retry in a few seconds")
    return eng


EngineDep = Annotated[Engine, Depends(get_engine)]


def _error(code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=code, content={"error": message, **extra})


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The service. The index is loaded (or built) at startup and handed to routes through a dependency."""
    state: dict[str, Any] = {"engine": engine, "error": None}

    def start() -> None:
        try:
            eng = state["engine"] or Engine.open(
                settings.corpus_dir, settings.index_dir, settings.model, settings.model_dir, settings.threads
            )
            state["engine"] = eng
            if eng.index is None:
                try:
                    eng.load()
                    eng.update()  # pick up documents dropped into the corpus while the service was down
                except (IndexMissingError, IndexMismatchError):
                    log.warning("no usable index in %s; building it from %s", settings.index_dir, settings.corpus_dir)
                    eng.update()
        except PolicyQAError as exc:
            state["error"] = str(exc)
            log.error("policyqa cannot serve: %s", exc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=start, name="policyqa-start", daemon=True)
        thread.start()
        yield

    app = FastAPI(
        title="policyqa",
        description="Document-grounded question answering over Chinese policy documents.",
        version="0.1.0",
        lifespan=lifespan,
    )

    app.state.policyqa = state

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", []) if p not in ("query", "body")]
        field = ".".join(loc) or "body"
        rule = first.get("msg", "invalid value")
        return _error(422, f"{field}: {rule}", field=field, rule=rule)

    @app.exception_handler(QueryError)
    async def bad_query(request: Request, exc: QueryError) -> JSONResponse:
        return _error(422, str(exc), field="q", rule=f"1-{MAX_QUERY} characters after trimming")

    @app.exception_handler(IndexMissingError)
    async def not_ready(request: Request, exc: IndexMissingError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(CorpusError)
    async def corpus(request: Request, exc: CorpusError) -> JSONResponse:
        return _error(503, str(exc))

    @app.get("/api/health", summary="200 when the index is loaded and searches can be served")
    def health() -> JSONResponse:
        eng = state["engine"]
        if eng is None or eng.index is None:
            return _error(503, state["error"] or "starting: loading the model and the index", status="starting")
        ix = eng.index
        return JSONResponse(
            {
                "status": "ok",
                "model": eng.embedder.name,
                "snapshot": ix.name,
                "documents": len(ix.documents),
                "chunks": len(ix.chunks),
            }
        )

    @app.get("/api/search", summary="Ranked passages for a question")
    def search_get(
        eng: EngineDep,
        q: Annotated[str, Query(description="The question, 1-500 characters")],
        k: Annotated[int, Query(ge=1, le=50, description="How many passages (1-50)")] = 5,
    ) -> dict[str, Any]:
        return result_dict(eng.search(q, k))

    @app.post("/api/search", summary="Ranked passages for a question (JSON body)")
    def search_post(eng: EngineDep, body: SearchBody) -> dict[str, Any]:
        return result_dict(eng.search(body.q, body.k))

    app.mount("/", StaticFiles(directory=web_dir(), html=True), name="web")
    return app
