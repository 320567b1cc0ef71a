"""One fixture per format, generated here: docx by python-docx, pdf by reportlab, html, GB18030 text."""

from __future__ import annotations

import io

import pytest

from policyqa.errors import DocumentError
from policyqa.ingest import formats
from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import chunk_document

BODY = "对新认定的高新技术企业给予一次性奖励20万元，对研发投入超过1000万元的企业按照10%给予补助。"


def make_docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("科技企业扶持办法", level=0)
    d.add_heading("一、资金支持", level=1)
    d.add_paragraph(BODY)
    d.add_paragraph("扶持标准如下表")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["类别", "标准", "上限"], ["高企认定", "20万元", "一次"], ["研发补助", "10%", "500万元"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_heading("二、人才支持", level=1)
    d.add_paragraph("一是引进领军人才。对顶尖人才团队给予最高1亿元资助。")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_pdf(pages: int = 3) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    c = canvas.Canvas(out)
    lines = [
        [
            "科技企业扶持办法",
            "一、资金支持",
            "对新认定的高新技术企业给予一次性奖励20万元，对研发投入超过1000万元的企",
            "业按照10%给予补助。",
        ],
        ["二、人才支持", "对顶尖人才团队给予最高1亿元资助，对领军人才给予安家补贴和子女入学等方面的", "支持。"],
        ["三、附则", "本办法自发布之日起施行。"],
    ]
    for number in range(pages):
        c.setFont("STSong-Light", 9)
        c.drawString(250, 810, "南京市科技局文件汇编")
        c.setFont("STSong-Light", 12)
        y = 760
        for line in lines[number % len(lines)]:
            c.drawString(72, y, line)
            y -= 20
        c.setFont("STSong-Light", 9)
        c.drawString(295, 40, str(number + 1))
        c.showPage()
    c.save()
    return out.getvalue()


HTML = (
    """<!doctype html><html><head><meta charset="utf-8"><title>通知</title>
<style>.x{color:red}</style><script>var secret = "脚本内容不应出现";</script></head>
<body><nav><a href="/">首页</a> 导航菜单文字</nav>
<div class="breadcrumb">当前位置：首页 > 政策</div>
<main><h1>科技企业扶持办法</h1><h2>一、资金支持</h2><p>"""
    + BODY
    + """</p>
<table><caption>扶持标准</caption><tr><th>类别</th><th>标准</th></tr><tr><td>高企认定</td><td>20万元</td></tr></table>
</main><footer>版权所有 页脚文字</footer></body></html>"""
)


def test_docx_headings_paragraphs_and_tables() -> None:
    doc = ingest.parse(make_docx(), "a.docx")
    assert doc.title == "科技企业扶持办法"
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert [r.table for r in rows] == [
        "扶持标准如下表｜类别 高企认定｜标准 20万元｜上限 一次",
        "扶持标准如下表｜类别 研发补助｜标准 10%｜上限 500万元",
    ]
    para = next(b for b in doc.blocks if BODY in b.text)
    assert para.section == ("一、资金支持",)
    assert any(b.section == ("二、人才支持", "一是引进领军人才") for b in doc.blocks)


def test_pdf_pages_headers_and_rejoined_lines() -> None:
    doc = ingest.parse(make_pdf(3), "a.pdf")
    assert "南京市科技局文件汇编" not in doc.text  # running header on every page
    assert "1000万元的企业按照10%给予补助" in doc.text  # a line wrapped mid-word is joined
    chunks = chunk_document(doc)
    talent = next(c for c in chunks if "1亿元" in c.text)
    assert talent.page == 2 and talent.section == "二、人才支持"
    assert all(c.text.strip() not in {"1", "2", "3"} for c in chunks)


def test_html_keeps_main_content_only() -> None:
    doc = ingest.parse(HTML.encode(), "a.html")
    assert BODY in doc.text
    for noise in ("脚本内容", "导航菜单", "当前位置", "页脚文字", "color:red"):
        assert noise not in doc.text
    rows = [b for b in doc.blocks if b.kind == "table_row"]
    assert rows and rows[0].table.endswith("类别 高企认定｜标准 20万元")


def test_gb18030_text() -> None:
    text = "通知\n\n一、总体要求\n\n" + BODY + "\n"
    doc = ingest.parse(text.encode("gb18030"), "gbk.txt")
    assert BODY in doc.text and doc.title == "通知"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.4\n garbage that is not a pdf", "broken.pdf"),
        (b"", "empty.txt"),
        (b"not a zip", "broken.docx"),
        (b"", "empty.pdf"),
        (b"<html><body><script>x</script></body></html>", "blank.html"),
    ],
)
def test_broken_and_empty_files_name_themselves(data: bytes, name: str) -> None:
    with pytest.raises(DocumentError, match=name.replace(".", r"\.")):
        ingest.parse(data, name)


def test_sniff_detects_types_from_content() -> None:
    assert formats.sniff(make_pdf(1)) == ".pdf"
    assert formats.sniff(make_docx()) == ".docx"
    assert formats.sniff(HTML.encode()) == ".html"
    assert formats.sniff("普通文本".encode()) == ".txt"
