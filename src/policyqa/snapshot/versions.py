"""The versions of a document across the corpus and each document's 时效性 on a day: 现行有效, 已被替代 (by the
newer document that names it as repealed, or by a later version of the same title from the same issuer),
已失效 (past the end it states), 尚未生效 (before it takes effect)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from policyqa.snapshot.documents import DocInfo

CURRENT, SUPERSEDED, EXPIRED, PENDING = "current", "superseded", "expired", "pending"
LABELS = {CURRENT: "现行有效", SUPERSEDED: "已被替代", EXPIRED: "已失效", PENDING: "尚未生效"}
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年?度?")
# what tells versions of one title apart: the year, the edition, a trial's 试行/暂行, brackets around them
_EDITION = re.compile(
    r"[（(【\[]?\s*(?:(?:19|20)\d{2}\s*年?度?\s*(?:修订|修正|修改)?版?|第[一二三四五六七八九十\d]+版|修订版?|修正版?|"
    r"试行|暂行)\s*[）)】\]]?"
)
_NOISE = re.compile(r"[\s\"“”‘’'《》〈〉·・,，、:：]+")


def today() -> str:
    return date.today().isoformat()


@dataclass(frozen=True)
class Status:
    """A document's status on a day (`on`, YYYY-MM-DD)."""

    code: str  # CURRENT | SUPERSEDED | EXPIRED | PENDING
    on: str
    superseded_by: str = ""  # 已被替代: the newer document that replaces it
    current_version: str = ""  # 已被替代: the newest version in force on the day, when there is one

    @property
    def label(self) -> str:
        return LABELS[self.code]

    @property
    def current(self) -> bool:
        return self.code == CURRENT

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.code,
            "status_label": self.label,
            "superseded_by": self.superseded_by or None,
            "current_version": self.current_version or None,
        }


def title_key(title: str) -> str:
    """A title without what tells its versions apart (青山市2025年度科技创新券实施细则 -> 青山市科技创新券实施细则)."""
    text = unicodedata.normalize("NFKC", title)
    text = _EDITION.sub("", text)
    text = _NOISE.sub("", text)
    return text.removeprefix("中华人民共和国")


def _stamp(doc: DocInfo) -> tuple[str, str]:
    """When a version is from: the year its title names, else its date's or its 施行日期's; then the day."""
    day = doc.metadata.date or doc.validity.effective
    found = _YEAR.search(unicodedata.normalize("NFKC", doc.title))
    return (found.group(1) if found else day[:4]), day


def version_year(doc: DocInfo) -> str:
    """The year a version is of (its title's year, else its date's), '' when unknown."""
    return _stamp(doc)[0]


