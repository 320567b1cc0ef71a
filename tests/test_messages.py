"""Every error a person can see comes with a Chinese `message` beside the machine-readable fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.api import create_app
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.messages import chinese

from .conftest import app_client

CJK = re.compile(r"[\u4e00-\u9fff]")
ADMIN = {"Authorization": "Bearer t"}


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.ensure()
    settings = Settings(
        corpus_dir=corpus, index_dir=tmp_path / "idx", model="hash:64", admin_token="t", max_upload_bytes=1000
    )
    with TestClient(create_app(settings, engine)) as c:
        yield c


def test_every_error_has_a_chinese_message(client: TestClient) -> None:
    responses = [
        client.get("/api/search", params={"q": " "}),
        client.get("/api/search", params={"q": "长" * 501}),
        client.get("/api/search", params={"q": "问", "k": 99}),
        client.get("/api/search", params={"q": "问", "after": "2024-02-30"}),
        client.get("/api/search", params={"q": "问", "doc_id": "0123456789ab"}),
        client.post("/api/search", content=b"{", headers={"content-type": "application/json"}),
        client.post("/api/search", content=b"x" * 20000, headers={"content-type": "application/json"}),
        client.get("/api/nothing"),
        client.get("/api/documents/0123456789ab/text"),
        client.get("/api/index/jobs/nope"),
        client.post("/api/documents", files={"file": ("a.txt", b"x")}),
        client.post("/api/documents", headers=ADMIN, files={"file": ("big.txt", "大".encode() * 2000)}),
        client.post("/api/documents", headers=ADMIN, files={"file": ("empty.txt", b"")}),
        client.post("/api/documents", headers=ADMIN, files={"file": ("x.bin", bytes(range(256)) * 3)}),
        client.post("/api/documents", headers=ADMIN, data={"other": "1"}),
    ]
    for resp in responses:
        assert resp.status_code >= 400
        body = resp.json()
        assert body["error"] and CJK.search(body["message"]), (resp.status_code, body)
    statuses = [r.status_code for r in responses]
    assert 413 in statuses and 401 in statuses and 404 in statuses


def test_messages_carry_what_the_error_names() -> None:
    assert "62.9 MB" in chinese("通知.pdf: the file is 65945600 bytes; the limit is 20971520 bytes", 413)
    assert "通知.pdf" in chinese("通知.pdf: the file is empty")
    assert "POLICYQA_MAX_PDF_PAGES" in chinese(
        "a.pdf: has 3000 pages, over the limit of 2000 (POLICYQA_MAX_PDF_PAGES); split the document"
    )
    assert chinese("something new", 500) == "服务内部错误，请稍后重试；详情见服务器日志。"
    assert chinese("q: whatever", 422, "q").startswith("请输入问题")


@pytest.fixture
def roomy(corpus: Path, tmp_path: Path, embedder):
    """An app whose upload limit (8 KiB) lets a deeply nested page through to the parser's limits."""
    yield from app_client(corpus, tmp_path / "idx", embedder, admin_token="t", max_upload_bytes=8192)


def test_only_byte_counts_read_as_sizes(roomy: TestClient) -> None:
    long = roomy.get("/api/search", params={"q": "长" * 600}).json()["message"]
    assert long == "问题太长（600 个字符），最多 500 个字符。"
    unknown = roomy.get("/api/search", params={"q": "补贴", "doc_id": "123456789012"}).json()["message"]
    assert "没有编号为 123456789012 的文档" in unknown and "MB" not in unknown
    page = b"<html><body>" + b"<div>" * 302 + "深".encode() + b"</div>" * 302 + b"</body></html>"
    deep = roomy.post("/api/documents", headers=ADMIN, files={"file": ("deep.html", page)})
    assert deep.status_code == 422, deep.text
    assert "256 层" in deep.json()["message"] and "POLICYQA_MAX_HTML_DEPTH" in deep.json()["message"]
    assert "字节" not in deep.json()["message"]
    big = roomy.post("/api/documents", headers=ADMIN, files={"file": ("big.txt", b"x" * 9000)})
    assert big.status_code == 413
    assert big.json()["message"].startswith("文件 big.txt 太大（8.8 KB），上限为 8 KB")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            "a.docx: has 300000 paragraphs and table cells, over the limit of 200000 (POLICYQA_MAX_NODES); split",
            "200000 个",
        ),
        ("a.pdf: has 3000 pages, over the limit of 2000 (POLICYQA_MAX_PDF_PAGES); split the document", "2000 页"),
        ("a.docx: part x inflates to 90 MiB, over the limit of 64 MiB (POLICYQA_MAX_INFLATED_BYTES); split", "64 MiB"),
        (
            "a.docx: its parts inflate to 300 MiB, over the limit of 256 MiB (4 x POLICYQA_MAX_INFLATED_BYTES)",
            "256 MiB",
        ),
        ("a.pdf: parsing used more than 60 s of CPU, the limit (POLICYQA_PARSE_SECONDS)", "60 秒"),
        ("a.pdf: parsing took longer than 60 s, the limit (POLICYQA_PARSE_SECONDS)", "60 秒"),
        ("a.pdf: parsing needs more than 1024 MiB of memory (POLICYQA_PARSE_MEMORY_BYTES)", "1024 MiB"),
        ("a.html: the document is nested too deeply to parse (POLICYQA_MAX_HTML_DEPTH)", "POLICYQA_MAX_HTML_DEPTH"),
    ],
)
def test_every_parse_limit_has_its_own_message(error: str, shown: str) -> None:
    """Each limit of limits.py and sandbox.py is named with its value as it is, never the upload field's text."""
    text = chinese(error, 422, "file")
    assert text.startswith("文件 a.") or text.startswith("解析文件 a.")
    assert shown in text and "字节" not in text and "KB" not in text
