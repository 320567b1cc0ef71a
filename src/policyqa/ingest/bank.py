"""The question bank: known questions, each saying where it is answered, attached to the passages that hold it.

A bank line says where a question is answered, either by a law and an article::

    {"q": "邻居装修噪音太大怎么办？", "law": "民法典", "article": "第二百九十四条"}

or by a document (corpus-relative file) and a string it contains (the operators' own questions, kept in
`<corpus>/.policyqa/questions.jsonl` with an "id" and the time they were "added")::

    {"id": "…", "q": "…", "source": "通知.txt", "contains": "缓缴期间免收滞纳金", "added": "…"}

A law is matched by its normalised title (without 中华人民共和国, an edition date or a 修正/修订 note, a
编/分编 name) against the normalised document title and the pieces of its file name; an article by number,
at the start of a line of the passage (so also inside passages that pack several articles) or, for a passage
continuing a long article, in its section breadcrumb.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from policyqa.ingest import sidecar

DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED = DATA / "stard-bank.jsonl"  # built from stard-train.jsonl by `python -m policyqa.learn`
OPERATORS = Path(sidecar.FOLDER) / sidecar.QUESTIONS  # the operators' questions, relative to the corpus
RULES = 2  # the attachment rules' version: a new one re-attaches the bank of every snapshot at the next build
# (2: an operator's string is also looked for in the passage's span of the document, for table rows)
SHIPPED_ORIGIN = "stard"
OPERATOR_ORIGIN = "operator"

DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
UNITS = {"十": 10, "百": 100, "千": 1000}
NUMERAL = "零〇一二三四五六七八九十百千两"
PREFIXES = ("中华人民共和国",)
# 第X条 or 第X条之一 (刑法 inserts articles so), in Chinese numerals or digits
_ARTICLE = re.compile(rf"第([{NUMERAL}\d]+)条(?:之([{NUMERAL}]+))?")
_REFERENCE = re.compile(rf"^(.*?)(第[{NUMERAL}\d]+条(?:之[{NUMERAL}]+)?)$")
# an article heading: at the start of the text or of a line, optionally after markdown emphasis/heading marks
_ARTICLE_HEAD = re.compile(rf"(?:^|\n)[#>*\s]*第([{NUMERAL}\d]+)条(?:之([{NUMERAL}]+))?(?=[\s　:：*]|$)")
_EDITION = re.compile(r"[（(][^（()）]*(?:\d{4}|修正|修订|试行)[^（()）]*[)）]\s*$")
_PART = re.compile(r"[-—_\s]*(?:第[一二三四五六七]编)?[\u4e00-\u9fff]{0,6}(?:编|分编)$")
_EXTENSION = re.compile(r"\.(?:md|txt|html?|pdf|docx?)$", re.IGNORECASE)
_FILE_PIECES = re.compile(r"[-_\s]+")

Article = tuple[int, int]  # (number, 之N sub-number or 0)


def chinese_number(text: str) -> int:
    """二百九十四 -> 294, 十二 -> 12, 一千零三 -> 1003, "56" -> 56. Raises ValueError on anything else."""
    if text.isdigit():
        return int(text)
    total, digit = 0, None
    for ch in text:
        if ch in DIGITS:
            digit = DIGITS[ch]
        elif ch in UNITS:
            total += (1 if digit is None else digit) * UNITS[ch]
            digit = None
        else:
            raise ValueError(f"not a Chinese number: {text!r}")
    return total + (digit or 0)


def _numbered(m: re.Match[str]) -> Article:
    return chinese_number(m.group(1)), chinese_number(m.group(2)) if m.group(2) else 0


def article_number(text: str) -> Article | None:
    """第二百九十四条 -> (294, 0); 第一百二十条之一 -> (120, 1); None when `text` is no article number."""
    m = _ARTICLE.fullmatch(_squash(text))
    return _numbered(m) if m else None


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def law_title(title: str) -> str:
    """The form laws are matched by: NFKC, no spaces, no 《》, no leading 中华人民共和国, no trailing edition
    note such as (2020-05-28) or （2018年修正）. 中华人民共和国民法典 -> 民法典; 商标法(2019-04-23) -> 商标法.
    Titles that merely mention a law (最高人民法院关于适用《民法典》…的解释) stay whole, so never equal it."""
    t = _squash(title)
    for _ in range(2):
        t = _EDITION.sub("", t)
    t = re.sub(r"^《([^《》]*)》$", r"\1", t)
    for prefix in PREFIXES:
        if t.startswith(prefix) and len(t) > len(prefix):
            t = t[len(prefix) :]
    return t


def parse_reference(name: str) -> tuple[str, str] | None:
    """'中华人民共和国民法典第五十四条' -> ('民法典', '第五十四条'); None when it names no article."""
    m = _REFERENCE.match(_squash(name))
    if not m or not m.group(1) or article_number(m.group(2)) is None:
        return None
    return law_title(m.group(1)), m.group(2)


def document_laws(source: str, title: str) -> set[str]:
    """The law titles a document may be: its normalised title, and its file name as a whole and by pieces,
    each without an edition date, and with a trailing 编 name dropped (law-民法典-物权编(2020-05-28).md ->
    {'law-民法典-物权编', '民法典-物权编', '民法典', '物权编', 'law', ...}). Only equality with a bank law
    counts, so a stray piece such as 'law' matches nothing."""
    out: set[str] = set()
    name = _EXTENSION.sub("", source.rsplit("/", 1)[-1])
    for whole in (title, name):
        t = law_title(whole)
        if not t:
            continue
        out.add(t)
        out.add(law_title(_PART.sub("", t)))
        out.update(law_title(p) for p in _FILE_PIECES.split(t) if p)
    # a heading such as 中华人民共和国民法典 第二编 物权 or a file 民法典物权编 -> 民法典
    out.update(m.group(1) for t in list(out) if (m := re.match(r"^(.+?法典)", t)))
    out.discard("")
    return out


def passage_articles(text: str, section: str = "") -> set[Article]:
    """The articles a passage holds: every 第X条 opening a line of its text; when none does (a passage that
    continues a long article), the last 第X条 of its section breadcrumb."""
    found = {_numbered(m) for m in _ARTICLE_HEAD.finditer(unicodedata.normalize("NFKC", text))}
    if not found and section:
        heads = list(_ARTICLE.finditer(unicodedata.normalize("NFKC", section)))
        if heads:
            found.add(_numbered(heads[-1]))
    return found


@dataclass(frozen=True)
class Known:
    """One bank line: a question and where it is answered (a law article, or a document and a string)."""

    q: str
    law: str = ""
    article: str = ""  # as written, 第二百九十四条
    source: str = ""
    contains: str = ""
    origin: str = SHIPPED_ORIGIN  # "stard" (the shipped bank) or "operator"
    id: str = ""  # an operator's question's id

    def as_dict(self) -> dict[str, str]:
        where = {"law": self.law, "article": self.article} if self.law else {"source": self.source}
        if not self.law:
            where["contains"] = self.contains
        return {"q": self.q, **where, "origin": self.origin, **({"id": self.id} if self.id else {})}


@dataclass(frozen=True)
class Passage:
    """What attachment reads of a passage."""

    source: str
    title: str
    section: str
    text: str
    # The document's text at the passage: what an operator's string was checked against and copied from. It
    # differs from `text` for a table row, which a passage reads as 序号 1｜名称 … and the document as 1<tab>….
    span: str = ""


@dataclass(frozen=True)
class Attached:
    """For each bank question, the numbers of the passages holding its answer; and the operators' questions
    that hold on to nothing (their string is no longer in the document, or the document is gone)."""

    rows: list[list[int]]
    unmatched: list[Known]


def parse_line(row: dict[str, object], origin: str = SHIPPED_ORIGIN) -> Known | None:
    """A bank line as a Known; None when it says no question or no place."""
    q = str(row.get("q") or "").strip()
    law, article = str(row.get("law") or ""), str(row.get("article") or "")
    source, contains = str(row.get("source") or ""), str(row.get("contains") or "")
    if not q or not ((law and article_number(article)) or (source and contains)):
        return None
    return Known(q, law_title(law) if law else "", _squash(article), source, contains, origin, str(row.get("id") or ""))


def read_bank(path: Path, origin: str = SHIPPED_ORIGIN) -> list[Known]:
    """A bank file's questions (none when it is missing); lines that are not JSON objects are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        known = parse_line(row, origin) if isinstance(row, dict) else None
        if known is not None:
            out.append(known)
    return out


