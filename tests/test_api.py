import contextlib
import io
import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from policyqa.cli import main

from .conftest import app_client


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder)


def test_health_and_search_get_post(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    got = client.get("/api/search", params={"q": "人才公寓", "k": 2}).json()
    assert len(got["results"]) == 2
    first = got["results"][0]
    for key in ("text", "score", "doc_id", "source", "section", "start", "end", "answer_start", "answer_end"):
        assert key in first
    assert "人才公寓" in first["text"]
    assert got["confident"] is True and got["confidence"]["missing"] == []
    unsure = client.get("/api/search", params={"q": "上海地铁票价", "k": 2}).json()
    assert unsure["confident"] is False and "上海" in unsure["confidence"]["missing"]
    posted = client.post("/api/search", json={"q": "人才公寓", "k": 2}).json()
    assert [r["chunk_id"] for r in posted["results"]] == [r["chunk_id"] for r in got["results"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({}, "q"),
        ({"q": "问", "k": 0}, "k"),
        ({"q": "问", "k": 51}, "k"),
        ({"q": "问", "k": "x"}, "k"),
        ({"q": "长" * 501}, "q"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    resp = client.get("/api/search", params=params)
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == field and body["error"]


def test_bad_post_bodies(client: TestClient) -> None:
    assert client.post("/api/search", json={"k": 3}).status_code == 422
    assert (
        client.post("/api/search", content=b"{not json", headers={"content-type": "application/json"}).status_code
        == 422
    )


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"q": ', {"content-type": "application/json"}),
        (b"{not json", {"content-type": "application/json"}),
        (b"\xff\xfe{", {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
        (b'["q"]', {"content-type": "application/json"}),
        ('{"q": "人才公寓"}'.encode(), {"content-type": "text/plain"}),
    ],
)
def test_a_body_that_is_not_a_json_object_says_what_to_send(client: TestClient, body: bytes, headers: dict) -> None:
    resp = client.post("/api/search", content=body, headers=headers)
    assert resp.status_code == 422
    got = resp.json()
    assert "field" not in got  # a character offset, or "body", is not a field the client could correct
    assert got["error"].startswith("the request body is not") and "Content-Type: application/json" in got["error"]
    assert got["message"].startswith("请求内容不是有效的 JSON 对象") and '{"q": ' in got["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/search", "GET, POST"),
        ("GET", "/api/index/rebuild", "POST"),
        ("PATCH", "/api/documents", "GET, POST"),
        ("POST", "/api/documents/0123456789ab", "DELETE"),
        ("DELETE", "/api/documents/0123456789ab/text", "GET"),
        ("OPTIONS", "/api/health", "GET"),
        ("PUT", "/", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_405_naming_the_allowed_ones(client: TestClient, method: str, path: str, allow: str) -> None:
    resp = client.request(method, path)
    assert resp.status_code == 405
    assert resp.headers["allow"] == allow
    body = resp.json()
    assert f"allowed methods: {allow}" in body["error"] and f"可用的请求方式：{allow}" in body["message"]


def test_an_unknown_path_is_still_404(client: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        resp = client.request(method, "/api/nothing")
        assert resp.status_code == 404 and "allow" not in resp.headers
        assert resp.json()["error"].startswith("no endpoint /api/nothing")


def test_page_and_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "政策问答" in page.text
    assert client.get("/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    icon = client.get("/favicon.ico")  # browsers ask for it of every page
    assert icon.status_code == 200 and icon.content.startswith(b"\x00\x00\x01\x00")  # an ICO file


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_nothing_from_outside_the_service(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//", page.text)  # no other origin, not even a protocol-relative one
    assets = re.findall(r'(?:src|href|spec-url|data-openapi)="([^"]+)"', page.text)
    assert len(assets) >= 3 and "/openapi.json" in assets
    for asset in assets:
        resp = client.get(asset)
        assert resp.status_code == 200 and resp.content, asset
        if asset.endswith("-init.js"):
            assert "http" not in resp.text  # our start-up script: no validator or other outside URL
    policy = page.headers["content-security-policy"]
    assert "http" not in policy and "jsdelivr" not in policy and "'unsafe-inline'" not in policy.split("style-src")[0]


def test_real_server_process(corpus: Path, server_factory) -> None:
    srv = server_factory(corpus)
    resp = httpx.get(srv.url + "/api/search", params={"q": "数据中心电能利用效率", "k": 1}, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["results"][0]["source"] == "sub/datacenter.md"
    assert httpx.get(srv.url + "/api/search", params={"q": ""}, timeout=10).status_code == 422


def test_documents_json_of_the_api_and_the_cli_agree(client: TestClient, tmp_path: Path) -> None:
    listed = client.get("/api/documents").json()
    assert [d["source"] for d in listed["documents"]] == ["measures.txt", "sub/datacenter.md"]
    assert client.get("/api/health").json()["store"] == "faiss"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["documents", "--json", "--index", str(tmp_path / "idx")]) == 0
    assert json.loads(out.getvalue()) == listed


def test_openapi_names_the_response_models(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("Health", "SearchResponse", "Documents", "DocumentText", "Job", "IndexStatus", "Uploaded"):
        assert name in schemas
