"""Files -> Document: a format's units (formats.py) cleaned of extraction artefacts and given their policy
structure (sections, tables), and the corpus folder's documents."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from policyqa.errors import CorpusError, DocumentError
from policyqa.ingest import formats
from policyqa.ingest.numbering import STYLES, heading_style, is_numbered
from policyqa.ingest.ocr import Budget
from policyqa.ingest.segment import join_pieces, split_sentences, terminated
from policyqa.models import Block, Document, ScannedPage, Unit

# Files under the corpus that are never documents (evaluation sets, notes for operators).
SKIP_DIRS = frozenset({"eval", ".git", "__pycache__"})


# --- cleaning -------------------------------------------------------------------------------------

_CREDIT = re.compile(
    r"(图片来源|图片提供|图片由|供图|摄影[:：/]|[\s/]摄影$|摄\s*$|图/|图：|图:|^图\s*\d|^图为|^（图|^\(图|^资料来源)"
)
_PAGE_NUMBER = re.compile(
    r"^(第\s*\d+\s*页(\s*共\s*\d+\s*页)?|[-—–]?\s*\d{1,4}\s*[-—–]?|\d+\s*/\s*\d+|page\s*\d+)$", re.I
)


def _drop_repeats(units: list[Unit]) -> list[Unit]:
    """Mark page numbers and running headers or footers (short lines that repeat on many pages) removed."""
    counts = Counter(u.text for u in units if u.kind == "line" and len(u.text) <= 40 and not u.flattened)
    pages = len({u.page for u in units})
    repeated = {t for t, n in counts.items() if n >= 3 and (pages >= 3 or n >= 4) and not terminated(t)}
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
            short = v.kind in ("line", "heading") and len(v.text) <= 40 and not terminated(v.text)
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
        if u.kind != "line" or i == 0 or len(u.text) > 50 or is_numbered(u.text) or _DOC_NUMBER.search(u.text):
            continue
        if u.flattened:
            continue  # captions are a layout artefact: a flattened text has no layout left
        if terminated(u.text) and not u.text.startswith("图"):
            continue  # a whole sentence is body text, whatever words it holds
        if _CREDIT.search(u.text):
            found.add(i)
            continue
        if terminated(u.text) or "。" in u.text:
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
            and not terminated(prev.text)
            and nxt is not None
            and nxt.kind == "line"
            and not is_numbered(nxt.text)
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
            and not terminated(prev.text)
            and not is_numbered(u.text)
            and re.search(r"[。；;，,]", prev.text)
        ):
            prev.text = join_pieces(prev.text, u.text)
            continue
        out.append(Unit(u.text, u.kind, u.level, list(u.cells), u.gap, u.page, flattened=u.flattened))
    return out


# --- policy structure -----------------------------------------------------------------------------

_STRUCTURAL = frozenset({"volume", "chapter", "part"})
# Punctuation that a title does not hold: a numbered line with any of it is a sentence, not a heading
# (a comma it may hold: （一）优化协同创新机制，营造良好发展生态).
_SENTENCE_PUNCT = re.compile(r"[。；;！？!?：:]")
_FIRST_SENTENCE = re.compile(r"^[^。！？!?]*[。！？!?]")
TITLE_MAX = 40


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
    **{style: 10 + n for n, (style, _) in enumerate(STYLES)},
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
        m = STYLES[3][1].match(text)
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
    for row in rows[:depth]:  # column labels: they open no section and are no entry of the outline
        writer.add(row.text, "table_header", sections.path(), page=row.page)
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
        unit.kind in ("line", "heading") and len(unit.text) <= 60 and not terminated(unit.text)
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
    scanned = _scanned(units)
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
            if prev is not None and prev.kind == "paragraph" and len(prev.text) <= 40 and not terminated(prev.text):
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
        scanned=scanned,
    )


def _scanned(units: list[Unit]) -> tuple[ScannedPage, ...]:
    """The pages read by OCR, each with its lines and their mean confidence."""
    by_page: dict[int, list[float]] = {}
    for u in units:
        if u.ocr > 0:
            by_page.setdefault(u.page, []).append(u.ocr)
    return tuple(ScannedPage(p, len(c), round(statistics.fmean(c), 4)) for p, c in sorted(by_page.items()))


def document_id(source: str) -> str:
    """The id of a document: stable for its path in the corpus, whatever its content."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def load(path: Path, root: Path) -> Document:
    """Read one file of the corpus into a Document; raises DocumentError naming the file."""
    source = path.relative_to(root).as_posix()
    found = formats.by_name(path.name)
    if found is None:
        raise DocumentError(f"{source}: unsupported file type {path.suffix or '(none)'}")
    return parse(read_file(root, source), source, found)


