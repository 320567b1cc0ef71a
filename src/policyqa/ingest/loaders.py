"""Files -> Document: per-format loaders, repair of extraction artefacts, and policy structure."""

from __future__ import annotations

import hashlib
import os
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from policyqa.errors import CorpusError, DocumentError
from policyqa.ingest import webpage
from policyqa.ingest.segment import NUMERALS, TERMINAL, split_sentences
from policyqa.models import Block, Document, Unit

# Files under the corpus that are never documents (evaluation sets, notes for operators).
SKIP_DIRS = frozenset({"eval", ".git", "__pycache__"})


# --- loaders --------------------------------------------------------------------------------------


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
            units[-1].text = _join(units[-1].text, unit.text)  # a paragraph wrapped over several lines
        else:
            units.append(Unit(re.sub(r"^[-*+]\s+", "", unit.text), gap=unit.gap))
    return units


def load_docx(data: bytes, name: str) -> list[Unit]:
    """Paragraphs with heading styles as headings, and tables as rows, in document order."""
    import io

    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    units: list[Unit] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(element, document)
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name if para.style is not None else "") or ""
            m = re.match(r"^(Heading|标题)\s*(\d)", style)
            if style == "Title":
                units.append(Unit(text, "heading", level=0))
            elif m:
                units.append(Unit(text, "heading", level=int(m.group(2))))
            else:
                units.append(Unit(text))
        elif tag == "tbl":
            for row in Table(element, document).rows:
                cells = [re.sub(r"\s+", " ", c.text).strip() for c in row.cells]
                cells = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1] or not c]  # merged cells
                if any(cells):
                    units.append(Unit("\t".join(cells), "row", cells=cells))
            units.append(Unit("", "end"))
    return units


def load_pdf(data: bytes, name: str) -> list[Unit]:
    """Text lines with page numbers, wrapped lines joined into paragraphs, tables as rows."""
    import io

    import pdfplumber

    units: list[Unit] = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            tables = page.find_tables()
            boxes = [t.bbox for t in tables]

            def outside(obj: dict[str, float], boxes: list[tuple[float, float, float, float]] = boxes) -> bool:
                return not any(b[0] <= obj["x0"] and obj["x1"] <= b[2] and b[1] <= obj["top"] <= b[3] for b in boxes)

            items: list[tuple[float, Unit | list[Unit]]] = []
            lines = page.filter(outside).extract_text_lines() if boxes else page.extract_text_lines()
            for line in lines:
                items.append((line["top"], Unit(line["text"].strip(), page=number, width=line["x1"] - line["x0"])))
            for table in tables:
                rows = [[re.sub(r"\s+", "", c or "") for c in row] for row in table.extract()]
                items.append((table.bbox[1], [Unit("\t".join(r), "row", cells=r, page=number) for r in rows if any(r)]))
            for _, item in sorted(items, key=lambda it: it[0]):
                if isinstance(item, list):
                    units.extend(item)
                    units.append(Unit("", "end", page=number))
                elif item.text:
                    units.append(item)
    return _join_pdf_lines(units)


def _join_pdf_lines(units: list[Unit]) -> list[Unit]:
    """A PDF line that fills the line width and does not end a sentence continues in the next line."""
    widths = [u.width for u in units if u.kind == "line"]
    full = max(widths) * 0.85 if widths else 0.0
    out: list[Unit] = []
    last_full = False  # the last line appended or joined filled the width
    for u in units:
        prev = out[-1] if out else None
        if (
            prev is not None
            and u.kind == "line"
            and prev.kind == "line"
            and last_full
            and not _terminated(prev.text)
            and not _is_numbered(u.text)
        ):
            prev.text = _join(prev.text, u.text)
        else:
            out.append(Unit(u.text, u.kind, u.level, list(u.cells), u.gap, u.page))
        last_full = u.kind == "line" and u.width >= full
    return out


LOADERS: dict[str, Callable[[bytes, str], list[Unit]]] = {
    ".txt": load_txt,
    ".md": load_md,
    ".markdown": load_md,
    ".html": webpage.load_html,
    ".htm": webpage.load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
}


