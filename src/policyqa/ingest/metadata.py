"""Policy metadata read from a cleaned document: title, 发文机关, 发文字号, 成文/发布日期, a law's adoption and
revision dates. Heuristics over the opening, the title, the file name and the signature at the end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policyqa.ingest.segment import NUMERALS
from policyqa.models import Document

# 穗府办规〔2024〕13号, 国办发[2020]6号, 国务院令第746号, 广州市人民政府令第179号, 主席令第七十三号
_NUMBER = re.compile(
    r"[\u4e00-\u9fa5]{1,14}\s*[〔\[［(（【]\s*(?:19|20)\d{2}\s*[〕\]］)）】]\s*第?\s*\d{1,5}\s*号"
    r"|[\u4e00-\u9fa5]{0,12}(?:政府|国务院|主席)令\s*第?\s*[\d一二三四五六七八九十百零〇]{1,6}\s*号"
)
_CITED = re.compile(r"》\s*[（(]\s*$")  # 《某办法》（国办发〔2020〕6号）: another document's number
_DATE = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日|((?:19|20)\d{2})-(\d{1,2})-(\d{1,2})")
_LABELLED_DATE = re.compile(r"(?:成文|发布|发文|印发|公布|发表)(?:日期|时间)\s*[:：]\s*")
_LABELLED_ISSUER = re.compile(
    r"(?:发文机关|发布机构|发文单位|发布单位|预算主管部门|信息来源|来源)\s*[:：]\s*([^\s:：]{2,40})"
)
# What the name of a body ends with (a 来源 such as 国家法律法规数据库 or 新华社 is not an issuer)
_ORGAN = re.compile(
    r"(?:政府|国务院|办公厅|办公室|委员会|常务委员会|人民代表大会|部|厅|局|委|署|院|会|办|中心|指挥部|领导小组|小组|组|"
    r"处|行|银行|办事处|管委会|管理委员会|机制|区|开发区)$"
)
_ABOUT = re.compile(r"^(.{2,80}?)关于")
_CONGRESS = re.compile(r"(?:第[一二三四五六七八九十]+届)?((?:[\u4e00-\u9fa5]{2,10}?)?人民代表大会(?:常务委员会)?)")
_LAW_EVENT = re.compile(r"(通过|修正|修订|公布|施行)")
_SIGNATURE_MAX = 60


@dataclass(frozen=True)
class Metadata:
    """What a reader asks of a policy: which document, issued by whom, when. Empty strings: not found."""

    title: str = ""
    issuer: str = ""  # 发文机关
    doc_number: str = ""  # 发文字号
    date: str = ""  # 成文或发布日期, YYYY-MM-DD; for a law, its latest revision (else its adoption)
    adopted: str = ""  # a law: 通过
    revised: tuple[str, ...] = ()  # a law: 修正/修订, oldest first

    def as_dict(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every value, seconds for the rows of 20,000 documents
        return {**{f: getattr(self, f) for f in self.__dataclass_fields__}, "revised": list(self.revised)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Metadata:
        data = dict(data or {})
        data["revised"] = tuple(data.get("revised") or ())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _iso(match: re.Match[str]) -> str:
    y, m, d = (g for g in match.groups() if g)
    month, day = int(m), int(d)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return ""
    return f"{int(y):04d}-{month:02d}-{day:02d}"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _paragraphs(doc: Document) -> list[str]:
    return [b.text.strip() for b in doc.blocks if b.text.strip()]


def doc_number(doc: Document, stem: str = "") -> str:
    """The document's own 发文字号: on a line of its own near the start, else in the title or the file name,
    else the first one in the opening that is not cited after another document's 《title》."""
    lines = _paragraphs(doc)[:8]
    for line in lines:
        found = _NUMBER.fullmatch(_squash(line))
        if found:
            return found.group(0)
    joined = " ".join(lines[:3])
    if re.search(r"政府令$", _squash(lines[0]) if lines else "") and len(lines) > 1:
        number = re.match(r"第[\d一二三四五六七八九十百零〇]{1,6}号$", _squash(lines[1]))
        if number:
            return _squash(lines[0]) + number.group(0)
    for text in (doc.title, stem):
        found = _NUMBER.search(text)
        if found:
            return _squash(found.group(0))
    for found in _NUMBER.finditer(joined[:600]):
        if not _CITED.search(joined[: found.start()]):
            return _squash(found.group(0))
    return ""


