"""The version in force first (search/current.py): a question naming no year gets the current version's
passage before its near-duplicate in a replaced version, a question naming a year gets that year's; results,
GET /api/documents and the CLI carry each document's status; current_only / --current keeps documents in force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa import cli
from policyqa.search.evaluation import read_questions

from .conftest import ROOT, app_client

MULTIDOC = ROOT / "tests" / "data" / "multidoc"
VERSIONS_QA = ROOT / "corpus" / "eval" / "versions-qa.jsonl"
N2024, N2025 = "notice-2024-青山市科技创新券.txt", "notice-2025-青山市科技创新券.txt"

# Our own pair: the 2023 guide has a section the 2024 one dropped (it still answers what only it says)
GUIDE = """绿水区{year}年度人才公寓申请指南

绿水区住房保障局

一、申请条件
在绿水区工作的全日制本科以上人才，在区内无自有住房的，可以申请人才公寓，租金为市场价的{share}。

二、申请材料
身份证、学历证书、劳动合同和社保缴纳证明。
{extra}
绿水区住房保障局
{year}年1月10日
"""
EXTRA = "\n三、外籍人才\n持有外国人工作许可证的外籍人才可凭护照申请，入住期限最长三年。\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in (N2024, N2025):
        shutil.copy(MULTIDOC / name, folder / name)
    (folder / "guide-2023.txt").write_text(GUIDE.format(year=2023, share="五折", extra=EXTRA), encoding="utf-8")
    (folder / "guide-2024.txt").write_text(GUIDE.format(year=2024, share="六折", extra=""), encoding="utf-8")
    return folder


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder)


def search(client: TestClient, q: str, **params: object) -> dict:
    response = client.get("/api/search", params={"q": q, "k": 5, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_current_version_first_unless_a_year_is_named(client: TestClient) -> None:
    """Every question of corpus/eval/versions-qa.jsonl: with no year the 2025 notice's passage is first, with a
    year that year's (the hashing embedder: the order comes from BM25, the document signals and the versions)."""
    for q in read_questions(VERSIONS_QA):
        results = search(client, q.q, k=10)["results"]
        assert results[0]["source"] == q.source, (q.q, results[0]["source"])
        meant = next(r for r in results if r["source"] == q.source and all(m in r["text"] for m in q.must))
        other = [r for r in results if r["source"] != q.source and r["section"] == meant["section"]]
        assert all(r["rank"] > meant["rank"] for r in other), q.q


def test_a_replaced_versions_passage_is_marked_and_points_at_the_current_one(client: TestClient) -> None:
    body = search(client, "青山市企业用创新券购买检验检测服务，补贴比例是多少？")
    rows = {r["source"]: r for r in body["results"] if r["section"] == "二、支持标准"}
    new, old = rows[N2025], rows[N2024]
    assert new["rank"] == 1 and old["rank"] > 1  # demoted, not dropped
    assert (new["status"], new["status_label"], new["superseded_by"]) == ("current", "现行有效", None)
    assert (old["status"], old["status_label"]) == ("superseded", "已被替代")
    assert old["superseded_by"] == old["current_version"] == new["doc_id"]
    twin = old["current_passage"]
    assert twin["doc_id"] == new["doc_id"] and twin["section"] == old["section"] == "二、支持标准"
    assert new["current_passage"] is None
    assert body["status_on"] and old["metadata"]["date"] == "2024-02-01"


def test_the_day_judged_on_decides_which_version_is_in_force(client: TestClient) -> None:
    body = search(client, "青山市企业用创新券购买检验检测服务，补贴比例是多少？", on="2024-06-01")
    first = body["results"][0]
    assert (first["source"], first["status_label"], body["status_on"]) == (N2024, "现行有效", "2024-06-01")
    assert {r["status_label"] for r in body["results"] if r["source"] == N2025} == {"尚未生效"}


def test_an_older_version_still_answers_what_only_it_says(client: TestClient) -> None:
    first = search(client, "绿水区外籍人才凭护照申请人才公寓，入住期限最长多久？")["results"][0]
    assert first["source"] == "guide-2023.txt" and "入住期限最长三年" in first["text"]
    assert first["status_label"] == "已被替代"


def test_current_only_keeps_the_documents_in_force_on_the_day(client: TestClient) -> None:
    q = "青山市创新券补贴比例"
    assert {r["source"] for r in search(client, q, k=10)["results"]} >= {N2024, N2025}
    now = {r["source"] for r in search(client, q, k=10, current_only="true")["results"]}
    assert N2025 in now and not now & {N2024, "guide-2023.txt"}
    # on 2024-06-01 the 2025 notice was not yet issued: the 2024 one was in force
    earlier = search(client, q, k=10, current_only="true", on="2024-06-01")
    assert N2024 in {r["source"] for r in earlier["results"]} and earlier["status_on"] == "2024-06-01"
    assert N2025 not in {r["source"] for r in earlier["results"]}
    posted = client.post("/api/search", json={"q": q, "k": 10, "current_only": True}).json()
    assert {r["source"] for r in posted["results"]} == now
    for bad in (client.get("/api/search", params={"q": q, "on": "2024-13-01"}), client.get("/api/documents?on=昨天")):
        assert bad.status_code == 422 and bad.json()["field"] == "on", bad.text


def test_documents_list_each_status_and_the_day_it_was_judged_on(client: TestClient) -> None:
    body = client.get("/api/documents").json()
    rows = {d["source"]: d for d in body["documents"]}
    assert rows[N2024]["status_label"] == "已被替代" and rows[N2024]["superseded_by"] == rows[N2025]["doc_id"]
    assert rows[N2025]["replaces"] == [rows[N2024]["doc_id"]] and rows[N2025]["status"] == "current"
    assert rows["guide-2023.txt"]["superseded_by"] == rows["guide-2024.txt"]["doc_id"]
    assert rows[N2025]["validity"] == {
        "effective": "",
        "expires": "",
        "repeals": [],
        "prevails": [],
        "prevails_earlier": False,
    }
    then = client.get("/api/documents", params={"on": "2024-06-01"}).json()
    assert then["status_on"] == "2024-06-01" and body["status_on"] != "2024-06-01"
    assert {d["source"]: d["status_label"] for d in then["documents"]}[N2025] == "尚未生效"


def test_the_cli_shows_the_status(client: TestClient, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POLICYQA_MODEL", "hash:64")
    index = ["--index", str(tmp_path / "idx")]
    assert cli.main(["documents", *index, "--on", "2026-01-01"]) == 0
    out = capsys.readouterr().out
    assert "已被替代 → " in out and "status judged on 2026-01-01" in out
    assert cli.main(["search", "青山市创新券补贴比例", "--current", "--json", *index]) == 0
    data = json.loads(capsys.readouterr().out)
    assert N2024 not in {r["source"] for r in data["results"]} and data["results"][0]["status"] == "current"
    assert cli.main(["search", "青山市企业用创新券购买检验检测服务补贴比例", "-k", "2", *index]) == 0
    shown = capsys.readouterr().out
    assert "已被替代" in shown and "现行版本的对应段落" in shown