def sniff(data: bytes) -> str:
    """The file type a content says it is (by magic bytes), as an extension: .pdf .docx .html .txt."""
    head = data[:2048].lstrip().lower()
    if data.startswith(b"%PDF"):
        return ".pdf"
    if data.startswith(b"PK\x03\x04"):
        return ".docx" if b"word/" in data[:65536] else ".zip"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head or b"<head" in head:
        return ".html"
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return ".bin"
    return ".txt"


def supported(name: str) -> bool:
    """Whether a file of this name is a document policyqa reads (by its extension)."""
    return os.path.splitext(name)[1].lower() in LOADERS


# --- cleaning -------------------------------------------------------------------------------------

_CREDIT = re.compile(
    r"(图片来源|图片提供|图片由|供图|摄影[:：/]|[\s/]摄影$|摄\s*$|图/|图：|图:|^图\s*\d|^图为|^（图|^\(图|^资料来源)"
)
_PAGE_NUMBER = re.compile(
    r"^(第\s*\d+\s*页(\s*共\s*\d+\s*页)?|[-—–]?\s*\d{1,4}\s*[-—–]?|\d+\s*/\s*\d+|page\s*\d+)$", re.I
)


def _join(left: str, right: str) -> str:
    """Join two pieces of one sentence: no space between CJK characters, one between Latin words."""
    if left and right and left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        return f"{left} {right}"
    return left + right


def _terminated(text: str) -> bool:
    return bool(text) and text.rstrip()[-1] in TERMINAL


def _drop_repeats(units: list[Unit]) -> list[Unit]:
    """Mark page numbers and running headers or footers (short lines that repeat on many pages) removed."""
    counts = Counter(u.text for u in units if u.kind == "line" and len(u.text) <= 40 and not u.flattened)
    pages = len({u.page for u in units})
    repeated = {t for t, n in counts.items() if n >= 3 and (pages >= 3 or n >= 4) and not _terminated(t)}
    for u in units:
        if u.flattened:
            continue  # page furniture exists only where there were pages
        if u.kind == "line" and _PAGE_NUMBER.match(u.text):
            u.kind, u.rule = "removed", "page number"
        elif u.kind == "line" and u.text in repeated:
            u.kind, u.rule = "removed", "running header"
    return units


_TOC = re.compile(r"^目\s*录$")
_LEADER = re.compile(r"(…{2,}|\.{4,}|·{4,}|-{4,})\s*\d*$|^[….·\s\d]+$")


def _drop_contents(units: list[Unit]) -> None:
    """Mark a table of contents removed: a 目录 line and the entries after it (lines with leader dots, or
    short titles that appear again below as the real headings)."""
    for i, u in enumerate(units):
        contents_table = u.kind == "row" and [c for c in u.cells if c] and _TOC.match("".join(u.cells).strip())
        if not contents_table and (u.kind not in ("line", "heading") or not _TOC.match(u.text.strip())):
            continue
        entries: list[Unit] = []
        for v in units[i + 1 :]:
            if v.kind == "removed":
                continue
            if contents_table or v.kind == "end":
                if v.kind != "row":
                    break
                entries.append(v)  # the rows of a contents table
                continue
            short = v.kind in ("line", "heading") and len(v.text) <= 40 and not _terminated(v.text)
            if _LEADER.search(v.text) or (short and (not entries or v.text != entries[0].text)):
                entries.append(v)
            else:
                break
        later = {v.text for v in units[i + 1 + len(entries) :]}
        leaders = all(_LEADER.search(v.text) for v in entries)
        if entries and (leaders or entries[0].text in later):
            for v in [u, *entries]:
                v.kind, v.rule = "removed", "table of contents"
            return


def _is_numbered(text: str) -> bool:
    return heading_style(text) is not None