def _organs(text: str) -> str:
    """The issuing bodies ending `text` (a signature block): its trailing whitespace-separated names that
    read as bodies; a name broken by the layout (财 政 / 部) is joined again."""
    words = text.split()
    if len(words) > 1 and all(len(w) <= 2 for w in words):
        words = ["".join(words)]
    names: list[str] = []
    for word in reversed(words):
        if not _ORGAN.search(word) or len(word) > 40:
            break
        names.insert(0, word)
    return " ".join(names)


_SIGNED = re.compile(
    r"(?:^|[。！;；]\s*)([^。！;；]{0,60}?)\s*(" + _DATE.pattern + r")(?=\s|$|印发|发布|责任编辑|关于)"
)


def _signed(line: str) -> tuple[str, str] | None:
    """(issuer, date) when `line` ends a text with a signature (`机关 2020年2月4日`), or holds one after a
    sentence (`请遵照执行。 2020年2月19日`)."""
    found = ([None, *_SIGNED.finditer(line)])[-1]
    if found is None or re.search(r"[-—至到~]\s*$", found.group(1)):
        return None
    rest = line[found.end() :].strip()
    if len(line) <= _SIGNATURE_MAX and rest and not re.match(r"(?:印发|发布|公布|施行|责任编辑|[（(]此件)", rest):
        return None
    date = _iso(_DATE.search(found.group(2)))  # type: ignore[arg-type]
    return (_organs(found.group(1)), date) if date else None


def _signature(doc: Document) -> tuple[str, str]:
    """(issuer, date) from the signature: at the end (the issuing bodies on the date's line or on short
    lines just above it), else under a cover letter near the start."""
    lines = _paragraphs(doc)
    tail = list(range(len(lines) - 1, max(-1, len(lines) - 6), -1))
    head = [i for i in range(min(8, len(lines))) if i not in tail]
    for at in tail + head:
        signed = _signed(lines[at])
        if signed is None:
            continue
        issuer, date = signed
        back = at - 1
        above: list[str] = []
        while back >= 0 and len(lines[back]) <= 30 and _organs(lines[back]) == lines[back].strip():
            above.insert(0, lines[back].strip())
            back -= 1
        if len(issuer) <= 2 and above == [] and back >= 0 and len(_squash(lines[back])) <= 4:
            issuer = _squash(lines[back]) + issuer  # 财 政 / 部: a name broken over two lines
        if above and (not issuer or len(issuer) <= 2):
            issuer = _organs(" ".join([*above, issuer]))
        elif above and at in tail:
            issuer = " ".join([*above, issuer])
        return issuer, date
    return "", ""


def _head_date(doc: Document) -> str:
    """A labelled publication date (发布日期：…), or a timestamp line opening a saved web page, or a date
    alone in parentheses under a title: within the opening."""
    head = "\n".join(_paragraphs(doc)[:6])[:600]
    labelled = _LABELLED_DATE.search(head)
    if labelled:
        found = _DATE.match(head, labelled.end())
        if found:
            return _iso(found)
    for line in _paragraphs(doc)[:6]:
        squashed = _squash(line)
        found = _DATE.match(squashed)
        if found and (found.end() == len(squashed) or re.match(r"\d{1,2}:\d{2}", squashed[found.end() :])):
            return _iso(found)
        found = re.fullmatch(r"[（(](?:" + _DATE.pattern + r")[)）]", squashed)
        if found:
            return _iso(_DATE.search(squashed))  # type: ignore[arg-type]
    return ""


