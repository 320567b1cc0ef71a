"""Hostile input at the HTTP edge: every route answers JSON, never a plain-text 500; bodies are bounded;
disk errors name their cause; every response carries the security headers; upload names cannot spoof."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from policyqa.api import create_app
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.ingest import corpus as corpus_mod

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXT = "海洋经济发展规划\n\n一、发展目标\n到2030年，海洋生产总值达到1.5万亿元。\n".encode()


@pytest.fixture
def app_and_engine(corpus: Path, tmp_path: Path, embedder):
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.ensure()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", model="hash:64", admin_token=TOKEN)
    return create_app(settings, engine), engine


@pytest.fixture
def client(app_and_engine):
    with TestClient(app_and_engine[0], raise_server_exceptions=False) as c:
        yield c


def assert_json_error(resp, *codes: int) -> dict:
    assert resp.status_code in codes, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert body["error"]
    return body


def hostile_requests(path: str, method: str) -> list[dict]:
    concrete = path.replace("{doc_id}", "0123456789ab").replace("{job_id}", "job-1").replace("{rest:path}", "x")
    return [
        {"method": method, "url": concrete, "content": b"\xff\xfe\x00garbage", "headers": AUTH},
        {"method": method, "url": concrete, "content": b'{"q": "\\ud800", "k": "\\udfff"}', "headers": AUTH},
        {"method": method, "url": concrete, "content": b"[" * 5000 + b"]" * 5000, "headers": AUTH},
        {"method": method, "url": concrete + "?q=%ED%A0%80&k=-1&full=maybe&replace=%00", "headers": AUTH},
        {"method": method, "url": concrete, "content": b"x" * 200_000, "headers": AUTH},
        {"method": method, "url": concrete, "headers": {"Authorization": "Bearer \udc80".encode("utf-8", "replace")}},
    ]


def test_every_route_answers_hostile_input_with_json(app_and_engine, client: TestClient) -> None:
    app, _ = app_and_engine
    # every documented operation (the routers' routes are included lazily, so not listed in app.routes)
    routes = [(path, m.upper()) for path, ops in app.openapi()["paths"].items() for m in sorted(ops)]
    routes += [(r.path, m) for r in app.routes if isinstance(r, APIRoute) for m in sorted(r.methods)]
    routes += [(p, m) for p in ("/api/{rest:path}", "/..%2f..%2fetc/passwd", "/nope.js") for m in ("GET", "POST")]
    assert len(routes) >= 20
    for path, method in routes:
        for request in hostile_requests(path, method):
            resp = client.request(**request)
            assert resp.status_code != 500, (path, method, resp.text)
            if resp.status_code >= 400 and method == "HEAD":  # an answer to HEAD has headers only
                assert resp.headers["content-type"].startswith("application/json") and not resp.content
            elif resp.status_code >= 400:
                assert_json_error(resp, resp.status_code)
            assert "content-security-policy" in resp.headers


def test_search_bodies_are_bounded_in_kilobytes(client: TestClient) -> None:
    body = assert_json_error(client.post("/api/search", content=b'{"q": "' + b"a" * 100_000 + b'"}'), 413)
    assert "16384" in body["error"]

    def chunked():  # no Content-Length: the limit applies while the body streams in
        yield b'{"q": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}'

    assert_json_error(client.post("/api/search", content=chunked()), 413)
    assert client.post("/api/search", json={"q": "人才公寓"}).status_code == 200


def test_lone_surrogates_are_422(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    body = assert_json_error(client.post("/api/search", content=b'{"q": "\\ud800"}', headers=json_type), 422)
    assert body["field"] == "q" and "surrogate" in body["error"]


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [(errno.ENOSPC, 507, "free disk space"), (errno.ENAMETOOLONG, 422, "shorter"), (errno.EACCES, 403, "permission")],
)
def test_os_errors_are_json_naming_the_cause(client: TestClient, monkeypatch, code: int, status: int, words: str):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(corpus_mod.os, "link", fail)
    resp = client.post("/api/documents", files={"file": ("海洋.txt", TEXT)}, headers=AUTH)
    body = assert_json_error(resp, status)
    assert os.strerror(code) in body["error"] and words in body["error"]


def test_long_cjk_names_are_shortened_not_500(client: TestClient, corpus: Path) -> None:
    resp = client.post("/api/documents", files={"file": ("海" * 200 + ".txt", TEXT)}, headers=AUTH)
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["source"].encode()) <= 255 and (corpus / resp.json()["source"]).exists()


def test_security_headers_on_every_response(client: TestClient) -> None:
    for url in ("/", "/app.js", "/api/health", "/api/nothing", "/docs"):
        headers = client.get(url).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert (
            headers["referrer-policy"] == "no-referrer"
            and "frame-ancestors 'none'" in headers["content-security-policy"]
        )
    assert "script-src 'self';" in client.get("/").headers["content-security-policy"]
    page = client.get("/").text
    assert "<script>" not in page and " on" + "click=" not in page  # the page passes its own policy


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("...", "document.txt"),
        ("通知\u202egpj.txt", "通知gpj.txt"),  # right-to-left override
        ("通\u200b知.txt", "通知.txt"),  # zero-width space
        ("e\u0301.txt", "\u00e9.txt"),  # NFC
        ("通知".encode("gbk").decode("latin-1") + ".txt", "通知.txt"),  # GBK bytes read as Latin-1
        ("通知".encode().decode("latin-1") + ".txt", "通知.txt"),  # UTF-8 bytes read as Latin-1
        ("caf\u00e9.txt", "caf\u00e9.txt"),  # real Latin-1 stays
    ],
)
def test_upload_names_are_normalised(name: str, expected: str) -> None:
    assert corpus_mod.safe_name(name, TEXT) == expected


def test_name_collisions_get_a_suffix_unless_replace(client: TestClient, corpus: Path) -> None:
    sources = [
        client.post("/api/documents", files={"file": (name, TEXT + b"\n" * n)}, headers=AUTH).json()["source"]
        for n, name in enumerate(("...", "..", ".", "..."))
    ]
    assert sources == ["document.txt", "document-2.txt", "document-3.txt", "document-4.txt"]
    again = client.post("/api/documents?replace=true", files={"file": ("...", TEXT + b"x")}, headers=AUTH).json()
    assert again["source"] == "document.txt" and again["replaced"] is True
    assert (corpus / "document.txt").read_bytes() == TEXT + b"x"


def test_the_same_bytes_uploaded_again_are_one_document(client: TestClient, corpus: Path) -> None:
    """An upload sent twice (a retry, a second click) must not put every passage in the results twice."""
    first = client.post("/api/documents", files={"file": ("通知.txt", TEXT)}, headers=AUTH).json()
    assert first["source"] == "通知.txt" and first["unchanged"] is False
    again = client.post("/api/documents", files={"file": ("通知.txt", TEXT)}, headers=AUTH).json()
    assert again["source"] == "通知.txt" and again["unchanged"] is True and again["doc_id"] == first["doc_id"]
    other = client.post("/api/documents", files={"file": ("通知.txt", TEXT + b"x")}, headers=AUTH).json()
    assert other["source"] == "通知-2.txt" and other["unchanged"] is False
    third = client.post("/api/documents", files={"file": ("通知.txt", TEXT + b"x")}, headers=AUTH).json()
    assert third["source"] == "通知-2.txt" and third["unchanged"] is True  # a variant holding the bytes
    before = (corpus / "通知.txt").stat().st_mtime_ns
    same = client.post("/api/documents?replace=true", files={"file": ("通知.txt", TEXT)}, headers=AUTH).json()
    assert same["unchanged"] is True and same["replaced"] is False
    assert (corpus / "通知.txt").stat().st_mtime_ns == before  # not rewritten, so not indexed again
    assert sorted(p.name for p in corpus.glob("通知*")) == ["通知-2.txt", "通知.txt"]


def test_a_document_hidden_by_a_failed_delete_comes_back_with_its_file(app_and_engine, client: TestClient, corpus):
    _, engine = app_and_engine
    doc = next(d for d in engine.index.documents.values() if d.source == "measures.txt")
    aside = corpus.with_name("aside")
    corpus.rename(aside)  # the corpus folder is gone (unmounted, moved)
    assert client.delete(f"/api/documents/{doc.doc_id}", headers=AUTH).status_code == 202
    assert doc.doc_id in engine.hidden
    aside.rename(corpus)  # the folder, and the file, are back
    engine.wait(engine.submit("update", "folder back"), 60)
    listed = {d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
    assert doc.doc_id in listed and engine.hidden == frozenset()


def test_slow_request_headers_are_cut_off(corpus: Path, server_factory) -> None:
    import socket
    import time

    srv = server_factory(corpus, POLICYQA_HEADER_SECONDS="1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        began = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server
        assert time.monotonic() - began < 5
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
