"""Plain text and Markdown -> units: the text encoding, tab-separated table rows, paragraphs flattened into
one line, and Markdown's headings, tables and lists."""

from __future__ import annotations

import re

from policyqa.errors import DocumentError
from policyqa.ingest.segment import NUMERALS, join_pieces
from policyqa.models import Unit


def decode(data: bytes, name: str) -> str:
    """Bytes -> text: UTF-8 (with or without BOM) when it is valid, else what charset-normalizer detects.

    Chinese files that are not UTF-8 are nearly always GB18030/GBK (or Big5); GB18030 is the fallback when
    detection has no answer, since it decodes every GBK file too.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["gb18030", "gbk", "gb2312", "big5", "utf_16", "utf_8"]).best()
    if best is not None:
        return str(best)
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{name}: cannot determine the text encoding; save it as UTF-8") from exc


CELL_MAX = 60  # a tab-separated line whose cells are all this short is a table row even on its own


def _is_row(lines: list[str], i: int) -> bool:
    """A line with tabs is a table row when a neighbouring line has tabs too, or when all its cells are short:
    a long paragraph with a stray tab (a flattened notice: 来源：…\t正文…) is text."""
    if "\t" not in lines[i].strip():
        return False
    around = [lines[j] for j in (i - 1, i + 1) if 0 <= j < len(lines) and lines[j].strip()]
    return any("\t" in line.strip() for line in around) or max(map(len, lines[i].split("\t"))) <= CELL_MAX


def _lines_to_units(text: str) -> list[Unit]:
    units: list[Unit] = []
    gap = 0
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            gap += 1
            continue
        if "\t" in line.strip() and not _is_row(lines, i):
            line = line.replace("\t", " ")
        if "\t" in line.strip():
            units.append(Unit(line.rstrip(), "row", cells=[c.strip() for c in line.split("\t")], gap=gap))
        else:
            pieces = unflatten(line.strip())
            flat = len(pieces) > 1
            units.extend(Unit(p, gap=gap if n == 0 else 1, flattened=flat) for n, p in enumerate(pieces))
        gap = 0
    return units


# A space between Chinese characters or punctuation: in a long line of Chinese text it is where a paragraph
# break was flattened (spaces next to Latin words and numbers stay).
_FLAT_BREAK = re.compile(r"(?<=[^\x00-\x7f])[ \u3000\xa0]+(?=[^\x00-\x7f])")
# Numbering that starts a new item right after a sentence or a colon, inside a flattened paragraph.
_INLINE_NUMBER = re.compile(
    r"(?<=[。；;：:！？!?])(?=(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[）)]"
    rf"|第[{NUMERALS}\d]+[章节条]"
    r"|\d{1,2}[、．.](?!\d)))"
)
FLATTENED = 200  # a line this long with several flattened breaks is a whole document on one line


def unflatten(line: str) -> list[str]:
    """A document whose paragraph breaks were flattened into spaces, back into paragraphs: split at the
    flattened breaks, then before numbering that follows a sentence end (一、 （一） 第X条 1.)."""
    if len(line) < FLATTENED or len(_FLAT_BREAK.findall(line)) < 3:
        return [line]
    pieces: list[str] = []
    for piece in _FLAT_BREAK.split(line):
        if pieces and len(pieces[-1]) <= 2:  # letter-spaced words (财 政 部) are not paragraphs
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    out: list[str] = []
    for piece in pieces:
        out.extend(p.strip() for p in _INLINE_NUMBER.split(piece))
    return [p for p in out if p]


def load_txt(data: bytes, name: str) -> list[Unit]:
    """Plain text; Markdown headings (`## 第一章 总则`) saved as .txt, or uploaded under such a name, are
    still headings when the text has at least two of them (one line starting with `# ` may be anything)."""
    units = _lines_to_units(decode(data, name))
    marked = [(u, m) for u in units if u.kind == "line" and (m := _MD_HEADING.match(u.text)) and m.group(2)]
    if len(marked) >= 2:
        for u, m in marked:
            u.text, u.kind, u.level = m.group(2), "heading", len(m.group(1))
    return units


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_MD_COMMENT = re.compile(r"^<!--.*-->$")


def load_md(data: bytes, name: str) -> list[Unit]:
    units: list[Unit] = []
    for unit in _lines_to_units(decode(data, name)):
        m = _MD_HEADING.match(unit.text)
        if _MD_COMMENT.match(unit.text):
            units.append(Unit(unit.text, "removed", rule="markup comment"))
        elif m:
            units.append(Unit(m.group(2), "heading", level=len(m.group(1)), gap=unit.gap))
        elif unit.text.startswith("|") and unit.text.endswith("|"):
            if not _MD_RULE.match(unit.text):
                cells = [c.strip() for c in unit.text.strip("|").split("|")]
                units.append(Unit("\t".join(cells), "row", cells=cells, gap=unit.gap))
        elif units and unit.gap == 0 and units[-1].kind == "line" and not re.match(r"^([-*+]|\d+\.)\s", unit.text):
            units[-1].text = join_pieces(units[-1].text, unit.text)  # a paragraph wrapped over several lines
        else:
            units.append(Unit(re.sub(r"^[-*+]\s+", "", unit.text), gap=unit.gap))
    return units
