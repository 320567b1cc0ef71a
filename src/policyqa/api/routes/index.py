"""/api/index: the update jobs (admin: rebuild, cancel) and the index's state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam

from policyqa.api.deps import Admin, StartedEngine
from policyqa.api.schemas import Accepted, IndexStatus, Job
from policyqa.errors import NotFoundError

router = APIRouter()
JobId = Annotated[str, PathParam(max_length=64)]


@router.post(
    "/api/index/rebuild", status_code=202, dependencies=[Admin], summary="Rebuild the index", response_model=Accepted
)
def rebuild(
    eng: StartedEngine,
    full: Annotated[bool, Query(description="also re-embed passages whose vectors could be reused")] = False,
) -> dict[str, Any]:
    job = eng.submit("rebuild" if full else "update", "requested by an admin")
    return {"job": job.as_dict()}


@router.get(
    "/api/index/status",
    summary="Index state, the current or last job, its progress and last error",
    response_model=IndexStatus,
)
def status(eng: StartedEngine) -> dict[str, Any]:
    return eng.status()


def _missing(job_id: str) -> NotFoundError:
    return NotFoundError(f"no job {job_id}; jobs are kept for the last 50 updates")


@router.get("/api/index/jobs/{job_id}", summary="One update job", response_model=Job)
def job(eng: StartedEngine, job_id: JobId) -> dict[str, Any]:
    found = eng.jobs.get(job_id)
    if found is None:
        raise _missing(job_id)
    return found.as_dict()


@router.delete(
    "/api/index/jobs/{job_id}", dependencies=[Admin], summary="Cancel a queued or running job", response_model=Job
)
def cancel_job(eng: StartedEngine, job_id: JobId) -> dict[str, Any]:
    found = eng.cancel(job_id)
    if found is None:
        raise _missing(job_id)
    return found.as_dict()
