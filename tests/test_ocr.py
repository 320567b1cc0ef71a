"""Scans and pictures are read by OCR: a picture of a notice is indexed and found, a PDF that mixes text pages
with a scanned one keeps the scanned page, and lines come back in reading order. The pictures are drawn here
with a CJK font; the engine reads one or two small images in all."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyqa.ingest import loaders as ingest
from policyqa.ingest import ocr, sandbox
from policyqa.ingest.chunk import chunk_document
from policyqa.ingest.inspection import inspect_document
from policyqa.models import Unit
from policyqa.search.ranking import search
from policyqa.snapshot.index import load
from policyqa.snapshot.refresh import refresh

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
TITLE = "青山市科技创新券管理办法"
LINES = [
    "第一条 为鼓励中小企业购买研发设计和检验检测服务，制定本办法。",
    "第二条 创新券每张面额最高为五万元，由市科技局统一发放，",
    "企业凭券向服务机构支付费用。",
]

needs_font = pytest.mark.skipif(not FONT.exists(), reason="no CJK font (fonts-wqy-microhei) to draw the scan with")


def picture(lines: list[str] = LINES, title: str = TITLE, size: int = 26) -> bytes:
    """A page as a scanner would make it: a centred title, then body lines (the last one of a paragraph short)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), size)
    width = int(max(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(t, font=font) for t in lines)) + 80
    image = Image.new("L", (width, 60 + 2 * size * (len(lines) + 1)), 255)
    draw = ImageDraw.Draw(image)
    draw.text(((width - draw.textlength(title, font=font)) / 2, 20), title, font=font, fill=0)
    for n, line in enumerate(lines, 1):
        draw.text((40, 20 + n * 2 * size), line, font=font, fill=0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def squashed(text: str) -> str:
    return "".join(text.split())


@needs_font
def test_a_picture_is_read_in_the_sandbox_told_page_by_page_and_found(tmp_path: Path, embedder) -> None:
    data = picture()
    told: list[tuple[str, int, int]] = []
    doc = sandbox.parse(data, "创新券.png", on_page=lambda source, done, total: told.append((source, done, total)))
    assert told == [("创新券.png", 0, 1), ("创新券.png", 1, 1)]
    assert doc.title == TITLE
    assert "由市科技局统一发放，企业凭券向服务机构支付费用。" in squashed(doc.text)  # a wrapped line joined
    assert [s.page for s in doc.scanned] == [1] and doc.scanned[0].confidence > 0.8
    second = next(b for b in doc.blocks if "五万元" in b.text)
    assert second.section == ("第二条",) and second.page == 1  # 第X条 recognised as in a born-digital file
    assert chunk_document(doc)[0].section == "第一条至第二条"  # short articles packed as a law's are
    report = inspect_document(doc).as_dict()
    assert report["ocr"]["pages"][0]["page"] == 1 and report["ocr"]["confidence"] > 0.8

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "创新券.png").write_bytes(data)
    built = refresh(corpus, tmp_path / "index", embedder)
    assert built.documents == 1 and not built.errors
    hits = search(load(tmp_path / "index", embedder), embedder, "创新券每张面额最高多少", k=3).hits
    assert hits and hits[0].chunk.source == "创新券.png" and "五万元" in hits[0].chunk.text


def a4(scan: bytes) -> io.BytesIO:
    """The picture at the top of a white sheet of A4 proportions, as a flatbed scanner gives it."""
    from PIL import Image

    with Image.open(io.BytesIO(scan)) as picture:
        sheet = Image.new("L", (picture.width, round(picture.width * 842 / 595)), 255)
        sheet.paste(picture, (0, 0))
    out = io.BytesIO()
    sheet.save(out, "PNG")
    out.seek(0)
    return out


def mixed_pdf(scan: bytes) -> bytes:
    """Page 1 printed text, page 2 a scanned picture and no text at all."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(595, 842))
    page.setFont("STSong-Light", 16)
    page.drawString(150, 780, "青山市科技局关于发放创新券的通知")
    page.setFont("STSong-Light", 12)
    page.drawString(72, 740, "一、各区科技部门要做好创新券的宣传和受理工作。")
    page.showPage()
    page.drawImage(ImageReader(a4(scan)), 0, 0, 595, 842)  # a scanned sheet covers the whole page
    page.drawString(290, 30, "- 2 -")  # a page number in the text layer: a few characters on a scanned page
    page.showPage()
    page.save()
    return out.getvalue()


@needs_font
def test_a_pdf_mixing_text_and_a_scan_keeps_the_scanned_page() -> None:
    doc = ingest.parse(mixed_pdf(picture(LINES[1:], "附件：创新券发放规则")), "通知.pdf")
    assert "各区科技部门要做好创新券的宣传和受理工作" in doc.text  # the text layer, as before
    assert "企业凭券向服务机构支付费用" in squashed(doc.text)  # the scanned page, lost before
    assert [s.page for s in doc.scanned] == [2]
    assert next(b for b in doc.blocks if "凭券" in b.text).page == 2


def test_build_progress_shows_the_pages_of_a_scan(capsys: pytest.CaptureFixture[str]) -> None:
    from policyqa.cli import _Progress

    shown = _Progress()
    shown(0, 20, "pages")
    shown(5, 20, "pages")
    shown(40, 80)
    err = capsys.readouterr().err
    assert "reading scans by OCR" in err and "5/20 pages" in err and "pages/s" in err
    assert err.rsplit("\r", 1)[-1].startswith("embedding") and "40/80 passages" in err


def line(text: str, x0: float, y0: float, x1: float, height: float = 20) -> ocr.Line:
    return ocr.Line(text, x0, y0, x1, y0 + height, 0.99)


def texts(units: list[Unit]) -> list[str]:
    return [u.text for u in units if u.kind != "end"]


def test_two_columns_are_read_one_after_the_other_under_a_centred_title() -> None:
    left = [f"左栏第{n}行的正文内容较长一些" for n in range(1, 5)]
    right = [f"右栏第{n}行的正文内容较长一些" for n in range(1, 5)]
    lines = [line("关于两栏排版文件的通知", 300, 10, 700)]
    for n in range(4):
        lines += [line(right[n], 520, 60 + 30 * n, 960), line(left[n], 40, 62 + 30 * n, 480)]
    assert texts(ocr.units(lines, 1, 1000)) == ["关于两栏排版文件的通知", *left, *right]


def test_a_table_row_keeps_its_cells_and_a_single_column_page_reads_row_by_row() -> None:
    lines = [
        line("项目", 40, 10, 100),
        line("预算数", 400, 12, 500),
        line("基本支出", 40, 40, 160),
        line("1,234.50", 400, 41, 500),
        line("一、本表为年度预算。", 40, 80, 300),
    ]
    found = ocr.units(lines, 3, 600)
    assert [u.cells for u in found if u.kind == "row"] == [["项目", "预算数"], ["基本支出", "1,234.50"]]
    assert [u.kind for u in found] == ["row", "row", "end", "line"] and all(u.page == 3 for u in found)