def _law(doc: Document) -> tuple[str, tuple[str, ...], str]:
    """(adopted, revised, issuer) from a law's history lines before its first chapter or article."""
    head = doc.text[:1500]
    stop = re.search(rf"^\s*第[{NUMERALS}]+[编章条]", head, re.M)
    head = head[: stop.start()] if stop else head[:400]
    adopted, revised, issuer = "", [], ""
    dates = list(_DATE.finditer(head))
    for n, found in enumerate(dates):
        end = dates[n + 1].start() if n + 1 < len(dates) else len(head)
        event = [e for e in _LAW_EVENT.findall(head[found.end() : end]) if e != "施行"]
        what = head[found.end() : end]
        if not event or not re.search(r"(会议|人民代表大会|主席令)", what[:80]):
            continue
        if event[-1] == "通过" and "修改" not in what and not adopted:
            adopted = _iso(found)
            body = re.search(
                r"(?:第[一二三四五六七八九十]+届)?((?:[\u4e00-\u9fa5]{2,10}?)?人民代表大会(?:常务委员会)?)", what
            )
            issuer = body.group(1) if body else ""
        elif event[-1] in ("修正", "修订") or "修改" in what:
            revised.append(_iso(found))
    return adopted, tuple(d for d in revised if d), issuer


def _issuer(doc: Document, number: str) -> str:
    """发文机关: from a labelled field, the title's 'X关于…', or the body of a 政府令."""
    about = _ABOUT.match(doc.title.strip())
    if about and _ORGAN.search(_squash(about.group(1))) and "印发" not in about.group(1):
        return about.group(1).strip()
    order = re.match(r"(.*?(?:政府|国务院))令", number)
    if order:
        return order.group(1)
    lines = _paragraphs(doc)[:5]
    heads = [i for i, line in enumerate(lines) if line.startswith("关于")]
    if heads and heads[0] > 0 and all(_organs(line) == line for line in lines[: heads[0]]):
        return " ".join(lines[: heads[0]])  # 中共浙江省委 / 浙江省人民政府 / 关于…的若干意见
    issued = re.match(r"^([\u4e00-\u9fa5]{2,30}?)(?:印发|发布)", doc.title.strip())
    if issued and _ORGAN.search(issued.group(1)):
        return issued.group(1)
    head = "\n".join(_paragraphs(doc)[:6])
    for found in _LABELLED_ISSUER.finditer(head):
        name = found.group(1)
        if _ORGAN.search(name):
            return name
    return ""


_STAMP = re.compile(r"((?:19|20)\d{2}-\d{1,2}-\d{1,2})(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?")


def _page(doc: Document) -> tuple[str, str]:
    """(issuer, date) from a saved web page's article line that cleaning set aside as page chrome:
    `标题 2024-01-05 来源：广州市医疗保障局`, or a lone publication timestamp."""
    title = _squash(doc.title)
    stamps = []
    for _, text in doc.removed:
        squashed = _squash(text)
        line = re.search(_STAMP.pattern + r"\s*来源\s*[:：]\s*([^\s:：]{2,40})", text)
        if line and (not title or title[:12] in squashed):
            source = line.group(2)
            return (source if _ORGAN.search(source) else ""), _iso(_DATE.search(line.group(1)))  # type: ignore[arg-type]
        if _STAMP.fullmatch(text.strip()):
            stamps.append(_iso(_DATE.search(text)))  # type: ignore[arg-type]
    return "", (stamps[0] if len(stamps) == 1 else "")


def extract(doc: Document) -> Metadata:
    """Metadata of one document; a field not found is empty. Never raises."""
    stem = doc.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    number = doc_number(doc, stem)
    adopted, revised, law_issuer = _law(doc)
    if adopted:
        return Metadata(doc.title, law_issuer, "", (revised or (adopted,))[-1], adopted, revised)
    signed_by, signed_on = _signature(doc)
    order = re.match(r"(.*?(?:政府|国务院))令", number)
    issuer = order.group(1) if order else signed_by or _issuer(doc, number)
    date = signed_on or _head_date(doc)
    if not (issuer and date):
        page_issuer, page_date = _page(doc)
        issuer, date = issuer or page_issuer, date or page_date
    return Metadata(doc.title, issuer, number, date)
