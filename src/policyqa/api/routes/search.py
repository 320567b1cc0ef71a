"""GET and POST /api/search: ranked passages for a question, with filters and grouping."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from policyqa.api.deps import ServingEngine
from policyqa.api.schemas import SearchBody, SearchResponse
from policyqa.engine import Engine
from policyqa.search.filters import make as make_filters
from policyqa.search.results import group_size, payload

router = APIRouter()


def answer(eng: Engine, q: str, k: int, group: bool, *filter_values: Any) -> dict[str, Any]:
    filters = make_filters(*filter_values)
    result = eng.search(q, group_size(k) if group else k, filters=filters)
    return payload(result, eng.index, group, k)


@router.get(
    "/api/search",
    summary="Ranked passages for a question",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
)
def search_get(
    eng: ServingEngine,
    q: Annotated[str, Query(description="The question, 1-500 characters")],
    k: Annotated[int, Query(ge=1, le=50, description="How many passages (1-50)")] = 5,
    doc_id: Annotated[list[str] | None, Query(max_length=100, description="only these documents")] = None,
    folder: Annotated[str | None, Query(max_length=500, description="only documents under this folder")] = None,
    issuer: Annotated[str | None, Query(max_length=100, description="only this 发文机关 (part of it)")] = None,
    after: Annotated[str | None, Query(max_length=20, description="dated on or after YYYY-MM-DD")] = None,
    before: Annotated[str | None, Query(max_length=20, description="dated on or before YYYY-MM-DD")] = None,
    group: Annotated[bool, Query(description="best passage of each document, more under it")] = False,
    current_only: Annotated[bool, Query(description="only documents in force (现行有效) on the day")] = False,
    on: Annotated[str | None, Query(max_length=20, description="judge documents in force on YYYY-MM-DD")] = None,
) -> dict[str, Any]:
    return answer(eng, q, k, group, doc_id, folder, issuer, after, before, current_only, on)


@router.post(
    "/api/search",
    summary="Ranked passages for a question (JSON body)",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
)
def search_post(eng: ServingEngine, body: SearchBody) -> dict[str, Any]:
    b = body
    return answer(eng, b.q, b.k, b.group, b.doc_id, b.folder, b.issuer, b.after, b.before, b.current_only, b.on)
