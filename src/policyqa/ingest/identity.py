"""What each document is, as a question names it: title, file name and opening lines as words, the years
and places they name; and how well a question's words, years and places agree with each document.

Questions over many documents name which one they mean (三明市, 2025年, 著作权法, 人社部). A passage that
answers the words of the question but sits in another city's or another year's notice should lose to the
passage of the document the question names.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from policyqa.ingest.segment import Segmenter, normalize
from policyqa.models import Chunk

OPENING = 160  # characters of a document's first passage that belong to its identity (发文机关, 文号, 主送)
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_SUFFIX = re.compile(r"(特别行政区|壮族自治区|回族自治区|维吾尔自治区|自治区|自治州|省|市|地区|盟)$")
_DIVISIONS = Path(__file__).resolve().parents[1] / "data" / "divisions.csv"
MAX_NAME = 10


@functools.cache
def divisions() -> dict[str, frozenset[str]]:
    """Place name -> the administrative codes it may stand for (普陀区 is in Shanghai and in Zhoushan).
    Provinces and cities also go by their short names (广西, 三明), which are common enough in questions;
    counties only by their full names (海珠区), since their short forms are often ordinary words."""
    names: dict[str, set[str]] = {}
    with _DIVISIONS.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#") or "," not in line:
                continue
            code, name = line.strip().split(",", 1)
            names.setdefault(name, set()).add(code)
            short = _SUFFIX.sub("", name)
            if _level(code) < 3 and len(short) >= 2 and short != name:
                names.setdefault(short, set()).add(code)
    return {n: frozenset(c) for n, c in names.items()}


def _level(code: str) -> int:
    """1 province, 2 city, 3 county."""
    return 1 if code[2:].strip("0") == "" else 2 if code[4:].strip("0") == "" else 3


def _within(inner: str, outer: str) -> bool:
    """Whether the division `inner` lies in (or is) the division `outer`."""
    depth = {1: 2, 2: 4, 3: 6}[_level(outer)]
    return _level(inner) >= _level(outer) and inner[:depth] == outer[:depth]


def places_in(text: str) -> set[str]:
    """Place names in a text, longest first and without their parts (三明市, not also 三明)."""
    known = divisions()
    found: list[tuple[int, int]] = []
    for size in range(MAX_NAME, 1, -1):
        for i in range(len(text) - size + 1):
            if text[i : i + size] in known and not any(a <= i and i + size <= b for a, b in found):
                found.append((i, i + size))
    return {text[a:b] for a, b in found}


# A unit below the county (万里街道, 长征镇) named at the start of a question or right after a division (普陀区长征镇):
# too many to list, so named by their suffix; generic words (城镇, 乡镇, 村镇) are not names.
_UNIT = re.compile(r"(?:^|(?<=[区县市]))([\u4e00-\u9fff]{2,3}?)(街道|镇)")
_NOT_A_NAME = frozenset("城乡村")


def units_in(text: str) -> set[str]:
    """Sub-county units a question names (万里街道 of 万里街道办事处, 长征镇), not the divisions of the list."""
    known = divisions()
    return {
        name + suffix
        for name, suffix in _UNIT.findall(text)
        if name[-1] not in _NOT_A_NAME and name + suffix not in known
    }


def _codes(names: set[str]) -> set[str]:
    table = divisions()
    return {c for n in names for c in table.get(n, ())}


def conflicting_places(asked: set[str], named: set[str], text: Container[str]) -> list[str]:
    """The places of a question that a document contradicts: the document names a place at least as
    specific that is not within it, names none within it, and never mentions it (海珠区 against a 天河区
    notice; not 上海 against a 奉贤区 one, nor 广东 against a 广州 one)."""
    own = _codes(named)
    out = []
    for place in sorted(asked):
        codes = divisions().get(place, frozenset())
        if not codes or any(_within(d, a) for d in own for a in codes):
            continue
        deepest = min(_level(a) for a in codes)
        # whether the document mentions the place is asked last: it may read every passage of the document
        if any(_level(d) >= deepest for d in own) and place not in text:
            out.append(place)
    return out


@dataclass(frozen=True)
class Mentions:
    """A document's text, searched only when asked: a question naming a place is rare, and keeping every
    document's normalised text in memory would double the corpus."""

    head: str
    passages: tuple[str, ...]  # the passages' own strings, shared with the index, not copied

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        if word in self.head:
            return True
        if _IDEOGRAPHS.fullmatch(word) is None:
            return any(word in normalize(t) for t in self.passages)
        # A word of ideographs only is in the normalised text exactly when it is in the text itself, unless the
        # text holds a character that NFKC turns into an ideograph (⼈, 㐂, ㈱): normalising a passage costs
        # some 70 µs, a search for those characters 1 µs.
        sources = _ideograph_sources()
        return any(word in t if sources.search(t) is None else word in normalize(t) for t in self.passages)


_IDEOGRAPHS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


