"""Format-level limits on untrusted files, checked before a parser inflates anything.

Each check reads only what a file declares or what streams out of it a piece at a time, so a bomb costs a
few megabytes to refuse: DOCX parts by their inflated size and paragraph count, PDF streams by their
inflated size and the document by its page count, HTML by its nesting depth and element count, a picture
by the size its header declares. The error
names the limit and the setting that raises it. Each format's entry in formats.py names its check.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from policyqa.errors import DocumentError

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What parsing one untrusted file may cost (POLICYQA_PARSE_* and POLICYQA_MAX_* settings)."""

    memory_bytes: int = 1024 * MIB  # address space the parser may add to its process
    seconds: float = 60.0  # wall-clock time (and CPU time) for one file
    inflated_bytes: int = 64 * MIB  # one DOCX part or PDF stream, decompressed
    pdf_pages: int = 2000
    html_depth: int = 256  # nested elements
    nodes: int = 200_000  # HTML elements, or DOCX paragraphs and table cells
    ocr_pages: int = 100  # pages (or pictures) of one file read by OCR
    # wall-clock (and CPU) time for one file read by OCR: a dense page costs about 25-30 s of one core
    ocr_seconds: float = 3600.0
    ocr_memory_bytes: int = 3072 * MIB  # address space while a file is read by OCR (models, ONNX Runtime)
    image_pixels: int = 50_000_000  # one picture, or one image inside a PDF page read by OCR
    file_bytes: int = 20 * MIB  # one file (POLICYQA_MAX_UPLOAD_BYTES: uploads and files of the corpus folder alike)


def _over(
    source: str, what: str, value: str, limit: str, setting: str, advice: str = "split the document"
) -> DocumentError:
    return DocumentError(f"{source}: {what} {value}, over the limit of {limit} ({setting}); {advice}")


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n} bytes"


_DOCX_NODE = re.compile(rb"<w:(?:p|tc)[\s>/]")


def check_docx(data: bytes, source: str, limits: Limits) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return  # the parser says it better
    with archive:
        infos = archive.infolist()
        for info in infos:  # zipfile never inflates past the declared size: a lie only truncates the part
            if info.file_size > limits.inflated_bytes:
                raise _over(
                    source,
                    f"part {info.filename} inflates to",
                    _mib(info.file_size),
                    _mib(limits.inflated_bytes),
                    "POLICYQA_MAX_INFLATED_BYTES",
                )
        total = sum(i.file_size for i in infos)
        if total > 4 * limits.inflated_bytes:
            cap = _mib(4 * limits.inflated_bytes)
            raise _over(source, "its parts inflate to", _mib(total), cap, "4 x POLICYQA_MAX_INFLATED_BYTES")
        if "word/document.xml" in archive.namelist():
            nodes = _count_streamed(archive.open("word/document.xml"), _DOCX_NODE)
            if nodes > limits.nodes:
                what = f"{nodes} paragraphs and table cells"
                raise _over(source, "has", what, str(limits.nodes), "POLICYQA_MAX_NODES")


def _count_streamed(fh: IO[bytes], pattern: re.Pattern[bytes]) -> int:
    count, tail = 0, b""
    with fh:
        while block := fh.read(MIB):
            window = tail + block
            count += len(pattern.findall(window)) - len(pattern.findall(tail))
            tail = window[-16:]
    return count


_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def _inflated(data: bytes, start: int, cap: int) -> int:
    """Bytes a zlib stream starting at `start` inflates to, counted a megabyte at a time up to `cap`."""
    inflater = zlib.decompressobj()
    total, at, pending = 0, start, b""
    while True:
        if not pending:
            if at >= len(data):
                return total
            pending, at = data[at : at + 65536], at + 65536
        try:
            total += len(inflater.decompress(pending, MIB))
        except zlib.error:
            return total  # not Flate, or its end: what came out so far is all it makes
        if total > cap or inflater.eof:
            return total
        pending = inflater.unconsumed_tail


def check_pdf(data: bytes, source: str, limits: Limits) -> None:
    for match in _STREAM.finditer(data):
        size = _inflated(data, match.end(), limits.inflated_bytes)
        if size > limits.inflated_bytes:
            raise _over(
                source,
                f"a stream at byte {match.end()} inflates to more than",
                _mib(limits.inflated_bytes),
                _mib(limits.inflated_bytes),
                "POLICYQA_MAX_INFLATED_BYTES",
            )
    pages = len(_PAGE.findall(data))
    if pages <= limits.pdf_pages:
        pages = max(pages, _declared_pages(data))
    if pages > limits.pdf_pages:
        raise _over(source, "has", f"{pages} pages", str(limits.pdf_pages), "POLICYQA_MAX_PDF_PAGES")


def _declared_pages(data: bytes) -> int:
    """/Count of the page tree, which may sit in a compressed object stream that the byte scan misses."""
    try:
        from pdfminer.pdfdocument import PDFDocument
        from pdfminer.pdfparser import PDFParser
        from pdfminer.pdftypes import resolve1

        catalog = PDFDocument(PDFParser(io.BytesIO(data))).catalog
        count = resolve1(resolve1(catalog.get("Pages")).get("Count"))
        return int(count) if isinstance(count, int) else 0
    except Exception:  # a broken file: the parser reports it
        return 0


_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
# Elements that never nest (void) or that the parser closes by itself (so they do not deepen the tree).
_FLAT = frozenset(
    b"area base br col embed hr img input link meta param source track wbr p li dt dd tr td th option".split()
)


def check_html(data: bytes, source: str, limits: Limits) -> None:
    depth = deepest = nodes = 0
    for match in _TAG.finditer(data):
        closing, name, empty = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            depth = max(0, depth - (name not in _FLAT))
            continue
        nodes += 1
        if name not in _FLAT and not empty:
            depth += 1
            deepest = max(deepest, depth)
    if deepest > limits.html_depth:
        raise _over(source, "nests HTML elements", f"{deepest} deep", str(limits.html_depth), "POLICYQA_MAX_HTML_DEPTH")
    if nodes > limits.nodes:
        raise _over(source, "has", f"{nodes} HTML elements", str(limits.nodes), "POLICYQA_MAX_NODES")


def check_image(data: bytes, source: str, limits: Limits) -> None:
    """A picture's declared size, read from its header before any pixel is decoded."""
    import PIL.Image

    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        width = height = 0
        if b"IHDR" in data[:64]:  # PIL refuses a PNG past its own bomb limit: its header still says how big
            at = data.index(b"IHDR") + 4
            width, height = int.from_bytes(data[at : at + 4], "big"), int.from_bytes(data[at + 4 : at + 8], "big")
    if width * height > limits.image_pixels:
        raise _over(
            source,
            "is",
            f"{width} x {height} pixels",
            f"{limits.image_pixels} pixels",
            "POLICYQA_MAX_IMAGE_PIXELS",
            "scan it at a lower resolution",
        )
