"""The smaller holes found by attacking the service: leftovers of killed builds, a DELETE that deletes nothing,
a body trickled for ever, Range errors, lone surrogates in filters, names that break lines."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from policyqa.engine import Engine
from policyqa.ingest import corpus as corpus_mod
from policyqa.messages import chinese

from .conftest import app_client

AUTH = {"Authorization": "Bearer t"}
TEXT = "海洋经济发展规划\n\n到2030年，海洋生产总值达到1.5万亿元。\n".encode()


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder, admin_token="t", watch_seconds=0)


def test_leftovers_of_a_killed_build_are_removed_by_the_next(corpus: Path, tmp_path: Path, embedder) -> None:
    index = tmp_path / "idx"
    Engine(corpus, index, embedder).update()
    left = index / "snapshots" / ".tmp-20260101T000000-000000001"
    left.mkdir()
    (left / "chunks.jsonl").write_text("{}\n", encoding="utf-8")
    (index / ".CURRENT.20260101T000000-000000001").write_text("x\n", encoding="utf-8")
    Engine(corpus, index, embedder).update()  # as the service's start does
    assert not left.exists() and not list(index.glob(".CURRENT.*"))


def test_a_delete_that_deletes_nothing_is_404(client: TestClient) -> None:
    engine: Engine = client.app.state.policyqa.engine
    doc_id = next(d.doc_id for d in engine.index.documents.values() if d.source == "measures.txt")
    with engine._update_lock:  # the delete's update has not published yet
        first = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
        assert first.status_code == 202
        again = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
        assert again.status_code == 404 and "deleted already" in again.json()["error"]
        assert again.json()["message"] == "找不到该文档，它可能已被删除。"
    engine.wait(engine.jobs[first.json()["job"]["id"]], 60)
    assert client.delete(f"/api/documents/{doc_id}", headers=AUTH).status_code == 404


def test_a_trickled_body_gets_408(corpus: Path, server_factory) -> None:
    srv = server_factory(corpus, POLICYQA_BODY_SECONDS="1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
        head = b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n"
        sock.sendall(head)
        began = time.monotonic()
        answer = b""
        for byte in b'{"q": "\xe8\xa1\xa5\xe8\xb4\xb4"':  # a byte every 0.3 s, never the whole body
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sock.settimeout(0.3)
            try:
                answer += sock.recv(4096)
                break
            except TimeoutError:
                continue
        sock.settimeout(10)
        while b"}" not in answer:
            part = sock.recv(4096)
            if not part:
                break
            answer += part
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error":"the request body took longer than 1 s' in answer and time.monotonic() - began < 5
    assert httpx.get(f"{srv.url}/api/health").status_code == 200


def test_range_errors_are_json(client: TestClient, corpus: Path) -> None:
    doc_id = next(d["doc_id"] for d in client.get("/api/documents").json()["documents"])
    size = (corpus / "measures.txt").stat().st_size
    beyond = client.get(f"/api/documents/{doc_id}/original", headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert beyond.status_code == 416 and beyond.headers["content-type"] == "application/json"
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert str(size) in beyond.json()["error"] and beyond.json()["message"].startswith("请求的文件范围")
    assert "content-security-policy" in beyond.headers
    malformed = client.get(f"/api/documents/{doc_id}/original", headers={"Range": "bytes=9-2"})
    assert malformed.status_code == 400 and malformed.json()["error"].startswith("the request is malformed")
    part = client.get(f"/api/documents/{doc_id}/original", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10


@pytest.mark.parametrize("field", ["issuer", "folder", "after", "before"])
def test_a_lone_surrogate_in_a_filter_says_so(client: TestClient, field: str) -> None:
    body = f'{{"q": "补贴", "{field}": "\\ud800"}}'
    resp = client.post("/api/search", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["field"] == field
    assert "lone surrogate" in resp.json()["error"]
    assert resp.json()["message"] == "文字中含有无效字符，请检查后重试。"


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85", "\x0b", "\r\n"])
def test_stored_names_keep_to_one_line(tmp_path: Path, odd: str) -> None:
    stored = corpus_mod.add(tmp_path, f"海洋{odd}规划.txt", TEXT)
    assert stored.source == "海洋_规划.txt" or stored.source == "海洋__规划.txt"
    assert not any(c in stored.source for c in "\u2028\u2029\x85\x0b\r\n")


def test_messages_of_the_new_errors() -> None:
    assert chinese("the request body took longer than 60 s to arrive (POLICYQA_BODY_SECONDS)", 408).startswith(
        "请求内容在 60 秒内"
    )
    assert "UTF-8" in chinese("\\xb9\\xd8.txt: the file name is not UTF-8 (another encoding); rename the file")


def test_an_upload_cut_off_by_its_client_leaves_no_traceback(corpus: Path, server_factory) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN="t")
    head = (
        b"POST /api/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
        b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\n" + b"x" * 500
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.5)
    time.sleep(1)
    assert httpx.get(f"{srv.url}/api/health").status_code == 200
    log = srv.log.read_text(encoding="utf-8")
    assert "POST /api/documents 400" in log and "Traceback" not in log
