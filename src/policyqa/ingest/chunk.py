"""Document -> Chunks: sentence-packed passages within one section, table rows as their own passages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from policyqa.ingest.segment import NUMERALS, split_sentences
from policyqa.models import Block, Chunk, Document

SEPARATOR = " › "


@dataclass(frozen=True)
class ChunkSettings:
    target: int = 300  # stop adding sentences past this many characters
    minimum: int = 150  # below this, keep adding up to `maximum`
    maximum: int = 400  # hard limit; only a single longer sentence is ever cut
    overlap: int = 1  # sentences repeated when a paragraph continues into the next chunk
    recipe: int = 2  # what is embedded of a passage (2: its body without the heading lines that open it)

    def as_dict(self) -> dict[str, int]:
        return {
            "target": self.target,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "overlap": self.overlap,
            "recipe": self.recipe,
        }


def chunk_id(doc_id: str, section: str, text: str) -> str:
    return hashlib.sha1(f"{doc_id}\x1f{section}\x1f{text}".encode()).hexdigest()[:16]


def _pieces(start: int, end: int, text: str, limit: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence at clause punctuation, or hard at `limit` when it has none."""
    out: list[tuple[int, int]] = []
    while end - start > limit:
        window = text[start : start + limit]
        cut = max(window.rfind(p) for p in "，,、：:）)")
        cut = start + cut + 1 if cut > limit // 3 else start + limit
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def _sentences(doc: Document, blocks: list[Block], limit: int) -> list[tuple[int, int, int]]:
    """(start, end, block number) of every sentence of the blocks, in document offsets."""
    out: list[tuple[int, int, int]] = []
    for n, block in enumerate(blocks):
        for s, e in split_sentences(block.text):
            for ps, pe in _pieces(block.start + s, block.start + e, doc.text, limit):
                out.append((ps, pe, n))
    return out


_ARTICLE = re.compile(rf"^第[{NUMERALS}\d]+条")


def _pack(
    doc: Document, blocks: list[Block], settings: ChunkSettings, whole_blocks: bool = False
) -> list[tuple[int, int, int]]:
    """(start, end, page) of the passages packed from the sentences of consecutive blocks.

    With `whole_blocks` (a law's article: its paragraphs and items) a passage holds as many whole blocks
    as fit in `maximum` and is cut only between blocks, unless one block alone is longer.
    """
    sentences = _sentences(doc, blocks, settings.maximum)
    spans: list[tuple[int, int, int]] = []
    i = 0
    while i < len(sentences):
        start, end, _ = sentences[i]
        j = i + 1
        while j < len(sentences):
            size = sentences[j][1] - start
            if size > settings.maximum or (
                not whole_blocks and end - start >= settings.minimum and size > settings.target
            ):
                break
            end = sentences[j][1]
            j += 1
        if whole_blocks and j < len(sentences) and sentences[j][2] == sentences[j - 1][2]:
            first = next(n for n in range(i, j) if sentences[n][2] == sentences[j][2])
            if first > i:  # the last block does not fit whole: it starts the next passage
                j, end = first, sentences[first - 1][1]
        spans.append((start, end, blocks[sentences[i][2]].page))
        if j >= len(sentences):
            break
        # Overlap by one sentence where the paragraph goes on, if it leaves room to move forward.
        back = j - settings.overlap
        continues = sentences[j][2] == sentences[j - 1][2]
        i = back if continues and back > i and sentences[j][1] - sentences[back][0] <= settings.maximum else j
    return spans


def _article_label(first: str, last: str) -> str:
    return first if first == last else f"{first}至{last}"


