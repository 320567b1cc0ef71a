"""create_app(settings) -> FastAPI: the routers, the error answers, the guards, the docs and the page,
assembled; the engine is started (or handed in by tests) in the background and reached by routes through
deps.py."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from policyqa.api import docs, errors
from policyqa.api.deps import AppState
from policyqa.api.guard import MULTIPART_ALLOWANCE, BodyDeadline, BodyLimit, JsonErrors, SecurityHeaders
from policyqa.api.observe import Metrics, RequestLog
from policyqa.api.routes import documents, feedback, health, index, questions, search
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.errors import PolicyQAError
from policyqa.store import configured

log = logging.getLogger("policyqa")


def web_dir() -> Path:
    """The static page: packaged inside the wheel, or web/ at the top of a source checkout."""
    packaged = Path(__file__).resolve().parents[1] / "web"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "web"


def start(state: AppState) -> None:
    """Open the engine (model, store and index) and queue the update that brings it up to date; what stops
    it is kept in `state.error` for /api/health."""
    settings = state.settings
    try:
        eng = state.engine or Engine.start(
            settings.corpus_dir,
            settings.index_dir,
            settings.model,
            settings.model_dir,
            settings.threads,
            settings.micro_batch,
            settings.rebuild_for_model,
            configured(settings),
        )
        eng.limits = settings.limits
        eng.delta_from = settings.delta_from
        eng.observer = state.metrics
        eng.hide_missing()
        state.engine = eng
        # Serve what is on disk at once; pick up documents dropped in while the service was down, and
        # write a whole snapshot when the one CURRENT names was damaged.
        eng.submit("update", "service start")
    except PolicyQAError as exc:
        state.error = str(exc)
        log.error("policyqa cannot serve: %s", exc)
    except Exception as exc:  # whatever it is, health must say it rather than "starting" for ever
        state.error = f"the service failed to start ({type(exc).__name__}: {exc}); see the server log"
        log.exception("policyqa cannot serve")


async def watch(state: AppState) -> None:
    """Look for outside changes (files in the corpus folder, snapshots published by another process)."""
    while state.settings.watch_seconds > 0:
        await asyncio.sleep(state.settings.watch_seconds)
        if state.engine is not None:
            state.engine.watch()  # file events, so that a look walks the folder only when something moved
            try:
                await run_in_threadpool(state.engine.poll)
            except Exception:  # keep watching whatever one look ran into
                log.exception("watching %s failed", state.settings.corpus_dir)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The service. The index is loaded (or built) at startup and handed to routes through a dependency."""
    state = AppState(settings, engine)
    state.metrics = Metrics(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=start, args=(state,), name="policyqa-start", daemon=True).start()
        watcher = asyncio.create_task(watch(state))
        yield
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher
        if state.engine is not None and state.engine.watcher is not None:
            state.engine.watcher.stop()

    app = FastAPI(
        title="policyqa",
        description="Document-grounded question answering over Chinese policy documents.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN; docs.py serves local copies
        redoc_url=None,
    )
    app.state.policyqa = state
    app.state.feedback_limit = feedback.RateLimit(settings.feedback_per_minute)

    def body_limit(scope: Any) -> tuple[int, str]:
        """The bytes a request body may have, and the refusal naming the limit as configured."""
        if scope.get("path") == "/api/documents" and scope.get("method") == "POST":
            cap = settings.max_upload_bytes
            return cap + MULTIPART_ALLOWANCE, (
                f"the upload is over the limit of {cap} bytes (POLICYQA_MAX_UPLOAD_BYTES); "
                "split the document or raise POLICYQA_MAX_UPLOAD_BYTES"
            )
        cap = settings.max_body_bytes
        return cap, (
            f"the request body is over the limit of {cap} bytes (POLICYQA_MAX_BODY_BYTES); "
            "send a shorter body (a question is at most 500 characters)"
        )

    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(BodyDeadline, seconds=settings.body_seconds)
    app.add_middleware(JsonErrors)
    app.add_middleware(SecurityHeaders)  # also on the 413s above and on every error
    app.add_middleware(RequestLog, metrics=state.metrics)  # outermost: every answer counted, logged, with its id
    errors.install(app)
    for module in (health, search, documents, index, questions, feedback):
        app.include_router(module.router)

    # Every method, so that no /api path falls through to the page's static files (a 405 naming GET, HEAD).
    @app.api_route("/api/{rest:path}", methods=[*errors.METHODS], include_in_schema=False)
    def no_such_endpoint(request: Request, rest: str) -> JSONResponse:
        return errors.no_endpoint(app.openapi()["paths"], request.method, request.url.path)

    docs.install(app)
    app.mount("/", StaticFiles(directory=web_dir(), html=True), name="web")
    return app
