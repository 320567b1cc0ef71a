"""Plain dataclasses passed between modules: Unit (a loader's line), Document, Block, Chunk, Hit."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Unit:
    """One line-level piece as a loader sees it, before cleaning (mutable: cleaning joins and relabels)."""

    text: str
    kind: str = "line"  # "line" | "heading" | "title" | "row" | "end" | "removed"
    level: int = 0  # heading level from markup (markdown #, docx styles, html h1-h6)
    cells: list[str] = field(default_factory=list)
    gap: int = 1  # blank lines before it in the source
    page: int = 0
    width: float = 0.0  # pdf: the printed width of the line
    rule: str = ""  # for removed units: the named rule that removed it
    flattened: bool = False  # split out of a line whose paragraph breaks were flattened into spaces
    ocr: float = 0.0  # read by OCR: the engine's mean confidence (0: not read by OCR)


@dataclass(frozen=True)
class Block:
    """A structural piece of a cleaned document: a paragraph, a heading, a table's header row or a table row.

    `start`/`end` are character offsets into `Document.text`; `section` is the heading path above it.
    """

    kind: str  # "paragraph" | "heading" | "table_header" | "table_row"
    text: str
    start: int
    end: int
    section: tuple[str, ...] = ()
    table: str = ""  # for table rows: "title｜label value｜..." as shown to the user
    page: int = 0  # 1-based page of a PDF, 0 when the format has no pages


@dataclass(frozen=True)
class ScannedPage:
    """A page (1 for a picture) whose text was read by OCR: how many lines, and their mean confidence."""

    page: int
    lines: int
    confidence: float


@dataclass(frozen=True)
class Document:
    doc_id: str
    source: str  # path relative to the corpus folder, with forward slashes
    title: str
    text: str  # cleaned text; every offset in the index points into it
    blocks: tuple[Block, ...]
    sha256: str
    removed: tuple[tuple[str, str], ...] = ()  # (rule, text) of everything left out of the body on purpose
    size: int = 0  # bytes of the source file
    scanned: tuple[ScannedPage, ...] = ()  # the pages read by OCR

    @property
    def captions(self) -> tuple[str, ...]:
        """Caption and picture-credit lines removed from the body."""
        return tuple(text for rule, text in self.removed if rule == "caption")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str  # breadcrumb, e.g. "三、政策建议 › （四）培育领军企业"
    text: str  # the passage as shown to the user
    start: int
    end: int
    kind: str = "text"  # "text" | "table_row"
    page: int = 0

    @property
    def body_start(self) -> int:
        """Where the passage's own text starts: after the heading lines that open a section's first passage
        (shown to the reader, but indexed once, through the breadcrumb)."""
        labels = set(self.section.split(" › ")) if self.section else set()
        at = 0
        while (end := self.text.find("\n", at)) >= 0 and self.text[at:end].strip() in labels:
            at = end + 1
        return at

    @property
    def body(self) -> str:
        return self.text[self.body_start :]

    @property
    def context(self) -> str:
        """What is indexed for BM25: title and breadcrumb travel with every passage."""
        head = " › ".join(p for p in (self.title, self.section) if p)
        return f"{head}\n{self.body}" if head else self.body

    @property
    def embed_text(self) -> str:
        """What the dense leg embeds: the breadcrumb and the passage (the title alone would make every passage
        of a document look alike)."""
        return f"{self.section}\n{self.body}" if self.section else self.body


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int
    dense: float | None = None
    lexical: float | None = None
    matched_terms: tuple[str, ...] = ()
    answer_start: int = 0
    answer_end: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    matched_question: str | None = None  # the known question that brought the passage (search/known.py)