def corpus_bank(corpus: Path) -> list[Known]:
    """The bank a build of `corpus` attaches: the shipped one, then the operators' questions."""
    return read_bank(SHIPPED) + read_bank(corpus / OPERATORS, OPERATOR_ORIGIN)


def bank_state(corpus: Path) -> dict[str, str]:
    """The hashes of the bank's files as meta.json records them: a change of either means a new snapshot."""

    def digest(path: Path) -> str:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return ""

    return {"shipped": digest(SHIPPED), "operators": digest(corpus / OPERATORS), "rules": str(RULES)}


def stard_bank(rows: Iterable[dict[str, object]]) -> list[Known]:
    """stard-train lines -> one Known per (question, cited article), in file order, duplicates dropped."""
    out: list[Known] = []
    for row in rows:
        for art in row.get("articles", []) or []:  # type: ignore[attr-defined]
            parsed = parse_reference(str(art["name"]))
            if parsed is not None:
                out.append(Known(str(row["q"]), parsed[0], parsed[1]))
    return list(dict.fromkeys(out))


def attach(bank: Sequence[Known], passages: Sequence[Passage]) -> Attached:
    """For each bank question, the numbers of the passages that hold its answer (empty: attached to nothing,
    e.g. its law is not in the corpus)."""
    wanted = {k.law for k in bank if k.law}
    laws_of_doc = {p.source: document_laws(p.source, p.title) & wanted for p in passages}
    by_article: dict[tuple[str, Article], list[int]] = {}
    for n, p in enumerate(passages):
        for law in laws_of_doc[p.source]:
            for art in passage_articles(p.text, p.section):
                by_article.setdefault((law, art), []).append(n)
    rows: list[list[int]] = []
    for k in bank:
        number = article_number(k.article) if k.law else None
        if number is not None:
            rows.append(list(by_article.get((k.law, number), [])))
        else:
            needle = _squash(k.contains)
            rows.append([n for n, p in enumerate(passages) if p.source == k.source and _holds(p, needle)])
    unmatched = [k for k, r in zip(bank, rows, strict=True) if not r and k.origin == OPERATOR_ORIGIN]
    return Attached(rows, unmatched)


def _holds(passage: Passage, needle: str) -> bool:
    return needle in _squash(passage.text) or needle in _squash(passage.span)


def wanted(bank: Sequence[Known]) -> Callable[[str, str], bool]:
    """Whether a document (source, title) may hold a passage some bank question is attached to: only the
    passages of those documents are read to attach the bank."""
    laws = {k.law for k in bank if k.law}
    sources = {k.source for k in bank if not k.law}
    return lambda source, title: source in sources or bool(document_laws(source, title) & laws)