_DAY = r"[\d一二三四五六七八九十]{1,3}"
_SIGNED = re.compile(rf"(?:\d{{4}}|[〇○零一二三四五六七八九]{{4}})\s*年\s*{_DAY}\s*月\s*{_DAY}\s*日")  # a signing date
_DOC_NUMBER = re.compile(r"[〔\[［(（]\d{4}[〕\]］)）]\s*\d+\s*号|\d{4}\s*年\s*\d{1,2}\s*月")


def _captions(units: list[Unit]) -> None:
    """Mark caption and picture-credit lines that interrupt the body text removed."""
    lines = [u for u in units if u.kind != "removed"]
    gaps = [u.gap for u in lines[1:]]
    usual = statistics.median(gaps) if gaps else 1
    found: set[int] = set()
    for i, u in enumerate(lines):
        if u.kind != "line" or i == 0 or len(u.text) > 50 or _is_numbered(u.text) or _DOC_NUMBER.search(u.text):
            continue
        if u.flattened:
            continue  # captions are a layout artefact: a flattened text has no layout left
        if _terminated(u.text) and not u.text.startswith("图"):
            continue  # a whole sentence is body text, whatever words it holds
        if _CREDIT.search(u.text):
            found.add(i)
            continue
        if _terminated(u.text) or "。" in u.text:
            continue
        if u.text.rstrip()[-1] in "：:":
            continue  # it introduces what follows: the addressees of a notice (各县人民政府：), a list's lead
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt is not None and nxt.kind == "row":
            continue  # a table title
        if nxt is None or (nxt.kind == "line" and _SIGNED.fullmatch(nxt.text.strip())):
            continue  # the document's last line, or the body that signs it above its date (落款)
        wide_gap = u.gap > usual  # figures leave a wider gap than paragraphs do
        prev = next((lines[j] for j in range(i - 1, -1, -1) if j not in found), None)
        interrupts = (
            prev is not None
            and prev.kind == "line"
            and len(prev.text) >= 30
            and not _terminated(prev.text)
            and nxt is not None
            and nxt.kind == "line"
            and not _is_numbered(nxt.text)
        )
        if wide_gap or interrupts:
            found.add(i)
    for i in found:
        lines[i].kind, lines[i].rule = "removed", "caption"


def _rejoin(units: list[Unit]) -> list[Unit]:
    """Rejoin sentences cut at page breaks: a long unterminated paragraph continues in the next one."""
    out: list[Unit] = []
    for u in units:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == "line"
            and u.kind == "line"
            and len(prev.text) >= 30
            and not _terminated(prev.text)
            and not _is_numbered(u.text)
            and re.search(r"[。；;，,]", prev.text)
        ):
            prev.text = _join(prev.text, u.text)
            continue
        out.append(Unit(u.text, u.kind, u.level, list(u.cells), u.gap, u.page, flattened=u.flattened))
    return out


# --- policy structure -----------------------------------------------------------------------------

_CN = NUMERALS
_STYLES: list[tuple[str, re.Pattern[str]]] = [
    ("volume", re.compile(rf"^第[{_CN}\d]+(分)?编")),
    ("chapter", re.compile(rf"^第[{_CN}\d]+章")),
    ("part", re.compile(rf"^第[{_CN}\d]+节")),
    ("article", re.compile(rf"^第[{_CN}\d]+条")),
    ("cn", re.compile(rf"^[{_CN}]+[、．.](?!\d)")),
    ("cn_paren", re.compile(rf"^[（(][{_CN}]+[）)]")),
    ("num", re.compile(r"^\d{1,2}[.．、](?!\d)")),
    ("num_paren", re.compile(r"^[（(]\d{1,2}[）)]")),
    ("circled", re.compile(r"^[①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳]")),
    ("ordinal", re.compile(r"^(其[一二三四五六七八九十]|[一二三四五六七八九十]是)")),
]
_STRUCTURAL = frozenset({"volume", "chapter", "part"})
# Punctuation that a title does not hold: a numbered line with any of it is a sentence, not a heading
# (a comma it may hold: （一）优化协同创新机制，营造良好发展生态).
_SENTENCE_PUNCT = re.compile(r"[。；;！？!?：:]")
_FIRST_SENTENCE = re.compile(r"^[^。！？!?]*[。！？!?]")
TITLE_MAX = 40


