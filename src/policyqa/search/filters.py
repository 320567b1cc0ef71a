"""Search filters: which documents a search may answer from (by id, folder, issuing body, date range, in force)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from policyqa.errors import LIST_DOCUMENTS, FilterError
from policyqa.snapshot.documents import DocInfo
from policyqa.snapshot.index import Index
from policyqa.snapshot.versions import today
from policyqa.store.base import Scope

_DOC_ID = re.compile(r"[0-9a-f]{12}")
_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})日|(\d{4})(\d{2})(\d{2})")


@dataclass(frozen=True)
class Filters:
    """A document passes when it passes every filter given. Dates are YYYY-MM-DD, both ends included; a
    document whose date is unknown fails a date filter."""

    doc_ids: frozenset[str] = frozenset()
    folder: str = ""  # a folder of the corpus: its documents and those of its sub-folders
    issuer: str = ""  # part of the 发文机关
    after: str = ""
    before: str = ""
    current: bool = False  # only documents in force (现行有效) on the day `on`
    on: str = ""  # the day documents are judged in force on, YYYY-MM-DD ('' today); not itself a filter

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.folder or self.issuer or self.after or self.before or self.current)

    def admits(self, doc: DocInfo) -> bool:
        m = doc.metadata
        return (
            (not self.doc_ids or doc.doc_id in self.doc_ids)
            and (not self.folder or doc.source.startswith(self.folder + "/"))
            and (not self.issuer or _squash(self.issuer) in _squash(m.issuer))
            and (not self.after or (bool(m.date) and m.date >= self.after))
            and (not self.before or (bool(m.date) and m.date <= self.before))
        )


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def day(field: str, value: str | None) -> str:
    """A date given as 2024-03-05, 2024-3-5, 2024年3月5日 or 20240305, as YYYY-MM-DD; '' for none."""
    text = _squash(value or "")
    if not text:
        return ""
    found = _DATE.fullmatch(text)
    try:
        if found is None:
            raise ValueError(text)
        y, m, d = (int(g) for g in found.groups() if g)
        return date(y, m, d).isoformat()
    except ValueError:
        raise FilterError(
            field, "a date: YYYY-MM-DD", f"{field}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-03-05"
        ) from None


def make(
    doc_ids: list[str] | None = None,
    folder: str | None = None,
    issuer: str | None = None,
    after: str | None = None,
    before: str | None = None,
    current: bool = False,
    on: str | None = None,
) -> Filters:
    """Filters from what a person typed; a bad value raises FilterError naming the field."""
    ids = [i.strip().lower() for i in doc_ids or [] if i.strip()]
    for i in ids:
        if not _DOC_ID.fullmatch(i):
            raise FilterError(
                "doc_id", "12 hex digits", f"doc_id: {i!r} is not a document id (12 hex digits, see {LIST_DOCUMENTS})"
            )
    place = (folder or "").strip().replace("\\", "/").strip("/")
    if place and (".." in place.split("/") or len(place) > 500):
        raise FilterError("folder", "a folder inside the corpus", f"folder: {folder!r} is not a folder of the corpus")
    if issuer and len(issuer) > 100:
        raise FilterError("issuer", "at most 100 characters", "issuer: at most 100 characters")
    start, end = day("after", after), day("before", before)
    if start and end and start > end:
        raise FilterError("after", "after <= before", f"after ({start}) is later than before ({end})")
    return Filters(frozenset(ids), place, (issuer or "").strip(), start, end, current, day("on", on))


def check(index: Index, filters: Filters) -> None:
    """Every doc_id asked for must be a document of the index."""
    unknown = sorted(filters.doc_ids - index.by_id.keys())
    if unknown:
        raise FilterError(
            "doc_id", "a document of the index", f"doc_id: no document {', '.join(unknown)}; see {LIST_DOCUMENTS}"
        )


def scope_of(index: Index, filters: Filters | None, hidden: frozenset[str] = frozenset()) -> Scope | None:
    """Which documents a search may answer from (None: all of them): those the filters admit, less the
    hidden ones (deleted, but still in the served snapshot)."""
    if not filters and not hidden:
        return None
    docs = None
    if filters:
        check(index, filters)
        on = filters.on or today()
        docs = frozenset(
            d.doc_id
            for d in index.documents.values()
            if filters.admits(d) and (not filters.current or index.versions.status(d.doc_id, on).current)
        )
    return Scope(docs, hidden)