def read_file(root: Path, source: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the corpus file `source`, never those of a file outside the corpus folder: a symbolic
    link (at the file, or at a folder on its way) is refused, as is a file over `max_bytes` (before it is
    read: a file dropped into the folder gets the limit an upload gets). Raises DocumentError naming it."""
    path = root / source
    try:
        if os.path.realpath(path.parent) != os.path.join(os.path.realpath(root), *Path(source).parent.parts):
            raise DocumentError(f"{source}: a folder on its path is a symbolic link; links are not followed")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DocumentError(f"{source}: the file is a symbolic link; links are not followed") from exc
        if exc.errno == errno.ENOENT and _MISNAMED.search(source):
            raise DocumentError(f"{source}: the file name is not UTF-8 (another encoding); rename the file") from exc
        raise DocumentError(f"{source}: cannot read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(f"{source}: not a regular file")
        size = st.st_size
        data = fh.read() if max_bytes is None or size > max_bytes else fh.read(max_bytes + 1)
    if max_bytes is not None and max(size, len(data)) > max_bytes:  # (or grown since it was measured)
        raise DocumentError(f"{source}: the file is {max(size, len(data))} bytes; the limit is {max_bytes} bytes")
    return data


# A byte of a file name that is not UTF-8, as shown_name shows it
_MISNAMED = re.compile(r"\\x[89a-f][0-9a-f]")


def shown_name(name: str) -> str:
    """A name read from the file system, as text that can be written anywhere: the bytes of a name that is not
    UTF-8 (通知.txt saved in GBK) shown as \\xcd\\xa8... (as `ls -b` shows them), a valid name as it is."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def parse(data: bytes, source: str, found: formats.Format | None = None, budget: Budget | None = None) -> Document:
    """A file's bytes as a Document, read as the format its name (or `found`) says, pictures by OCR within
    `budget`; raises DocumentError."""
    found = found or formats.by_name(source)
    if found is None:
        raise DocumentError(f"{source}: unsupported file type")
    try:
        units = found.load(data, source, budget or Budget())
    except DocumentError:
        raise
    except Exception as exc:  # a parser library failing on a broken file
        raise DocumentError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from exc
    doc = assemble(units, source, data, Path(source).stem, layout=found.layout)
    if not doc.text.strip():
        raise DocumentError(f"{source}: no text found (empty, or a picture without legible text)")
    return doc


def require_corpus(root: Path) -> None:
    """Raise CorpusError unless the corpus folder exists (a mistyped --corpus must not become a new corpus)."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist; create it or pass --corpus DIR")


def no_documents(corpus: Path, detail: str = "") -> str:
    """What to say of a corpus folder that holds no document to index: the formats it may hold."""
    return f"no documents found in {corpus}{detail}; add {formats.extensions(', ', ' or ')} files"


def corpus_entries(root: Path) -> list[tuple[str, os.DirEntry[str]]]:
    """(source, directory entry) of every supported file under the corpus folder, sorted as paths sort,
    skipping eval sets, hidden files and folders, and symbolic links (files outside the folder are never
    read, whatever a link in it points at); a name that is not UTF-8 is listed as shown_name shows it, so that
    reading it fails with a reason that names it (read_file) and the other files are indexed. The service
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
            elif entry.is_file(follow_symlinks=False) and formats.supported(entry.name):
                found.append(([*parts, entry.name], entry))
    found.sort(key=lambda item: item[0])
    return [(shown_name("/".join(parts)), entry) for parts, entry in found]


def corpus_files(root: Path) -> Iterator[Path]:
    """Supported files under the corpus folder, in a stable order, skipping eval sets and hidden files."""
    for _, entry in corpus_entries(root):
        yield Path(entry.path)