def heading_style(text: str) -> str | None:
    for style, pattern in _STYLES:
        if pattern.match(text):
            return style
    return None


def reads_as_title(text: str) -> bool:
    """Short, and no sentence punctuation anywhere: 一、总体要求 or （一）加大资金支持, not （一）文字作品；."""
    return len(text) <= TITLE_MAX and not _SENTENCE_PUNCT.search(text)


def _run_in_title(text: str) -> str | None:
    """The title of a numbered paragraph that opens with one (（一）加强组织领导。各地要…), else None."""
    m = _FIRST_SENTENCE.match(text)
    if m is None or m.end() >= len(text.rstrip()):
        return None
    head = m.group(0).rstrip("。！？!? ")
    return head if reads_as_title(head) else None


def _sentence_label(sentence: str) -> str:
    head = sentence.rstrip("。；;：: ")
    return re.split(r"[，,]", head)[0][:60] if len(head) > 60 else head


# Rank of each numbering style in the heading path: markup headings, then the hierarchy of Chinese laws
# (编 章 节 条) and of official documents (GB/T 9704: 一、 （一） 1. （1）), whatever order they first appear in.
_RANKS = {
    **{f"h{n}": n for n in range(7)},
    **{style: 10 + n for n, (style, _) in enumerate(_STYLES)},
}


@dataclass
class _Sections:
    """The heading path: entering a level closes every level at or below its rank."""

    stack: list[tuple[str, str]] = field(default_factory=list)  # (style, label)

    def leave(self, style: str) -> None:
        """Close `style` and everything below it (an item closes the sibling before it)."""
        rank = _RANKS[style]
        self.stack = [(s, label) for s, label in self.stack if _RANKS[s] < rank]

    def enter(self, style: str, label: str) -> None:
        self.leave(style)
        self.stack.append((style, label))

    def path(self) -> tuple[str, ...]:
        return tuple(label for _, label in self.stack)


class _Writer:
    """Accumulates the cleaned text and the blocks with offsets into it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.blocks: list[Block] = []

    def add(self, text: str, kind: str, section: tuple[str, ...], table: str = "", page: int = 0) -> int:
        if self.parts:
            self.parts.append("\n")
            self.size += 1
        start = self.size
        self.parts.append(text)
        self.size += len(text)
        self.blocks.append(Block(kind, text, start, self.size, section, table, page))
        return start

    def split_last(self, cuts: list[tuple[int, tuple[str, ...]]]) -> None:
        """Split the last block at relative offsets, each piece with its own section."""
        last = self.blocks.pop()
        bounds = [c for c, _ in cuts] + [len(last.text)]
        for (cut, section), end in zip(cuts, bounds[1:], strict=True):
            piece = last.text[cut:end]
            lead = len(piece) - len(piece.lstrip())
            piece = piece.strip()
            if piece:
                s = last.start + cut + lead
                self.blocks.append(Block(last.kind, piece, s, s + len(piece), section, last.table, last.page))


def _is_heading(text: str, style: str, following: Unit | None) -> bool:
    """A numbered line is a heading when it reads as a title and body follows it (not the next item of
    the same list: （一）文字作品 followed by （二）口述作品 is a list of items)."""
    if not reads_as_title(text):
        return False
    if style in _STRUCTURAL:
        return True
    if following is None:
        return False
    return following.kind != "line" or heading_style(following.text) != style


def _paragraph(writer: _Writer, sections: _Sections, unit: Unit, following: Unit | None) -> None:
    text, page = unit.text, unit.page
    style = heading_style(text)
    if style == "article":
        m = _STYLES[3][1].match(text)
        assert m is not None
        sections.enter(style, text[: m.end()])
    elif style and _is_heading(text, style, following):
        sections.enter(style, text)
        writer.add(text, "heading", sections.path(), page=page)
        return
    elif style:
        title = _run_in_title(text)
        if title is not None:
            sections.enter(style, title)
        else:
            sections.leave(style)  # an item is body text: it closes its sibling and names nothing
    writer.add(text, "paragraph", sections.path(), page=page)
    cuts: list[tuple[int, tuple[str, ...]]] = [(0, sections.path())]
    for s, e in split_sentences(text):
        sentence = text[s:e]
        if s > 0 and heading_style(sentence) == "ordinal":
            sections.enter("ordinal", _sentence_label(sentence))
            if s > cuts[-1][0]:
                cuts.append((s, sections.path()))
    writer.split_last(cuts)


def _header(rows: list[Unit]) -> tuple[int, list[str]]:
    """How many leading rows are the header, and each column's label. A header may span several rows
    (本年收入 over 项目 and 预算数): a merged cell, left empty by the extraction, takes the label on its left,
    and a column's label joins its cells top-down."""
    if len(rows) < 2 or any(c.isdigit() for c in rows[0].cells if c):
        return 0, []
    n = 1
    while n < min(3, len(rows) - 1) and not any(re.search(r"\d", c) for c in rows[n].cells):
        n += 1
    width = max(len(r.cells) for r in rows[:n])
    columns: list[list[str]] = [[] for _ in range(width)]
    for depth, row in enumerate(rows[:n]):
        last = ""
        for i in range(width):
            cell = row.cells[i] if i < len(row.cells) else ""
            if not cell and depth < n - 1:
                cell = last  # a merged cell over the columns to its right
            last = cell
            if cell and (not columns[i] or columns[i][-1] != cell):
                columns[i].append(cell)
    return n, [" ".join(c) for c in columns]


