"""The formats policyqa reads, one entry each: extensions, how a content is recognised, the loader, the
format-level limits and the name people see. Every check and every message that lists formats reads this
table, so adding a format is adding an entry."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policyqa.ingest import image, pdf, plaintext, webpage, word
from policyqa.ingest.limits import Limits, check_docx, check_html, check_image, check_pdf
from policyqa.ingest.ocr import Budget
from policyqa.models import Unit

Loader = Callable[[bytes, str, Budget], list[Unit]]  # (content, file name, what OCR may cost) -> units
LimitsCheck = Callable[[bytes, str, Limits], None]


@dataclass(frozen=True)
class Format:
    """One format: the name people see (in English, as errors and help write it), its extensions (lower case,
    the usual one first: lists show it and an upload recognised as this format gets it), and how it is read."""

    name: str
    extensions: tuple[str, ...]
    load: Loader
    # Formats of one family hold the same kind of content and are told apart by the file name only.
    family: str
    # Leading bytes: a content that starts with them is of a format with this signature, or of none at all.
    signature: bytes = b""
    # A look at the content beyond the signature. A format with neither is never recognised by its content,
    # only by its name (Markdown reads as plain text).
    looks: Callable[[bytes], bool] | None = None
    # Content that no other format recognises is this one, if it looks like it (plain text: anything not binary).
    fallback: bool = False
    check: LimitsCheck | None = None  # format-level limits, checked before the loader inflates anything
    layout: bool = False  # the text comes from a page layout: captions are guessed (markup names its own)


def _text(load: Callable[[bytes, str], list[Unit]]) -> Loader:
    """A loader of a format whose text is never a picture: it has no use for the OCR budget."""
    return lambda data, name, budget: load(data, name)


def _word(data: bytes) -> bool:
    return b"word/" in data[:65536]


def _html(data: bytes) -> bool:
    head = data[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head or b"<head" in head


def _not_binary(data: bytes) -> bool:
    return b"\x00" not in data[:4096] or data.startswith((b"\xff\xfe", b"\xfe\xff"))


FORMATS: tuple[Format, ...] = (
    Format("text", (".txt",), _text(plaintext.load_txt), "text", looks=_not_binary, fallback=True, layout=True),
    Format("Markdown", (".md", ".markdown"), _text(plaintext.load_md), "text"),
    Format("HTML", (".html", ".htm"), _text(webpage.load_html), "html", looks=_html, check=check_html),
    Format("Word (.docx)", (".docx",), _text(word.load_docx), "docx", b"PK\x03\x04", _word, check=check_docx),
    Format("PDF", (".pdf",), pdf.load_pdf, "pdf", b"%PDF", check=check_pdf, layout=True),
    # pictures are read by OCR (ocr.py); their text has a layout, as a PDF's does
    Format("PNG image", (".png",), image.load_image, "png", b"\x89PNG\r\n\x1a\n", check=check_image, layout=True),
    Format("JPEG image", (".jpg", ".jpeg"), image.load_image, "jpeg", b"\xff\xd8\xff", check=check_image, layout=True),
)


def by_name(name: str) -> Format | None:
    """The format a file of this name is, by its extension; None for a file policyqa does not read."""
    suffix = os.path.splitext(name)[1].lower()
    return next((f for f in FORMATS if suffix in f.extensions), None)


def supported(name: str) -> bool:
    """Whether a file of this name is a document policyqa reads (by its extension)."""
    return by_name(name) is not None


def recognise(data: bytes) -> Format | None:
    """The format a content says it is: by its leading bytes, else by a look at it, plain text last; None for
    content no format reads (binary, or a zip archive that is not a Word document)."""
    signed = [f for f in FORMATS if f.signature and data.startswith(f.signature)]
    if signed:  # a PDF or an archive is never read as text, whatever else it holds
        return next((f for f in signed if f.looks is None or f.looks(data)), None)
    unsigned = sorted((f for f in FORMATS if not f.signature), key=lambda f: f.fallback)
    return next((f for f in unsigned if f.looks is not None and f.looks(data)), None)


def sniff(data: bytes) -> str | None:
    """The usual extension of the format a content says it is (.pdf .docx .html .txt .png .jpg), or None."""
    found = recognise(data)
    return found.extensions[0] if found else None


def check(data: bytes, source: str, limits: Limits) -> None:
    """Raise DocumentError naming the limit when the file would cost more than `limits` to parse."""
    found = by_name(source)
    if found is not None and found.check is not None:
        found.check(data, source, limits)


def _listed(items: Sequence[str], sep: str, last: str) -> str:
    return sep.join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)


def extensions(sep: str = " ", last: str = " or ") -> str:
    """The usual extension of every format, as people read a list: `.txt .md .html .docx or .pdf`."""
    return _listed([f.extensions[0] for f in FORMATS], sep, last)


def kinds(sep: str = ", ", last: str = " nor ") -> str:
    """The names of the formats a content can be recognised as: `text, HTML, Word (.docx) nor PDF`."""
    return _listed([f.name for f in FORMATS if f.signature or f.looks is not None], sep, last)