@functools.cache
def _ideograph_sources() -> re.Pattern[str]:
    """The characters whose NFKC form holds an ideograph other than themselves (Kangxi radicals, compatibility
    ideographs, enclosed and squared ones), found by asking unicodedata of every code point once, as ranges of
    the basic plane, plus every character beyond it: a class of single characters, or one that reaches past
    the basic plane in pieces, is searched a character at a time (140 µs a passage, against 1 µs)."""
    runs: list[list[int]] = []
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        form = unicodedata.normalize("NFKC", chr(code))
        if form != chr(code) and _IDEOGRAPHS.search(form):
            if runs and runs[-1][1] == code - 1:
                runs[-1][1] = code
            else:
                runs.append([code, code])
    ranges = "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in runs)
    return re.compile(f"[{ranges}\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class DocIdentity:
    words: frozenset[str]
    years: frozenset[str]
    places: frozenset[str]  # places named in the title, file name or opening lines
    text: Mentions  # `place in text`: whether the document mentions a place anywhere


def _texts(chunks: list[Chunk]) -> dict[str, list[Chunk]]:
    """Each document's passages in reading order."""
    out: dict[str, list[Chunk]] = {}
    for c in sorted(chunks, key=lambda c: (c.doc_id, c.start)):
        out.setdefault(c.doc_id, []).append(c)
    return out


def describe(
    chunks: list[Chunk], segmenter: Segmenter, saved: dict[str, dict[str, object]] | None = None
) -> dict[str, DocIdentity]:
    """What each document of these passages is: the words, years and places of its title, file name and
    opening lines, and its text to look places up in. A document in `saved` (what `saved_form` wrote, with
    the same dictionary) is read from it instead of being segmented again: a few ms a document with jieba,
    which is minutes for a large corpus."""
    out = {}
    for doc_id, passages in _texts(chunks).items():
        texts = tuple(c.text for c in passages)
        kept = (saved or {}).get(doc_id)
        if kept is not None:
            head = str(kept["head"])
            words, years, places = (frozenset(kept[k]) for k in ("words", "years", "places"))  # type: ignore[call-overload]
            out[doc_id] = DocIdentity(words, years, places, Mentions(head, texts))
            continue
        first = passages[0]
        stem = re.sub(r"^[a-z]+-[0-9a-f]{6,}-|^[a-z]+-", "", PurePosixPath(first.source).stem)
        name = normalize(f"{first.title} {stem}")  # title and file name: where a year identifies the document
        head = normalize(f"{first.title} {stem} {first.text[:OPENING]}")
        out[doc_id] = DocIdentity(
            frozenset(segmenter.words_of(head)),
            frozenset(_YEAR.findall(name)),
            frozenset(places_in(head)),
            Mentions(head, texts),
        )
    return out


def saved_form(docs: dict[str, DocIdentity]) -> dict[str, dict[str, object]]:
    """The identities as JSON can keep them (the text is the passages', kept elsewhere)."""
    return {
        d: {"head": i.text.head, "words": sorted(i.words), "years": sorted(i.years), "places": sorted(i.places)}
        for d, i in docs.items()
    }


@dataclass(frozen=True)
class Identities:
    docs: dict[str, DocIdentity]
    idf: dict[str, float]  # over identities: a word that names few documents tells more

    @classmethod
    def build(cls, chunks: list[Chunk], segmenter: Segmenter) -> Identities:
        return cls.of(describe(chunks, segmenter))

    @classmethod
    def of(cls, docs: dict[str, DocIdentity], counts: Mapping[str, int] | None = None) -> Identities:
        """The identities of these documents, each word weighted by how few of them it names (`counts`: how
        many each word names, when already counted)."""
        if counts is None:
            counts = Counter(w for identity in docs.values() for w in identity.words)
        n = len(docs)
        return cls(docs, {w: math.log((n + 1) / (f + 0.5)) for w, f in counts.items() if f > 0})

    def agreement(self, words: list[str], question: str, docs: Iterable[str] | None = None) -> dict[str, Agreement]:
        """Per document (those of `docs`, or all): the share of the question's identifying words (those that
        name some document, by weight) found in its identity, and the question's years and places that it
        contradicts: a year when the document is dated otherwise, a place when it names another and never
        mentions this one. A search asks only about its candidates' documents: one document's agreement
        does not depend on the others, and a million passages hold tens of thousands of documents."""
        asked = [w for w in dict.fromkeys(words) if w in self.idf]
        total = sum(self.idf[w] for w in asked)
        years = set(_YEAR.findall(question))
        normalized = normalize(question)
        asked_places = places_in(normalized)
        asked_units = sorted(units_in(normalized))
        out: dict[str, Agreement] = {}
        for doc_id in self.docs if docs is None else dict.fromkeys(docs):
            identity = self.docs[doc_id]
            match = sum(self.idf[w] for w in asked if w in identity.words) / total if total else 0.0
            conflicts: list[str] = []
            if years and identity.years and not years & identity.years:
                conflicts.extend(sorted(years))
            conflicts.extend(conflicting_places(asked_places, set(identity.places), identity.text))
            conflicts.extend(u for u in asked_units if u not in identity.text)  # a unit it never mentions
            out[doc_id] = Agreement(match, tuple(conflicts))
        return out


@dataclass(frozen=True)
class Agreement:
    match: float  # 0..1: the share of the question's identifying words in the document's identity
    conflicts: tuple[str, ...]  # years and places of the question that the document contradicts

    @property
    def score(self) -> float:
        return self.match - (1.0 if self.conflicts else 0.0)