def _table(writer: _Writer, sections: _Sections, rows: list[Unit], title: str) -> None:
    depth, labels = _header(rows)
    for row in rows[:depth]:
        writer.add(row.text, "heading", sections.path())
    for row in rows[depth:]:
        labelled = []
        for i, cell in enumerate(row.cells):
            if not cell:
                continue
            label = labels[i] if i < len(labels) else ""
            labelled.append(f"{label} {cell}" if label else cell)
        shown = "｜".join([title, *labelled] if title else labelled)
        writer.add(row.text, "table_row", sections.path(), table=shown, page=row.page)


def _clean(units: list[Unit], layout: bool) -> tuple[list[Unit], list[tuple[str, str]]]:
    """The body units, and (rule, text) of every unit removed on purpose, in document order. Captions are
    guessed only in text extracted from a layout (pdf, plain text); markup says what a caption is."""
    _drop_repeated_title(units)
    _drop_repeats(units)
    _drop_contents(units)
    if layout:
        _captions(units)
    removed = [(u.rule or "removed", u.text) for u in units if u.kind == "removed" and u.text]
    return _rejoin([u for u in units if u.kind != "removed"]), removed


def _is_title(unit: Unit) -> bool:
    return unit.kind == "title" or (
        unit.kind in ("line", "heading") and len(unit.text) <= 60 and not _terminated(unit.text)
    )


def _drop_repeated_title(units: list[Unit]) -> None:
    """Mark copies of the title right after it removed (flattened notices often repeat it)."""
    body = [u for u in units if u.kind != "removed"]
    if not body or not _is_title(body[0]):
        return
    squashed = re.sub(r"\s+", "", body[0].text)
    for u in body[1:]:
        if u.kind not in ("line", "heading", "title") or re.sub(r"\s+", "", u.text) != squashed:
            break
        u.kind, u.rule = "removed", "repeated title"


def _title(units: list[Unit], fallback: str) -> str:
    """The document title: a title unit, else a short first line; a run of top headings makes one title
    (# 中华人民共和国民法典 / # 合同编)."""
    if not units or not _is_title(units[0]):
        return fallback
    first = units.pop(0)
    title = first.text
    while first.kind == "heading" and units and units[0].kind == "heading" and units[0].level == first.level:
        title = f"{title} {units.pop(0).text}"
    return title


