"""Word (.docx) -> units: paragraphs with heading styles as headings, and tables as rows, in document order."""

from __future__ import annotations

import re

from policyqa.models import Unit


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
