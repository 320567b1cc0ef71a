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