@dataclass(frozen=True)
class Versions:
    """Relations across a corpus: the documents replacing each document, and those that only say they prevail
    over it where the two differ (此前…与本通知不一致的，以本通知为准: not a replacement, kept for the reader)."""

    newer: dict[str, tuple[str, ...]]  # doc_id -> the documents that replace it
    prevailed_by: dict[str, tuple[str, ...]]
    starts: dict[str, str]  # doc_id -> the day it takes effect (施行日期, else its date), '' unknown
    ends: dict[str, str]  # doc_id -> the last day in force, '' unknown
    replaces: dict[str, tuple[str, ...]] = field(default_factory=dict)  # doc_id -> the documents it replaces

    @classmethod
    def of(cls, docs: Iterable[DocInfo]) -> Versions:
        docs = list(docs)
        newer: dict[str, set[str]] = {}
        for old, new in [*_editions(docs), *_named(docs, "repeals")]:
            if old != new:
                newer.setdefault(old, set()).add(new)
        prevailed: dict[str, set[str]] = {}
        for old, new in _named(docs, "prevails"):
            if old != new:
                prevailed.setdefault(old, set()).add(new)
        replaces: dict[str, list[str]] = {}
        for old in sorted(newer):
            for new in newer[old]:
                replaces.setdefault(new, []).append(old)
        return cls(
            {d: tuple(sorted(n)) for d, n in newer.items()},
            {d: tuple(sorted(n)) for d, n in prevailed.items()},
            {d.doc_id: d.validity.effective or d.metadata.date for d in docs},
            {d.doc_id: d.validity.expires for d in docs},
            {d: tuple(o) for d, o in replaces.items()},
        )

    @property
    def linked(self) -> frozenset[str]:
        """The documents that replace or are replaced by another."""
        return frozenset(self.newer).union(*self.newer.values())

    def older(self, doc_id: str) -> list[str]:
        """The documents this one replaces."""
        return list(self.replaces.get(doc_id, ()))

    def family(self, doc_id: str) -> set[str]:
        """Every version connected to this one by replacement, itself included."""
        found, todo = {doc_id}, [doc_id]
        while todo:
            d = todo.pop()
            for other in [*self.newer.get(d, ()), *self.older(d)]:
                if other not in found:
                    found.add(other)
                    todo.append(other)
        return found

    def status(self, doc_id: str, on: str) -> Status:
        """The document's status on the day `on` (YYYY-MM-DD): before its start it is not yet in force; a newer
        document that has started (or whose start is unknown) replaces it; past its stated end it has expired.
        A replaced one names the newest version in force, at the end of the chain of replacements."""
        found = self._status(doc_id, on)
        if found.code != SUPERSEDED:
            return found
        seen, at, last = {doc_id}, found, found.superseded_by
        while at.code == SUPERSEDED and at.superseded_by not in seen:
            seen.add(at.superseded_by)
            last, at = at.superseded_by, self._status(at.superseded_by, on)
        return replace(found, current_version=last if at.current else "")

    def _status(self, doc_id: str, on: str) -> Status:
        start, end = self.starts.get(doc_id, ""), self.ends.get(doc_id, "")
        if start and start > on:
            return Status(PENDING, on)
        replacing = [n for n in self.newer.get(doc_id, ()) if not self.starts.get(n, "") > on]
        if replacing:
            return Status(SUPERSEDED, on, max(replacing, key=lambda n: (self.starts.get(n, ""), n)))
        return Status(EXPIRED, on) if end and end < on else Status(CURRENT, on)

    def row(self, doc_id: str, on: str) -> dict[str, Any]:
        """What the documents listing adds to a document's row."""
        return {
            **self.status(doc_id, on).as_dict(),
            "replaces": self.older(doc_id),
            "prevailed_by": list(self.prevailed_by.get(doc_id, ())),
        }


def listing(snapshot: str | None, docs: Iterable[DocInfo], on: str) -> dict[str, Any]:
    """The documents as JSON, by source, each with its status on the day `on`: what GET /api/documents and
    `policyqa documents --json` print."""
    docs = sorted(docs, key=lambda d: d.source)
    versions = Versions.of(docs)
    return {
        "documents": [{**d.row(), **versions.row(d.doc_id, on)} for d in docs],
        "snapshot": snapshot,
        "status_on": on,
    }


def _editions(docs: list[DocInfo]) -> list[tuple[str, str]]:
    """(older, newer) pairs among documents of one issuer whose titles differ only in year or edition: each is
    replaced by the versions of the next later stamp. Versions without an issuer or a year are left alone."""
    groups: dict[tuple[str, str], list[DocInfo]] = {}
    for d in docs:
        issuer, key = re.sub(r"\s+", "", d.metadata.issuer), title_key(d.title or d.metadata.title)
        if issuer and len(key) >= 4 and _stamp(d)[0]:
            groups.setdefault((issuer, key), []).append(d)
    pairs = []
    for group in groups.values():
        stamps = sorted({_stamp(d) for d in group})
        for d in group:
            later = [s for s in stamps if _later(s, _stamp(d))]
            pairs += [(d.doc_id, n.doc_id) for n in group if later and _stamp(n) == later[0]]
    return pairs


def _later(stamp: tuple[str, str], than: tuple[str, str]) -> bool:
    """A later year, or the same year and a later day (both known): two versions of one day are not ordered."""
    return stamp[0] > than[0] or (stamp[0] == than[0] and bool(stamp[1] and than[1]) and stamp[1] > than[1])


def _named(docs: list[DocInfo], field: str) -> list[tuple[str, str]]:
    """(older, newer) pairs where the newer document names the older one's title as repealed (`repeals`) or
    as prevailed over (`prevails`)."""
    by_title: dict[str, list[str]] = {}
    for d in docs:
        by_title.setdefault(_plain(d.title or d.metadata.title), []).append(d.doc_id)
    pairs = []
    for d in docs:
        for title in getattr(d.validity, field):
            pairs += [(old, d.doc_id) for old in by_title.get(_plain(title), ())]
    return pairs


def _plain(title: str) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", title)).removeprefix("中华人民共和国")
