"""查看原文: a document's whole cleaned text with its outline and passage offsets, and its original file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.snapshot import index, layout
from policyqa.snapshot.refresh import refresh

from .conftest import app_client


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder, admin_token="t")


def test_the_text_holds_every_passage_at_its_offsets_with_an_outline(client: TestClient) -> None:
    hit = client.get("/api/search", params={"q": "人才公寓", "k": 1}).json()["results"][0]
    doc = client.get(f"/api/documents/{hit['doc_id']}/text").json()
    assert doc["source"] == "measures.txt" and doc["title"] == "关于支持科技企业发展的若干措施"
    text = doc["text"]
    answer = hit["text"][hit["answer_start"] : hit["answer_end"]]
    assert answer in text[hit["start"] : hit["end"]]
    assert any(p["start"] == hit["start"] and p["end"] == hit["end"] for p in doc["passages"])
    titles = [(o["depth"], o["title"]) for o in doc["outline"]]
    assert (1, "二、主要措施") in titles and (2, "（二）优化人才服务") in titles
    for o in doc["outline"]:
        assert text[o["start"] :].startswith(o["title"])
    assert doc["metadata"]["title"] == doc["title"]


def test_the_original_is_downloaded_as_an_attachment(client: TestClient, corpus: Path) -> None:
    docs = {d["source"]: d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
    resp = client.get(f"/api/documents/{docs['sub/datacenter.md']}/original")
    assert resp.status_code == 200
    assert resp.content == (corpus / "sub" / "datacenter.md").read_bytes()
    assert resp.headers["content-disposition"].startswith("attachment")
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_unknown_removed_and_malformed_ids(client: TestClient, corpus: Path) -> None:
    assert client.get("/api/documents/0123456789ab/text").status_code == 404
    assert client.get("/api/documents/0123456789ab/original").json()["error"]
    assert client.get("/api/documents/NOTANID/text").status_code == 422
    doc_id = {d["source"]: d["doc_id"] for d in client.get("/api/documents").json()["documents"]}["measures.txt"]
    assert client.delete(f"/api/documents/{doc_id}", headers={"Authorization": "Bearer t"}).status_code == 202
    assert client.get(f"/api/documents/{doc_id}/text").status_code == 404  # hidden at once


def test_an_index_without_texts_gains_them_on_its_next_update(corpus: Path, tmp_path: Path, embedder) -> None:
    folder = tmp_path / "idx"
    refresh(corpus, folder, embedder)
    snap = layout.current_snapshot(folder)
    assert snap is not None
    meta = json.loads((snap / "meta.json").read_text(encoding="utf-8"))
    for name in ("texts.jsonl", "texts.offsets.json"):  # as a snapshot written before texts were kept
        (snap / name).unlink()
        del meta["files"][name]
    (snap / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    report = refresh(corpus, folder, embedder)
    assert report.changed and report.embedded == 0
    ix = index.read(folder)
    assert all(ix.text(d.doc_id) for d in ix.documents.values())


def test_a_document_that_fails_to_parse_keeps_its_text(corpus: Path, tmp_path: Path, embedder) -> None:
    folder = tmp_path / "idx"
    refresh(corpus, folder, embedder)
    (corpus / "sub" / "datacenter.md").write_bytes(b"\x00\x01binary garbage\xff" * 50)
    refresh(corpus, folder, embedder)  # the file fails; its indexed passages and text stay
    ix = index.read(folder)
    kept = next(d for d in ix.documents.values() if d.source == "sub/datacenter.md")
    entry = ix.text(kept.doc_id)
    assert entry is not None and "电能利用效率" in entry["text"]
