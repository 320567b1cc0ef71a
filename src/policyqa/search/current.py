"""The version in force first. When a question names no year, a passage of a replaced or expired version
ranks just below its near-duplicate in the version in force (the same article or row with new figures);
when it names a year, below its near-duplicate in that year's version. A passage with no such twin among the
candidates keeps its score: an older version still answers what only it says."""

from __future__ import annotations

import functools
import re

from policyqa.ingest.segment import normalize
from policyqa.models import Chunk
from policyqa.snapshot.index import Index
from policyqa.snapshot.versions import Status, version_year

TWIN = 0.6  # Dice similarity of two passages' character pairs from which they say the same thing
MARGIN = 1e-4  # how far below its twin a demoted passage lands
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


@functools.lru_cache(maxsize=4096)
def _pairs(text: str) -> frozenset[str]:
    squashed = re.sub(r"\s+", "", normalize(text))
    return frozenset(squashed[i : i + 2] for i in range(len(squashed) - 1))


def similarity(a: Chunk, b: Chunk) -> float:
    """Dice similarity of the two passages' character pairs (their own text, without the breadcrumb)."""
    x, y = _pairs(a.body), _pairs(b.body)
    return 2 * len(x & y) / (len(x) + len(y)) if x or y else 0.0


def years_in(question: str) -> set[str]:
    return set(_YEAR.findall(normalize(question)))


def _preferred(index: Index, family: set[str], years: set[str], day: str) -> set[str]:
    """The versions a question means: those of the years it names, else those in force on the day."""
    if years:
        return {d for d in family if d in index.by_id and version_year(index.by_id[d]) in years}
    return {d for d in family if index.versions.status(d, day).current}


def prefer(index: Index, fused: dict[int, float], question: str, day: str) -> dict[int, float]:
    """Fused scores with each passage of a version the question does not mean placed just below its twin in
    the version it means (when that twin is a candidate); other scores unchanged."""
    if not index.version_rows:
        return fused
    by_doc: dict[str, list[int]] = {}
    for i in fused:
        doc_id = index.chunks[i].doc_id
        if doc_id in index.version_rows:
            by_doc.setdefault(doc_id, []).append(i)
    years, out = years_in(question), dict(fused)
    for doc_id, rows in by_doc.items():
        meant = _preferred(index, index.versions.family(doc_id), years, day)
        if not meant or doc_id in meant:
            continue
        rivals = [j for d in meant for j in by_doc.get(d, ())]
        for i in rows:
            twin = max(rivals, key=lambda j: similarity(index.chunks[i], index.chunks[j]), default=None)
            if twin is not None and similarity(index.chunks[i], index.chunks[twin]) >= TWIN:
                out[i] = min(out[i], fused[twin] - MARGIN)
    return out


def counterpart(index: Index, chunk: Chunk, status: Status) -> Chunk | None:
    """The passage of the version in force most like this passage of a replaced one (None: not alike enough)."""
    rows = index.version_rows.get(status.current_version, [])
    best = max(rows, key=lambda j: similarity(chunk, index.chunks[j]), default=None)
    if best is None or similarity(chunk, index.chunks[best]) < TWIN:
        return None
    return index.chunks[best]
