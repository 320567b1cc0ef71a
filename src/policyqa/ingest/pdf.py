"""PDF -> units: text lines with page numbers, wrapped lines joined into paragraphs, tables as rows."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from policyqa.ingest import ocr
from policyqa.ingest.numbering import is_numbered
from policyqa.ingest.segment import join_pieces, terminated
from policyqa.models import Unit


def load_pdf(data: bytes, name: str, budget: ocr.Budget) -> list[Unit]:
    """Text lines with page numbers, wrapped lines joined into paragraphs, tables as rows; pages without
    a text layer (a scan) read by OCR."""
    import io

    import pdfplumber

    units: list[Unit] = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        scans = [n for n, page in enumerate(pdf.pages, 1) if scanned(page)]
        if scans:
            budget.start(len(scans), name)
        for number, page in enumerate(pdf.pages, 1):
            if number in scans:
                units.extend(_read_scan(data, page, number, name, budget))
                budget.tell(scans.index(number) + 1, len(scans))
                continue
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


def scanned(page: Any) -> bool:
    """Whether a page is a scan: no text, or a few characters (a stamp, a page number, a text layer added to
    part of it) on a page that an image covers mostly."""
    area = float(page.width * page.height) or 1.0
    pictured = sum(_visible(page, im) for im in page.images) / area
    if not page.chars:
        return pictured > 0.0
    printed = sum((c["x1"] - c["x0"]) * (c["bottom"] - c["top"]) for c in page.chars) / area
    return pictured >= 0.5 and printed < 0.02


def _visible(page: Any, image: dict[str, Any]) -> float:
    width = min(image["x1"], page.width) - max(image["x0"], 0)
    height = min(image["bottom"], page.height) - max(image["top"], 0)
    return float(max(width, 0.0) * max(height, 0.0))


def _read_scan(data: bytes, page: Any, number: int, name: str, budget: ocr.Budget) -> list[Unit]:
    """A scanned page drawn to pixels and read by OCR. Each image on it is checked first: decoding an image
    bigger than the pixel limit would cost the memory the limit guards."""
    for image in page.images:
        width, height = image.get("srcsize") or (0, 0)
        budget.check_pixels(int(width), int(height), name, f"an image on page {number}")
    scale = draw_scale(float(page.width), float(page.height))
    budget.check_pixels(int(page.width * scale), int(page.height * scale), name, f"page {number}")
    return ocr.read_page(draw_page(data, number, scale), number)


def draw_scale(width: float, height: float) -> float:
    """Pixels per point to draw a page at: its longer side about ocr.LONG_SIDE, at most ocr.MAX_DPI."""
    return min(ocr.MAX_DPI / 72, ocr.LONG_SIDE / max(width, height, 1.0))


def draw_page(data: bytes, number: int, scale: float | None = None) -> Any:
    """Page `number` (1-based) of a PDF as a greyscale PIL image, at `scale` pixels per point (default:
    draw_scale)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        page = document[number - 1]
        scale = scale or draw_scale(*page.get_size())
        return page.render(scale=scale, grayscale=True).to_pil()
    finally:
        document.close()


def _join_pdf_lines(units: list[Unit]) -> list[Unit]:
    """A PDF line that fills the line width and does not end a sentence continues in the next line. Lines
    read by OCR are measured in pixels, against each other only."""
    full = {}
    for read in (False, True):
        widths = [u.width for u in units if u.kind == "line" and (u.ocr > 0) == read]
        full[read] = max(widths) * 0.85 if widths else 0.0
    out: list[Unit] = []
    last_full = False  # the last line appended or joined filled the width
    for u in units:
        prev = out[-1] if out else None
        if (
            prev is not None
            and u.kind == "line"
            and prev.kind == "line"
            and last_full
            and not terminated(prev.text)
            and not is_numbered(u.text)
        ):
            prev.text = join_pieces(prev.text, u.text)
        else:
            out.append(replace(u, cells=list(u.cells)))
        last_full = u.kind == "line" and u.width >= full[u.ocr > 0]
    return out
