"""Reading text from pictures: page images -> lines in reading order -> units a loader returns.

The engine is RapidOCR (PP-OCRv4 Chinese detection and recognition, ONNX models inside the
rapidocr-onnxruntime wheel), loaded once per parser process. Lines come back as boxes; they are put in
reading order here: rows top to bottom, two columns read one after the other, cells of a table row kept
apart as cells. Budget says what one file may cost in pages and pixels, and whom to tell of each page.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policyqa.errors import DocumentError
from policyqa.models import Unit

# Pages are drawn so that their longer side is about what the detector works at (it shrinks larger images
# to 2000 pixels): drawing more costs time and gains nothing.
LONG_SIDE = 2000
MAX_DPI = 300


@dataclass(frozen=True)
class Budget:
    """What reading one file by OCR may cost (POLICYQA_MAX_OCR_PAGES, POLICYQA_MAX_IMAGE_PIXELS), and
    `on_page(done, total)` told before the first page and after each page read."""

    pages: int = 100
    pixels: int = 50_000_000
    on_page: Callable[[int, int], None] | None = None

    def start(self, total: int, source: str) -> None:
        if total > self.pages:
            raise DocumentError(
                f"{source}: {total} pages to read by OCR, over the limit of {self.pages} "
                "(POLICYQA_MAX_OCR_PAGES); split the document"
            )
        self.tell(0, total)

    def tell(self, done: int, total: int) -> None:
        if self.on_page is not None:
            self.on_page(done, total)

    def check_pixels(self, width: int, height: int, source: str, what: str = "the image") -> None:
        if width * height > self.pixels:
            raise DocumentError(
                f"{source}: {what} is {width} x {height} pixels, over the limit of {self.pixels} pixels "
                "(POLICYQA_MAX_IMAGE_PIXELS); scan it at a lower resolution"
            )


@dataclass(frozen=True)
class Line:
    """One line the engine read: its text, its box (left, top, right, bottom, in pixels) and confidence."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    confidence: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # pragma: no cover - a broken install
        raise DocumentError(f"the OCR engine is not installed ({exc}); install policyqa again (`make run`)") from exc
    # One thread: a dense page cost 25-28 s of CPU on one thread against 40 s on two (ONNX Runtime's threads
    # spin while they wait), and a core stays free for searches while a scan is indexed.
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


def read(image: Any) -> list[Line]:
    """The lines of a PIL image, in the engine's order. Pages are assumed upright: the engine's 180-degree
    classifier misreads some full-width lines of a printed page as upside down and drops them."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # the engine takes OpenCV's BGR
    found, _ = _engine()(pixels, use_cls=False)
    lines = []
    for box, text, score in found or []:
        xs, ys = [p[0] for p in box], [p[1] for p in box]
        if text.strip():
            lines.append(Line(text.strip(), min(xs), min(ys), max(xs), max(ys), float(score)))
    return lines


def _rows(lines: list[Line]) -> list[list[Line]]:
    """Lines grouped into rows: a line whose vertical middle falls inside the row's span joins it."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda v: (v.y0 + v.y1) / 2):
        middle = (line.y0 + line.y1) / 2
        row = rows[-1] if rows else None
        if row is not None and min(v.y0 for v in row) <= middle <= max(v.y1 for v in row):
            row.append(line)
        else:
            rows.append([line])
    return [sorted(r, key=lambda v: v.x0) for r in rows]


def _gutter(rows: list[list[Line]], width: float) -> float | None:
    """The x of a gutter between two columns of text: most rows are two long lines, one on either side of
    the same gap; None when the page is not set in two columns."""
    pairs = [r for r in rows if len(r) == 2 and all(len(v.text) >= 8 for v in r)]
    if len(pairs) < 3 or len(pairs) < 0.5 * len(rows):
        return None
    gaps = [(r[0].x1 + r[1].x0) / 2 for r in pairs]
    middle = statistics.median(gaps)
    if not 0.3 * width <= middle <= 0.7 * width:
        return None
    return middle if all(r[0].x1 <= middle <= r[1].x0 for r in pairs) else None


def _ordered(rows: list[list[Line]], width: float) -> list[list[Line]]:
    """Rows in reading order: in a two-column page, the left column's lines before the right column's,
    lines across the gutter (a centred title) where they stand."""
    gutter = _gutter(rows, width)
    if gutter is None:
        return rows
    out: list[list[Line]] = []
    left: list[list[Line]] = []
    right: list[list[Line]] = []
    for row in rows:
        if any(v.x0 < gutter < v.x1 for v in row):
            out += left + right + [row]
            left, right = [], []
            continue
        left += [[v] for v in row if v.x1 <= gutter]
        right += [[v] for v in row if v.x0 >= gutter]
    return out + left + right


def units(lines: list[Line], page: int, width: float) -> list[Unit]:
    """Units of one page: a row of one line is a line (its width lets the loader join wrapped lines);
    a row of several cells far apart is a table row."""
    if not lines:
        return []
    size = statistics.median(v.height for v in lines)
    out: list[Unit] = []
    for row in _ordered(_rows(lines), width):
        cells = _cells(row, size)
        confidence = statistics.fmean(v.confidence for v in row)
        if len(cells) > 1:
            out.append(Unit("\t".join(cells), "row", cells=cells, page=page, ocr=confidence))
        else:
            out.append(Unit(cells[0], page=page, width=row[-1].x1 - row[0].x0, ocr=confidence))
    return _end_tables(out)


def _cells(row: list[Line], size: float) -> list[str]:
    """The row's text, cut where a gap wider than two characters separates two boxes."""
    cells = [row[0].text]
    for prev, line in itertools.pairwise(row):
        if line.x0 - prev.x1 > 2 * size:
            cells.append(line.text)
        else:
            cells[-1] += line.text
    return ["".join(c.split()) if len(cells) > 1 else c for c in cells]


def _end_tables(found: list[Unit]) -> list[Unit]:
    """A table ends where its rows do (the loaders mark it with an "end" unit)."""
    out: list[Unit] = []
    for i, u in enumerate(found):
        out.append(u)
        if u.kind == "row" and (i + 1 == len(found) or found[i + 1].kind != "row"):
            out.append(Unit("", "end", page=u.page))
    return out


def read_page(image: Any, page: int) -> list[Unit]:
    """One page image as units."""
    return units(read(image), page, float(image.width))
