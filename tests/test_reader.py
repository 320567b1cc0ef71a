"""查看原文: a document's whole cleaned text with its outline and passage offsets, and its original file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.snapshot import index, layout
from policyqa.snapshot.refresh import refresh

from .conftest import SEED, app_client
from .test_formats import make_pdf


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


def test_a_pdf_says_where_each_page_starts(corpus: Path, tmp_path: Path, embedder) -> None:
    (corpus / "规划.pdf").write_bytes(make_pdf(3))
    for client in app_client(corpus, tmp_path / "idx", embedder):
        docs = {d["source"]: d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
        doc = client.get(f"/api/documents/{docs['规划.pdf']}/text").json()
        assert [p["page"] for p in doc["pages"]] == [1, 2, 3]
        text, starts = doc["text"], [p["start"] for p in doc["pages"]]
        assert starts == sorted(starts) and "1亿元" in text[starts[1] : starts[2]] and "1亿元" not in text[: starts[1]]
        talent = next(p for p in doc["passages"] if "1亿元" in text[p["start"] : p["end"]])
        assert talent["page"] == 2 and starts[1] <= talent["start"] < starts[2]
        plain = client.get(f"/api/documents/{docs['measures.txt']}/text").json()
        assert plain["pages"] == []  # no pages outside PDFs


def test_a_snapshot_without_page_starts_takes_them_from_its_passages() -> None:
    from policyqa.api.routes.documents import page_starts

    passages = [{"page": 1, "start": 0}, {"page": 1, "start": 40}, {"page": 2, "start": 90}, {"page": 3, "start": 150}]
    assert page_starts({"text": "…"}, passages) == [
        {"page": 1, "start": 0},
        {"page": 2, "start": 90},
        {"page": 3, "start": 150},
    ]
    assert page_starts({"pages": [[1, 0], [2, 85]]}, passages) == [{"page": 1, "start": 0}, {"page": 2, "start": 85}]


def test_a_table_header_row_is_no_heading_of_the_outline() -> None:
    """The seed's list of clusters opens with 序号 集群名称 建设单位 备注: column labels, not a section."""
    from policyqa.ingest.chunk import chunk_document
    from policyqa.ingest.loaders import parse
    from policyqa.snapshot.steps import text_entry

    doc = parse(SEED.read_bytes(), SEED.name)
    titles = [title for _, title, _ in text_entry(doc)["outline"]]
    assert titles and not any("序号" in t for t in titles)
    header = next(b for b in doc.blocks if b.text.startswith("序号"))
    assert header.kind == "table_header"
    rows = [c for c in chunk_document(doc) if c.kind == "table_row"]
    assert rows and all("集群名称" in c.text for c in rows)  # the rows still carry the column labels