def assemble(units: list[Unit], source: str, data: bytes, fallback_title: str, layout: bool = True) -> Document:
    """Cleaned text, blocks with offsets and section paths, from a loader's units."""
    units, removed = _clean(units, layout)
    title = _title(units, fallback_title)

    writer, sections = _Writer(), _Sections()
    i = 0
    while i < len(units):
        u = units[i]
        if u.kind == "row":
            j = i
            while j < len(units) and units[j].kind == "row":
                j += 1
            table_title = ""
            prev = writer.blocks[-1] if writer.blocks else None
            if prev is not None and prev.kind == "paragraph" and len(prev.text) <= 40 and not _terminated(prev.text):
                table_title = prev.text
                writer.blocks[-1] = Block("heading", prev.text, prev.start, prev.end, prev.section, "", prev.page)
            _table(writer, sections, units[i:j], table_title or (sections.path() or ("",))[-1])
            i = j
            continue
        if u.kind == "heading":
            sections.enter(f"h{u.level}", u.text)
            writer.add(u.text, "heading", sections.path(), page=u.page)
        elif u.kind in ("line", "title"):
            following = next((v for v in units[i + 1 :] if v.kind != "end"), None)
            _paragraph(writer, sections, u, following)
        i += 1

    text = "".join(writer.parts)
    return Document(
        doc_id=document_id(source),
        source=source,
        title=title,
        text=text,
        blocks=tuple(writer.blocks),
        sha256=hashlib.sha256(data).hexdigest(),
        removed=tuple(removed),
        size=len(data),
    )


def document_id(source: str) -> str:
    """The id of a document: stable for its path in the corpus, whatever its content."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def load(path: Path, root: Path) -> Document:
    """Read one file of the corpus into a Document; raises DocumentError naming the file."""
    source = path.relative_to(root).as_posix()
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DocumentError(f"{source}: unsupported file type {path.suffix or '(none)'}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{source}: cannot read ({exc.strerror})") from exc
    return parse(data, source, loader)


def parse(data: bytes, source: str, loader: Callable[[bytes, str], list[Unit]] | None = None) -> Document:
    loader = loader or LOADERS.get(Path(source).suffix.lower())
    if loader is None:
        raise DocumentError(f"{source}: unsupported file type")
    try:
        units = loader(data, source)
    except DocumentError:
        raise
    except Exception as exc:  # a parser library failing on a broken file
        raise DocumentError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from exc
    doc = assemble(units, source, data, Path(source).stem, layout=loader in (load_txt, load_pdf))
    if not doc.text.strip():
        raise DocumentError(f"{source}: no text found (empty, or an image-only scan)")
    return doc


def require_corpus(root: Path) -> None:
    """Raise CorpusError unless the corpus folder exists (a mistyped --corpus must not become a new corpus)."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist; create it or pass --corpus DIR")


def corpus_entries(root: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """(source, directory entry) of every supported file under the corpus folder, sorted as paths sort,
    skipping eval sets, hidden files and folders, and symlinked folders (as Path.rglob does). The service
    walks the corpus every few seconds: os.scandir reads a folder's names and kinds in one call, where rglob,
    is_file and stat made three calls a file (23,552 files: 0.45-0.48 s against 0.64-0.84 s)."""
    require_corpus(root)
    found: list[tuple[list[str], os.DirEntry[str]]] = []
    folders: list[tuple[str, list[str]]] = [(str(root), [])]
    while folders:
        folder, parts = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:  # gone or unreadable since it was listed
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    folders.append((entry.path, [*parts, entry.name]))
            elif entry.is_file() and supported(entry.name):
                found.append(([*parts, entry.name], entry))
    found.sort(key=lambda item: item[0])
    return [("/".join(parts), entry) for parts, entry in found]


def corpus_files(root: Path) -> Iterator[Path]:
    """Supported files under the corpus folder, in a stable order, skipping eval sets and hidden files."""
    for _, entry in corpus_entries(root):
        yield Path(entry.path)
