"""/api/feedback: readers mark a result 有帮助 / 没帮助 (no token; a few a minute per client); admin: the marks,
newest first, with counts per passage."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from policyqa.api.deps import Admin, State
from policyqa.api.errors import Throttled
from policyqa.api.schemas import FeedbackBody, FeedbackLog, FeedbackRecorded
from policyqa.engine import Engine
from policyqa.errors import NotFoundError
from policyqa.ingest import feedback

router = APIRouter()
WINDOW = 60.0
MAX_CLIENTS = 10_000  # clients remembered at once; past it those idle for a minute are forgotten


class RateLimit:
    """At most `per_minute` requests from one client in any minute (0: no limit): the times of its last ones."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, client: str, now: float | None = None) -> None:
        """Count a request of `client`, or raise Throttled saying in how many seconds it may send again."""
        if self.per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        with self.lock:
            if len(self.seen) > MAX_CLIENTS:
                self.seen = {c: t for c, t in self.seen.items() if t and t[-1] > now - WINDOW}
            times = self.seen.setdefault(client, deque())
            while times and times[0] <= now - WINDOW:
                times.popleft()
            if len(times) >= self.per_minute:
                retry = max(1, math.ceil(times[0] + WINDOW - now))
                raise Throttled(f"too many marks; retry in {retry} s (at most {self.per_minute} a minute)", retry)
            times.append(now)


def limiter(request: Request) -> RateLimit:
    limit: RateLimit = request.app.state.feedback_limit
    return limit


@router.post("/api/feedback", status_code=201, summary="Mark a result helpful or not", response_model=FeedbackRecorded)
async def mark(request: Request, state: State, body: FeedbackBody) -> dict[str, Any]:
    limiter(request).check(request.client.host if request.client else "")
    served = state.engine is not None and state.engine.index is not None
    if served and body.chunk_id not in passages(state.engine, {body.chunk_id}):
        raise NotFoundError(
            f"no passage {body.chunk_id} in the index (the document may have changed since the search): "
            "search again and mark the new result"
        )
    settings = state.settings
    found = feedback.Mark.new(body.q, body.chunk_id, body.doc_id, body.helpful, body.snapshot)
    await run_in_threadpool(
        feedback.record, settings.corpus_dir, found, settings.feedback_lines, settings.feedback_bytes
    )
    return {"recorded": True}


EMPTY = {"source": None, "passage": None}
EXCERPT = 80  # characters of a marked passage shown beside the mark


def passages(eng: Engine | None, chunk_ids: set[str]) -> dict[str, dict[str, str | None]]:
    """Where each marked passage is in the served index (its file and its first words); one marked in a
    snapshot that has since dropped it is not there."""
    ix = eng.index if eng is not None else None
    if ix is None or not chunk_ids:
        return {}
    return {
        c.chunk_id: {"source": c.source, "passage": " ".join(c.text.split())[:EXCERPT]}
        for c in ix.chunks
        if c.chunk_id in chunk_ids
    }


@router.get("/api/feedback", dependencies=[Admin], summary="Readers' marks", response_model=FeedbackLog)
def marks(
    state: State,
    limit: Annotated[int, Query(ge=1, le=5000, description="the newest marks to list")] = 200,
) -> dict[str, Any]:
    found = feedback.marks(state.settings.corpus_dir)
    shown = found[:limit]
    seen = passages(state.engine, {m.chunk_id for m in shown})
    return {
        "marks": [{**m.as_dict(), **seen.get(m.chunk_id, EMPTY)} for m in shown],
        "passages": [t.as_dict() for t in feedback.tallies(found)],
        "total": len(found),
    }
