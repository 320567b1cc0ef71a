"""Parse bombs under the upload limit: refused by a format limit or by the child's rlimits, never by the
service's own memory. Every bomb is generated here, at a size that keeps the test fast."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from policyqa.errors import DocumentError, UploadError
from policyqa.ingest import corpus, sandbox
from policyqa.ingest.limits import MIB, Limits
from policyqa.snapshot.refresh import refresh

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx(paragraphs: int, padding: int = 0) -> bytes:
    """A minimal .docx: `paragraphs` short paragraphs, and `padding` bytes of whitespace in document.xml."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            fh.write(f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>'.encode())
            para = "<w:p><w:r><w:t>第一条 本办法自印发之日起施行。</w:t></w:r></w:p>".encode()
            for _ in range(paragraphs // 1000):
                fh.write(para * 1000)
            fh.write(para * (paragraphs % 1000))
            for _ in range(padding // MIB):
                fh.write(b" " * MIB)
            fh.write(b"</w:body></w:document>")
    return buf.getvalue()


def flate_pdf(inflated: int) -> bytes:
    """A PDF whose one Flate stream inflates to `inflated` bytes."""
    packer = zlib.compressobj(9)
    stream = b"".join(packer.compress(b"\0" * MIB) for _ in range(inflated // MIB)) + packer.flush()
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/Contents 4 0 R/MediaBox[0 0 612 792]>>endobj\n"
        + f"4 0 obj<</Length {len(stream)}/Filter/FlateDecode>>stream\n".encode()
        + stream
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def many_pages_pdf(pages: int) -> bytes:
    kids = " ".join(f"{i + 3} 0 R" for i in range(pages))
    objects = "".join(f"{i + 3} 0 obj<</Type/Page/Parent 2 0 R>>endobj\n" for i in range(pages))
    return (
        f"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[{kids}]/Count {pages}>>"
        f"endobj\n{objects}trailer<</Root 1 0 R>>\n%%EOF\n"
    ).encode()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels and holds a few bytes of them: decoded, it would fill
    width x height bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    pixels = zlib.compress(b"\0" * (width + 1) * 16)  # the first 16 rows; the rest is missing
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def scanned_pdf(width: int, height: int) -> bytes:
    """A PDF of one page that is one image of `width` x `height` pixels and no text: a scan to read by OCR."""
    pixels = zlib.compress(b"\xff" * width * 16)
    content = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R"
        b"/Resources<</XObject<</Im0 5 0 R>>>>>>endobj\n"
        + f"4 0 obj<</Length {len(content)}>>stream\n".encode()
        + content
        + b"\nendstream endobj\n"
        + f"5 0 obj<</Type/XObject/Subtype/Image/Width {width}/Height {height}/ColorSpace/DeviceGray"
        f"/BitsPerComponent 8/Filter/FlateDecode/Length {len(pixels)}>>stream\n".encode()
        + pixels
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def nested_html(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + "深层".encode() + b"</div>" * depth + b"</body></html>"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


BOMBS = {
    # name: (bytes, the setting the error must name)
    "docx part inflating to 300 MiB": (lambda: docx(10, padding=300 * MIB), "POLICYQA_MAX_INFLATED_BYTES"),
    "docx of 300,000 small paragraphs": (lambda: docx(300_000), "POLICYQA_MAX_NODES"),
    "pdf stream inflating to 300 MiB": (lambda: flate_pdf(300 * MIB), "POLICYQA_MAX_INFLATED_BYTES"),
    "pdf of 220,000 pages": (lambda: many_pages_pdf(220_000), "POLICYQA_MAX_PDF_PAGES"),
    "html nested 100,000 deep": (lambda: nested_html(100_000), "POLICYQA_MAX_HTML_DEPTH"),
    "png of 30,000 x 30,000 pixels": (lambda: png_header(30_000, 30_000), "POLICYQA_MAX_IMAGE_PIXELS"),
    "pdf scan of a 20,000 x 20,000 image": (lambda: scanned_pdf(20_000, 20_000), "POLICYQA_MAX_IMAGE_PIXELS"),
}
SUFFIX = {"docx": ".docx", "pdf ": ".pdf", "html": ".html", "png ": ".png"}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_are_refused_naming_the_limit_and_the_parent_stays_small(name: str, tmp_path: Path) -> None:
    make, setting = BOMBS[name]
    data = make()
    assert len(data) < 20 * MIB  # under the upload limit
    source = "bomb" + SUFFIX[name[:4]]
    before = peak_rss_mib()
    with pytest.raises(UploadError, match=setting):
        corpus.add(tmp_path, source, data, 20 * MIB)
    assert peak_rss_mib() - before < 100  # the parse ran in the child
    assert list(tmp_path.iterdir()) == []


def test_an_image_bomb_upload_is_a_422_naming_the_limit(corpus: Path, tmp_path: Path, embedder) -> None:
    from .conftest import app_client

    token = {"Authorization": "Bearer t"}
    for client in app_client(corpus, tmp_path / "idx", embedder, admin_token="t"):
        resp = client.post("/api/documents", files={"file": ("扫描件.png", png_header(30_000, 30_000))}, headers=token)
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert "POLICYQA_MAX_IMAGE_PIXELS" in body["error"] and "30000 x 30000" in body["error"], body
        assert "像素" in body["message"], body


def test_a_parse_over_the_memory_limit_kills_only_the_child() -> None:
    data = docx(150_000)  # within the format limits, but lxml and python-docx need far more than 64 MiB
    limits = Limits(memory_bytes=64 * MIB, nodes=10**6)
    before = peak_rss_mib()
    with sandbox.Sandbox(limits) as box:
        with pytest.raises(DocumentError, match="POLICYQA_PARSE_MEMORY_BYTES"):
            box.parse(data, "big.docx")
        assert box.parse("第一条 正常的文件。\n".encode(), "ok.txt").text  # a fresh child carries on
    assert peak_rss_mib() - before < 100


def test_a_parse_works_when_the_process_holds_over_a_thousand_files() -> None:
    """select() refuses descriptors past 1023: a service that had opened that many could parse nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200 and hard < 1200:
        pytest.skip("this machine allows fewer than 1200 open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert sandbox.parse("第一条 正常的文件。\n".encode(), "ok.txt", Limits()).text
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_slow_parse_is_stopped_at_the_time_limit() -> None:
    data = b"<html><body>" + b"<p>\xe6\xae\xb5</p>" * 150_000 + b"</body></html>"
    with pytest.raises(DocumentError, match="POLICYQA_PARSE_SECONDS"):
        sandbox.parse(data, "slow.html", Limits(seconds=0.3))


def test_a_bomb_in_the_corpus_folder_is_skipped_by_name(corpus: Path, tmp_path: Path, embedder) -> None:
    (corpus / "bomb.html").write_bytes(nested_html(300_000))
    report = refresh(corpus, tmp_path / "idx", embedder)
    assert report.documents == 2 and any("bomb.html" in e and "POLICYQA_MAX_HTML_DEPTH" in e for e in report.errors)


def test_cli_add_says_which_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(flate_pdf(100 * MIB))
    (tmp_path / "c").mkdir()  # add refuses a missing corpus folder
    env = {**os.environ, "POLICYQA_MODEL": "hash:64", "POLICYQA_MAX_INFLATED_BYTES": str(32 * MIB)}
    cmd = [sys.executable, "-m", "policyqa", "add", str(bomb), "--corpus", str(tmp_path / "c"), "--index", "x"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "bomb.pdf" in done.stderr and "POLICYQA_MAX_INFLATED_BYTES" in done.stderr and "32 MiB" in done.stderr


def test_cli_inspect_refuses_what_the_index_would_refuse(tmp_path: Path) -> None:
    """`inspect` shows a file as the index would hold it: under the same limits, parsed in the child."""
    page = tmp_path / "deep.html"
    body = "<p>本办法自2024年1月1日起施行，由市科技局负责解释。</p>"
    page.write_bytes(("<html><body>" + "<div>" * 40 + body + "</div>" * 40 + "</body></html>").encode())
    cmd = [sys.executable, "-m", "policyqa", "inspect", str(page)]
    done = subprocess.run(cmd, env={**os.environ, "POLICYQA_MAX_HTML_DEPTH": "20"}, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "deep.html" in done.stderr and "POLICYQA_MAX_HTML_DEPTH" in done.stderr
    ok = subprocess.run(cmd, env=os.environ, capture_output=True, text=True)
    assert ok.returncode == 0 and "市科技局负责解释" in ok.stdout, ok.stderr
