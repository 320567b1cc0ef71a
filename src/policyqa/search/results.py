"""Search results as the edges show them: each passage with its document's metadata and status (现行有效,
已被替代 with the version in force and its matching passage, ...), and optionally grouped by document (the best
passage of each document, with more from the same document under it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from policyqa.models import Chunk
from policyqa.search.confidence import NO_RESULTS
from policyqa.search.ranking import SearchResult, hit_dict, result_dict
from policyqa.snapshot.index import Index

MORE = 3  # passages shown under a document's best one when grouping


def group_size(k: int) -> int:
    """Passages to ask for so that `k` documents usually have company under them."""
    return min(50, k * (MORE + 1))


def passage_ref(chunk: Chunk) -> dict[str, Any]:
    """Where a passage is, for a link that opens its document at it."""
    return {k: getattr(chunk, k) for k in ("doc_id", "chunk_id", "section", "start", "end", "page")}


def payload(result: SearchResult, index: Index | None, group: bool = False, k: int = 5) -> dict[str, Any]:
    """The API's JSON for a search: result_dict, each result carrying `metadata` of its document; grouped,
    `results` holds the best passage of each of at most `k` documents, each with `more` (up to MORE).
    A search with nothing to judge (an empty index) says so in `confidence.reason` as any flagged one does."""
    out = result_dict(result if result.confidence else replace(result, confidence=NO_RESULTS))
    out["status_on"] = result.on
    docs = index.by_id if index is not None else {}
    rows: list[dict[str, Any]] = []
    for hit in result.hits:
        row = hit_dict(hit)
        info = docs.get(hit.chunk.doc_id)
        row["metadata"] = info.metadata.as_dict() if info is not None else None
        row["validity"] = info.validity.as_dict() if info is not None else None
        status = result.statuses.get(hit.chunk.doc_id)
        row.update(status.as_dict() if status is not None else {})
        twin = result.current.get(hit.chunk.chunk_id)
        row["current_passage"] = None if twin is None else passage_ref(twin)
        rows.append(row)
    if not group:
        out["results"] = rows
        return out
    firsts: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = firsts.get(str(row["doc_id"]))
        if first is None:
            if len(firsts) < k:
                firsts[str(row["doc_id"])] = {**row, "more": []}
        elif len(first["more"]) < MORE:
            first["more"].append(row)
    out["results"] = [{**row, "rank": n} for n, row in enumerate(firsts.values(), 1)]
    out["grouped"] = True
    return out
