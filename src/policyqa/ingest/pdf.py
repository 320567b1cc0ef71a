"""PDF -> units: text lines with page numbers, wrapped lines joined into paragraphs, tables as rows."""

from __future__ import annotations

import re

from policyqa.ingest.numbering import is_numbered
from policyqa.ingest.segment import join_pieces, terminated
from policyqa.models import Unit


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
            and not terminated(prev.text)
            and not is_numbered(u.text)
        ):
            prev.text = join_pieces(prev.text, u.text)
        else:
            out.append(Unit(u.text, u.kind, u.level, list(u.cells), u.gap, u.page))
        last_full = u.kind == "line" and u.width >= full
    return out
