"""Search filters (document, folder, issuing body, date range), grouping by document, metadata on results."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa import cli
from policyqa.errors import FilterError
from policyqa.search.filters import make

from .conftest import NOTICE as A
from .conftest import app_client

B = """乙市财政局关于稳岗补贴资金管理的通知

乙财发〔2023〕8号

一、资金来源
稳岗补贴资金由市财政安排。补贴标准为每家企业5万元。

乙市财政局
2023年6月1日
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "甲市").mkdir(parents=True)
    (corpus / "乙市").mkdir()
    (corpus / "甲市" / "a.txt").write_text(A, encoding="utf-8")
    (corpus / "乙市" / "b.txt").write_text(B, encoding="utf-8")
    return corpus


@pytest.fixture
def client(policies: Path, tmp_path: Path, embedder, store):
    yield from app_client(policies, tmp_path / "idx", embedder, store)


def sources(body: dict) -> set[str]:
    return {r["source"] for r in body["results"]}


def test_results_carry_their_documents_metadata(client: TestClient) -> None:
    first = client.get("/api/search", params={"q": "稳岗补贴", "k": 3}).json()["results"][0]
    assert first["metadata"]["issuer"] in ("甲市人力资源局", "乙市财政局")
    assert first["metadata"]["doc_number"] and first["metadata"]["date"]
    docs = client.get("/api/documents").json()["documents"]
    assert {d["metadata"]["doc_number"] for d in docs} == {"甲人社发〔2020〕3号", "乙财发〔2023〕8号"}


def test_each_filter_narrows_the_candidates(client: TestClient) -> None:
    q = {"q": "稳岗补贴", "k": 10}
    assert sources(client.get("/api/search", params=q).json()) == {"甲市/a.txt", "乙市/b.txt"}
    assert sources(client.get("/api/search", params={**q, "folder": "乙市"}).json()) == {"乙市/b.txt"}
    assert sources(client.get("/api/search", params={**q, "issuer": "人力资源"}).json()) == {"甲市/a.txt"}
    assert sources(client.get("/api/search", params={**q, "after": "2021-01-01"}).json()) == {"乙市/b.txt"}
    assert sources(client.get("/api/search", params={**q, "before": "2020年12月31日"}).json()) == {"甲市/a.txt"}
    docs = {d["source"]: d["doc_id"] for d in client.get("/api/documents").json()["documents"]}
    only_a = client.get("/api/search", params={**q, "doc_id": [docs["甲市/a.txt"]]}).json()
    assert sources(only_a) == {"甲市/a.txt"}
    both = client.post("/api/search", json={**q, "doc_id": list(docs.values())}).json()
    assert sources(both) == {"甲市/a.txt", "乙市/b.txt"}
    none = client.get("/api/search", params={**q, "after": "2030-01-01"}).json()
    assert none["results"] == [] and none["confident"] is False
    assert none["confidence"]["missing"] == []  # both words are in the corpus: the filter admits no document


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"doc_id": "xyz"}, "doc_id"),
        ({"doc_id": "0123456789ab"}, "doc_id"),  # well formed, but no such document
        ({"after": "2020-13-01"}, "after"),
        ({"before": "昨天"}, "before"),
        ({"after": "2024-01-02", "before": "2024-01-01"}, "after"),
        ({"folder": "../etc"}, "folder"),
        ({"issuer": "局" * 101}, "issuer"),
    ],
)
def test_bad_filter_values_are_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    for resp in (
        client.get("/api/search", params={"q": "补贴", **params}),
        client.post(
            "/api/search",
            json={"q": "补贴", **params, **({"doc_id": [params["doc_id"]]} if "doc_id" in params else {})},
        ),
    ):
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["field"] == field and body["rule"] and body["error"]


def test_grouping_gives_each_document_once_with_more_under_it(client: TestClient) -> None:
    got = client.get("/api/search", params={"q": "稳岗补贴", "k": 2, "group": "true"}).json()
    assert got["grouped"] is True
    assert len(got["results"]) == 2 and len({r["doc_id"] for r in got["results"]}) == 2
    assert [r["rank"] for r in got["results"]] == [1, 2]
    for row in got["results"]:
        assert all(m["doc_id"] == row["doc_id"] for m in row["more"])
    assert any(row["more"] for row in got["results"])


def test_make_reads_dates_and_folders() -> None:
    f = make(["ABCDEF012345"], "/甲市/", " 局 ", "2020-2-3", "20201231")
    assert f.doc_ids == frozenset({"abcdef012345"}) and f.folder == "甲市" and f.issuer == "局"
    assert (f.after, f.before) == ("2020-02-03", "2020-12-31")
    assert not make() and make(folder="x")
    with pytest.raises(FilterError) as err:
        make(after="2020-02-30")
    assert err.value.field == "after"


def test_cli_search_filters_and_groups(policies: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POLICYQA_MODEL", "hash:64")
    index = tmp_path / "cli-idx"
    assert cli.main(["build", "--corpus", str(policies), "--index", str(index)]) == 0
    capsys.readouterr()
    assert cli.main(["search", "稳岗补贴", "--index", str(index), "--issuer", "财政局", "--group"]) == 0
    out = capsys.readouterr().out
    assert "乙市/b.txt" in out and "甲市/a.txt" not in out and "乙财发〔2023〕8号" in out
    assert cli.main(["search", "稳岗补贴", "--index", str(index), "--after", "明天"]) == 1
    assert "after" in capsys.readouterr().err
    assert cli.main(["documents", "--index", str(index)]) == 0
    assert "甲人社发〔2020〕3号" in capsys.readouterr().out
