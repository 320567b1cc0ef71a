"""A document's 时效性 as its own text states it: when it takes effect (本办法自2024年1月1日起施行, 自发布之日起施行),
when it ends (有效期5年, 有效期至2025年12月31日), what it repeals (原《…》同时废止) and what it prevails over
(与本通知不一致的，以本通知为准). Only the document's own clauses count (本X…, 以上措施…); what is not stated, or
stated as an event (有效期至疫情解除), is left empty, never guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from policyqa.models import Document

_DAY = r"(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
_DATE = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
# The document itself as a clause's subject: 本办法, 本通知明确的政策措施, 以上措施, 上述政策, 此通告
_SELF = r"(?:本|以上|上述|此)[\u4e00-\u9fa5、“”]{0,16}?"
_ISSUED = r"(?:发布|印发|公布|发文|下发|签发|颁布|公告|通告|发出)之日|即日"
_START = re.compile(
    rf"{_SELF}(?:自|从|于)\s*({_DAY}|{_ISSUED})\s*(?:零时|0时|0:00|00:00)?\s*(?:起|开始)?\s*"
    r"(?:施行|实施|执行|生效|试行|开始施行|开始实施|正式实施|正式施行)(?=[，,。；;\s]|$|有效期|试行期|，?有效期)"
)
_NUMBER = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_SPAN = re.compile(r"(?:有效期|试行期|实施期限?|执行期限?)(?:限)?为?\s*(\d{1,2}|[一二两三四五六七八九十])\s*(年|个月)")
_UNTIL = re.compile(
    rf"(?:有效期|执行期限?|实施期限?|试行期)(?:限)?(?:为|截)?\s*(?:自\s*({_DAY})\s*(?:起\s*)?)?(?:至|到)\s*({_DAY})"
    rf"|(?:执行|实施|试行)至\s*({_DAY})"
)
_TITLE = re.compile(r"《([^《》]{2,80})》")
_REPEAL = re.compile(r"(?:同时|予以|一并|即行|自行)?(?:废止|停止执行|不再执行|失效)")
# what a document calls itself in 与本通知不一致的 (not 本合同, 本条 of a law's articles)
_KIND = r"(?:实施细则|细则|通知|通告|公告|办法|规定|意见|决定|措施|方案|条例|规则|文件|政策|指引|指南|规范|法)"
_PREVAILS = re.compile(
    rf"(?:与|同)本{_KIND}(?:规定|精神)?(?:不一致|不符|相抵触|抵触|冲突)的?[，,]?\s*"
    rf"(?:以本{_KIND}为准|(?:同时|一律|予以)?(?:失效|废止|停止执行|不再执行))"
)


@dataclass(frozen=True)
class Validity:
    """When a document is in force and what it replaces. Empty strings and tuples: not stated."""

    effective: str = ""  # 施行日期, YYYY-MM-DD
    expires: str = ""  # the last day in force, YYYY-MM-DD (有效期至…, or 施行日期 + 有效期)
    repeals: tuple[str, ...] = ()  # titles of documents it repeals (原《…》同时废止)
    prevails: tuple[str, ...] = ()  # titles of documents it prevails over where they differ (weaker: not repealed)
    prevails_earlier: bool = False  # over earlier rules it does not name (此前…与本通知不一致的，以本通知为准)

    def as_dict(self) -> dict[str, Any]:
        return {
            "effective": self.effective,
            "expires": self.expires,
            "repeals": list(self.repeals),
            "prevails": list(self.prevails),
            "prevails_earlier": self.prevails_earlier,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Validity:
        data = dict(data or {})
        for key in ("repeals", "prevails"):
            data[key] = tuple(data.get(key) or ())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _iso(found: re.Match[str] | None) -> str:
    if found is None:
        return ""
    try:
        return date(*(int(g) for g in found.groups()[:3])).isoformat()
    except ValueError:
        return ""


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。！？!?；;\n])", text) if s.strip()]


def _later(start: str, amount: int, unit: str) -> str:
    """The last day of a period of `amount` years or months beginning on `start` (5 years from 2024-01-01:
    2028-12-31)."""
    day = date.fromisoformat(start)
    months = day.month - 1 + amount * (12 if unit == "年" else 1)
    year, month = day.year + months // 12, months % 12 + 1
    try:
        end = day.replace(year=year, month=month)
    except ValueError:  # 29 February, or the 31st of a shorter month: the period ends on the next month's first
        end = date(year + month // 12, month % 12 + 1, 1)
    return (end - timedelta(days=1)).isoformat()


def _term(sentences: list[str], issued: str) -> tuple[str, str]:
    """(effective, expires) from the document's last clause saying when it takes effect, and the period or end
    stated with it (in the same sentence, or in a sentence of its own about the document)."""
    effective, expires, at = "", "", -1
    for n, sentence in enumerate(sentences):
        for found in _START.finditer(re.sub(r"\s+", "", sentence)):
            when = found.group(1)
            effective, at = (_iso(_DATE.search(when)) if _DATE.search(when) else issued), n
    for n, sentence in enumerate(sentences):
        text = re.sub(r"\s+", "", sentence)
        if n != at and not re.match(_SELF + r"(?:有效期|执行期|实施期|试行期|执行至|实施至)", text):
            continue
        until = _UNTIL.search(text)
        if until:
            begin, end = until.group(1), until.group(2) or until.group(3)
            effective = effective or _iso(_DATE.search(begin or ""))
            expires = _iso(_DATE.search(end))
            continue
        span = _SPAN.search(text)
        if span and effective:
            amount = int(span.group(1)) if span.group(1).isdigit() else _NUMBER[span.group(1)]
            expires = _later(effective, amount, span.group(2))
    return effective, expires


def _repealed(sentences: list[str]) -> tuple[str, ...]:
    """Titles named in a clause that ends by repealing them: 原《…》（文号）同时废止, 《A》和《B》停止执行."""
    titles: list[str] = []
    for sentence in sentences:
        for clause in re.split(r"[，,；;。]", sentence):
            found = _REPEAL.search(clause)
            if found is None:
                continue
            before = clause[: found.start()]
            named = list(_TITLE.finditer(before))
            # the titles lead up to the verb: after the last, only its 文号 in brackets and 自…起
            tail = re.sub(r"[（(][^（）()]{0,40}[）)]", "", before[named[-1].end() :]) if named else "-"
            if re.fullmatch(r"[\s和及、与]*(?:自.{0,20}?起)?[\s同时]*", tail):
                titles.extend(m.group(1) for m in named)
    return tuple(dict.fromkeys(titles))


def _prevailing(sentences: list[str]) -> tuple[tuple[str, ...], bool]:
    """(titles, whether earlier rules unnamed) a document prevails over: 此前…与本通知不一致的，以本通知为准."""
    titles: list[str] = []
    earlier = False
    for sentence in sentences:
        found = _PREVAILS.search(sentence)
        if found is None:
            continue
        named = _TITLE.findall(sentence[: found.start()])
        titles.extend(named)
        earlier = earlier or not named
    return tuple(dict.fromkeys(titles)), earlier


def extract(doc: Document, issued: str = "") -> Validity:
    """The validity one document states (`issued`: its 成文/发布日期, for 自发布之日起施行). Never raises."""
    sentences = _sentences(doc.text)
    effective, expires = _term(sentences, issued)
    prevails, earlier = _prevailing(sentences)
    repeals = tuple(t for t in _repealed(sentences) if t not in prevails)
    return Validity(effective, expires, repeals, prevails, earlier)