def chunk_document(doc: Document, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Passages of one document. The headings above a section travel in its first passage's text (and in
    every passage's breadcrumb). A law's articles are never cut between passages unless one alone is too
    long: consecutive short articles of one chapter share a passage, named by their range (第十条至第十二条)."""
    chunker = _Chunker(doc, settings or ChunkSettings())
    for block in doc.blocks:
        chunker.add(block)
    chunker.close()
    return chunker.chunks


# A whole article waiting to share a passage: (section, start, end, page).
_Article = tuple[tuple[str, ...], int, int, int]


class _Chunker:
    """Chunking one document, block by block: the paragraphs of the open section, the headings met since the
    last paragraph, and the whole short articles (consecutive, under one parent) waiting to be packed."""

    def __init__(self, doc: Document, settings: ChunkSettings) -> None:
        self.doc, self.settings = doc, settings
        self.chunks: list[Chunk] = []
        self.group: list[Block] = []  # the paragraphs of one section
        self.headings: list[Block] = []  # the headings met since the last paragraph
        self.opening: int | None = None  # where the headings that open the group's first passage start
        self.articles: list[_Article] = []

    def add(self, block: Block) -> None:
        if block.kind == "paragraph":
            self.paragraph(block)
        elif block.kind in ("heading", "table_header"):
            self.close()
            self.headings.append(block)
        else:
            self.close()
            self.headings.clear()
            if block.kind == "table_row":
                self.emit(block.section, block.table or block.text, block.start, block.end, "table_row", block.page)

    def paragraph(self, block: Block) -> None:
        if self.group and self.group[-1].section != block.section:
            self.flush()
        on_path = [h for h in self.headings if block.section[: len(h.section)] == h.section]
        if on_path and not self.group:
            self.opening = on_path[0].start
        self.headings.clear()
        self.group.append(block)

    def close(self) -> None:
        """End the open section and the run of articles (at a heading, a table, the document's end)."""
        self.flush()
        self.pack_articles()

    def emit(self, section: tuple[str, ...], text: str, start: int, end: int, kind: str, page: int) -> None:
        doc, crumb = self.doc, SEPARATOR.join(section)
        cid = chunk_id(doc.doc_id, crumb, text)
        self.chunks.append(Chunk(cid, doc.doc_id, doc.source, doc.title, crumb, text, start, end, kind, page))

    def flush(self) -> None:
        """The open section's paragraphs as passages; a whole short article waits to share one."""
        if self.group:
            section = self.group[0].section
            article = bool(section) and bool(_ARTICLE.match(section[-1]))
            spans = _pack(self.doc, self.group, self.settings, whole_blocks=article)
            if self.opening is not None:  # the headings open the first passage, outside its size
                spans[0] = (self.opening, *spans[0][1:])
            if article and len(spans) == 1:
                self.queue_article((section, *spans[0]))
            else:
                self.pack_articles()
                for start, end, page in spans:
                    self.emit(section, self.doc.text[start:end], start, end, "text", page)
        self.group.clear()
        self.opening = None

    def queue_article(self, article: _Article) -> None:
        """Queue a whole article; the queue is packed first when the article would not fit beside it (another
        chapter, past the maximum, or past the target once the queue holds the minimum)."""
        section, _, end, _ = article
        queued, limits = self.articles, self.settings
        if queued and (
            queued[-1][0][:-1] != section[:-1]
            or end - queued[0][1] > limits.maximum
            or (queued[-1][2] - queued[0][1] >= limits.minimum and end - queued[0][1] > limits.target)
        ):
            self.pack_articles()
        self.articles.append(article)

    def pack_articles(self) -> None:
        if self.articles:
            first, last = self.articles[0], self.articles[-1]
            section = (*first[0][:-1], _article_label(first[0][-1], last[0][-1]))
            self.emit(section, self.doc.text[first[1] : last[2]], first[1], last[2], "text", first[3])
            self.articles.clear()


MIN_SENTENCE = 8


def sentence_spans(chunk: Chunk) -> list[tuple[int, int]]:
    """Spans (in `chunk.text`) of the sentences that get their own vector: those of its body (not the
    heading lines that open it) of at least MIN_SENTENCE characters, when there are two or more; none for
    table rows, whose passage vector already is the sentence's."""
    if chunk.kind != "text":
        return []
    skip = chunk.body_start
    spans = [(s, e) for s, e in split_sentences(chunk.text) if s >= skip and e - s >= MIN_SENTENCE]
    return spans if len(spans) >= 2 else []


def sentence_texts(chunk: Chunk) -> list[str]:
    """The sentences of a passage as the dense leg embeds them one by one (with the breadcrumb), so that a
    question matching one sentence of a longer passage is not diluted by the rest."""
    head = f"{chunk.section}\n" if chunk.section else ""
    return [head + chunk.text[s:e] for s, e in sentence_spans(chunk)]


def sentence_ranges(chunk: Chunk) -> list[tuple[tuple[int, int], ...]]:
    """The same sentences as character ranges of `chunk.embed_text` (the breadcrumb's and the sentence's), for
    pooling each from the passage's own forward pass instead of encoding it again."""
    head = len(chunk.section) + 1 if chunk.section else 0
    lead = ((0, head),) if head else ()
    shift = head - chunk.body_start
    return [(*lead, (shift + s, shift + e)) for s, e in sentence_spans(chunk)]
