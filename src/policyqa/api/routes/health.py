"""GET /api/health: 200 when searches can be served; 503 saying why not (starting, rebuilding, failed).
GET /metrics: what operators watch, in Prometheus text format (api/observe.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from policyqa.api.deps import State
from policyqa.api.errors import error
from policyqa.api.schemas import Health
from policyqa.messages import chinese

router = APIRouter()

_ZH = {
    "starting": "服务正在启动：正在加载模型和索引，请稍候。",
    "rebuilding": "索引已损坏，正在根据文档库重建，请稍候。",
}


@router.get("/api/health", summary="200 when the index is loaded and searches can be served", response_model=Health)
def health(state: State) -> Health | JSONResponse:
    eng = state.engine
    if eng is None or eng.index is None:
        detail = state.error or (eng.last_error if eng else None)
        damage = list(eng.damage) if eng else []
        if detail is None and eng is not None:
            job = eng.status()["job"]
            counted = "pages read by OCR" if job and job.get("unit") == "pages" else "passages embedded"
            progress = f": {job['done']}/{job['total']} {counted}" if job and job["total"] else ""
            detail = f"building the index from the corpus{progress}"
            if damage:
                detail = f"no snapshot loads ({'; '.join(damage)}); rebuilding the index from the corpus{progress}"
        status = "failed" if state.error else ("rebuilding" if damage else "starting")
        zh = _ZH.get(status) or f"服务无法启动：{chinese(detail or '', 503)}"
        return error(503, detail or "starting: loading the model and the index", zh=zh, status=status, damaged=damage)
    ix = eng.index
    return Health(
        status="ok",
        model=eng.embedder.name,
        store=eng.store.name,
        snapshot=ix.name,
        documents=len(ix.documents),
        chunks=len(ix.chunks),
        damaged=list(eng.damage),
    )


@router.get("/metrics", summary="Prometheus metrics: requests, search latency, documents, jobs, memory")
def metrics(state: State) -> Response:
    assert state.metrics is not None  # made by create_app
    body, content_type = state.metrics.exposition()
    return Response(body, media_type=content_type)
