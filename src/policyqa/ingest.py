"""Files -> Document: per-format loaders, repair of extraction artefacts, and policy structure."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyqa.errors import CorpusError, DocumentError
from policyqa.models import Block, Document
from policyqa.segment import TERMINAL, split_sentences

# Files under the corpus that are never documents (evaluation sets, notes for operators).
SKIP_DIRS = frozenset({"eval", ".git", "__pycache__"})


@dataclass
class Unit:
    """One line-level piece as a loader sees it, before cleaning."""

    text: str
    kind: str = "line"  # "line" | "heading" | "row"
    level: int = 0  # heading level from markup (markdown #, docx styles, html h1-h6)
    cells: list[str] = field(default_factory=list)
    gap: int = 1  # blank lines before it in the source
    page: int = 0
    width: float = 0.0  # pdf: the printed width of the line


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


def _lines_to_units(text: str) -> list[Unit]:
    units: list[Unit] = []
    gap = 0
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            gap += 1
            continue
        if "\t" in line.strip():
            units.append(Unit(line.rstrip(), "row", cells=[c.strip() for c in line.split("\t")], gap=gap))
        else:
            units.append(Unit(line.strip(), gap=gap))
        gap = 0
    return units


def load_txt(data: bytes, name: str) -> list[Unit]:
    return _lines_to_units(decode(data, name))


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def load_md(data: bytes, name: str) -> list[Unit]:
    units: list[Unit] = []
    for unit in _lines_to_units(decode(data, name)):
        m = _MD_HEADING.match(unit.text)
        if m:
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


_HTML_SKIP = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "svg",
        "canvas",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "button",
        "select",
    ]
)
_HTML_BLOCK = frozenset(
    ["p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "caption", "address", "h1", "h2", "h3", "h4", "h5", "h6"]
)
_NAV_HINT = re.compile(r"(^|[-_ ])(nav|menu|breadcrumb|footer|header|sidebar|share|toolbar)([-_ ]|$)", re.I)


def load_html(data: bytes, name: str) -> list[Unit]:
    """Main content of a page: <main>/<article> when present, else <body>; no scripts, styles or navigation."""
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    soup = BeautifulSoup(data, "html.parser")
    roots = soup.find_all(["main", "article"]) or [soup.body or soup]
    root = max(roots, key=lambda r: len(r.get_text(strip=True)))
    units: list[Unit] = []
    buffer: list[str] = []

    def flush() -> None:
        text = re.sub(r"\s+", " ", "".join(buffer)).strip()
        buffer.clear()
        if text:
            units.append(Unit(text))

    def skipped(tag: Tag) -> bool:
        classes: Any = tag.get("class") or []
        hints = " ".join(
            [
                *(classes if isinstance(classes, list) else [str(classes)]),
                str(tag.get("id", "")),
                str(tag.get("role", "")),
            ]
        )
        return tag.name in _HTML_SKIP or bool(_NAV_HINT.search(hints)) or tag.get("hidden") is not None

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, doctype or CDATA
                    buffer.append(str(child))
                continue
            if not isinstance(child, Tag) or skipped(child):
                continue
            if child.name == "table":
                flush()
                for tr in child.find_all("tr"):
                    cells = [re.sub(r"\s+", " ", c.get_text(" ", strip=True)) for c in tr.find_all(["th", "td"])]
                    if any(cells):
                        units.append(Unit("\t".join(cells), "row", cells=cells))
                units.append(Unit("", "end"))
            elif child.name in _HTML_BLOCK:
                flush()
                text = re.sub(r"\s+", " ", child.get_text(" ", strip=True))
                level = int(child.name[1]) if re.fullmatch(r"h[1-6]", child.name) else 0
                if text:
                    units.append(Unit(text, "heading" if level else "line", level=level))
            elif child.name == "br":
                flush()
            else:
                block = child.name in ("div", "section", "article", "main", "ul", "ol", "dl", "figure", "body")
                if block:
                    flush()
                walk(child)
                if block:
                    flush()

    walk(root)
    flush()
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
    ".html": load_html,
    ".htm": load_html,
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


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


# --- cleaning -------------------------------------------------------------------------------------

_CREDIT = re.compile(r"(图片来源|图片提供|图片由|供图|摄影|摄\s*$|图/|图：|图:|^图\s*\d|^图为|^（图|^\(图|^资料来源)")
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
    """Drop page numbers and running headers or footers (short lines that repeat on many pages)."""
    counts = Counter(u.text for u in units if u.kind == "line" and len(u.text) <= 40)
    pages = len({u.page for u in units})
    repeated = {t for t, n in counts.items() if n >= 3 and (pages >= 3 or n >= 4) and not _terminated(t)}
    kept = []
    for u in units:
        if u.kind == "line" and (_PAGE_NUMBER.match(u.text) or u.text in repeated):
            continue
        kept.append(u)
    return kept


def _is_numbered(text: str) -> bool:
    return heading_style(text) is not None


def _captions(units: list[Unit]) -> set[int]:
    """Indices of caption and picture-credit lines that interrupt the body text."""
    gaps = [u.gap for u in units[1:]]
    usual = statistics.median(gaps) if gaps else 1
    found: set[int] = set()
    for i, u in enumerate(units):
        if u.kind != "line" or i == 0 or len(u.text) > 50 or _is_numbered(u.text):
            continue
        if _CREDIT.search(u.text):
            found.add(i)
            continue
        if _terminated(u.text) or "。" in u.text:
            continue
        nxt = units[i + 1] if i + 1 < len(units) else None
        if nxt is not None and nxt.kind == "row":
            continue  # a table title
        wide_gap = u.gap > usual  # figures leave a wider gap than paragraphs do
        prev = next((units[j] for j in range(i - 1, -1, -1) if j not in found), None)
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
    return found


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
        out.append(Unit(u.text, u.kind, u.level, list(u.cells), u.gap, u.page))
    return out


# --- policy structure -----------------------------------------------------------------------------

_CN = "一二三四五六七八九十百零〇两"
_STYLES: list[tuple[str, re.Pattern[str]]] = [
    ("chapter", re.compile(rf"^第[{_CN}\d]+章")),
    ("part", re.compile(rf"^第[{_CN}\d]+节")),
    ("article", re.compile(rf"^第[{_CN}\d]+条")),
    ("cn", re.compile(rf"^[{_CN}]+[、．.](?!\d)")),
    ("cn_paren", re.compile(rf"^[（(][{_CN}]+[）)]")),
    ("num", re.compile(r"^\d{1,2}[.．、](?!\d)")),
    ("num_paren", re.compile(r"^[（(]\d{1,2}[）)]")),
    ("ordinal", re.compile(r"^(其[一二三四五六七八九十]|[一二三四五六七八九十]是)")),
]


def heading_style(text: str) -> str | None:
    for style, pattern in _STYLES:
        if pattern.match(text):
            return style
    return None


def _label(text: str, style: str) -> tuple[str, int]:
    """Breadcrumb label of a numbered paragraph and where its body starts (0: the whole line is a heading)."""
    if style in ("chapter", "part", "cn", "cn_paren") and len(text) <= 40 and not _terminated(text):
        return text, len(text)
    if style == "article":
        m = _STYLES[2][1].match(text)
        assert m is not None
        return text[: m.end()], 0
    first = split_sentences(text)[0]
    head = text[first[0] : first[1]].rstrip("。；;：: ")
    if len(head) > 60:
        head = re.split(r"[，,]", head)[0][:60]
    whole_line = first[1] >= len(text.rstrip())
    return head, len(text) if whole_line and not _terminated(text) else 0


@dataclass
class _Sections:
    stack: list[tuple[str, str]] = field(default_factory=list)  # (style, label)

    def enter(self, style: str, label: str) -> None:
        styles = [s for s, _ in self.stack]
        if style in styles:
            del self.stack[styles.index(style) :]
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
                # a piece that only repeats its own heading is a heading, not a passage
                kind = "heading" if section and piece.rstrip(TERMINAL) == section[-1] else last.kind
                self.blocks.append(Block(kind, piece, s, s + len(piece), section, last.table, last.page))


def _paragraph(writer: _Writer, sections: _Sections, text: str, page: int = 0) -> None:
    style = heading_style(text)
    body_from = 0
    if style:
        label, body_from = _label(text, style)
        sections.enter(style, label)
        if body_from >= len(text):
            writer.add(text, "heading", sections.path(), page=page)
            return
    writer.add(text, "paragraph", sections.path(), page=page)
    cuts: list[tuple[int, tuple[str, ...]]] = [(body_from, sections.path())]
    for s, e in split_sentences(text):
        if s < body_from:
            continue
        sentence = text[s:e]
        if s > 0 and heading_style(sentence) == "ordinal":
            label, _ = _label(sentence, "ordinal")
            sections.enter("ordinal", label)
            if s > cuts[-1][0]:
                cuts.append((s, sections.path()))
    writer.split_last(cuts)


def _table(writer: _Writer, sections: _Sections, rows: list[Unit], title: str) -> None:
    header = rows[0].cells
    has_header = len(rows) > 1 and not any(c.isdigit() for c in header if c)
    body = rows[1:] if has_header else rows
    if has_header:
        writer.add(rows[0].text, "heading", sections.path())
    for row in body:
        labelled = []
        for i, cell in enumerate(row.cells):
            if not cell:
                continue
            label = header[i] if has_header and i < len(header) and header[i] else ""
            labelled.append(f"{label} {cell}" if label else cell)
        shown = "｜".join([title, *labelled] if title else labelled)
        writer.add(row.text, "table_row", sections.path(), table=shown, page=row.page)


def assemble(units: list[Unit], source: str, data: bytes, fallback_title: str) -> Document:
    """Cleaned text, blocks with offsets and section paths, from a loader's units."""
    units = _drop_repeats(units)
    caption_idx = _captions(units)
    captions = tuple(units[i].text for i in sorted(caption_idx))
    units = _rejoin([u for i, u in enumerate(units) if i not in caption_idx])

    title = fallback_title
    if units and units[0].kind in ("line", "heading") and len(units[0].text) <= 60 and not _terminated(units[0].text):
        title = units.pop(0).text

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
                table_title = writer.blocks.pop().text
                writer.add(table_title, "heading", sections.path())
            _table(writer, sections, units[i:j], table_title or (sections.path() or ("",))[-1])
            i = j
            continue
        if u.kind == "heading":
            sections.enter(f"h{u.level}", u.text)
            writer.add(u.text, "heading", sections.path(), page=u.page)
        elif u.kind == "line":
            _paragraph(writer, sections, u.text, u.page)
        i += 1

    text = "".join(writer.parts)
    return Document(
        doc_id=document_id(source),
        source=source,
        title=title,
        text=text,
        blocks=tuple(writer.blocks),
        sha256=hashlib.sha256(data).hexdigest(),
        captions=captions,
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
    doc = assemble(units, source, data, Path(source).stem)
    if not doc.text.strip():
        raise DocumentError(f"{source}: no text found (empty, or an image-only scan)")
    return doc


def corpus_files(root: Path) -> Iterator[Path]:
    """Supported files under the corpus folder, in a stable order, skipping eval sets and hidden files."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist; create it or pass --corpus DIR")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") for p in rel) or any(p in SKIP_DIRS for p in rel[:-1]):
            continue
        if path.is_file() and supported(path):
            yield path
