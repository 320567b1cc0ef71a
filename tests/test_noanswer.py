"""What people are told when the search is not confident: `confidence.reason` in the API, the CLI's line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa import cli
from policyqa.search.confidence import REASONS, Confidence, reason_of
from policyqa.search.ranking import SearchResult
from policyqa.search.results import payload

from .conftest import NOTICE, app_client


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    (corpus / "稳岗补贴通知2020.txt").write_text(NOTICE, encoding="utf-8")  # a year in the name: the notice of 2020
    yield from app_client(corpus, tmp_path / "idx", embedder)


def confidence(client: TestClient, **params: object) -> dict:
    body = client.get("/api/search", params={"k": 3, **params}).json()
    assert body["confident"] is (body["confidence"]["reason"] is None)
    return body["confidence"]


def test_a_confident_answer_has_no_reason(client: TestClient) -> None:
    got = confidence(client, q="新认定的高新技术企业奖励多少？")
    assert got["reason"] is None and got["reason_text"] is None


def test_a_conflicting_year_is_named(client: TestClient) -> None:
    got = confidence(client, q="2023年稳岗补贴最高多少钱？", issuer="人力资源局")  # only the 2020 notice
    assert got["conflicts"] == ["2023"]
    assert got["reason"] == "conflict" and got["reason_text"] == "问题中的“2023年”与最接近的文档不符"


def test_words_no_document_contains_are_named(client: TestClient) -> None:
    got = confidence(client, q="上海地铁票价是多少？")
    assert got["reason"] == "missing_words" and got["reason_text"] == "文档中没有出现“上海”、“地铁”、“票价”"


def test_filters_that_leave_no_document_say_so(client: TestClient) -> None:
    body = client.post("/api/search", json={"q": "稳岗补贴", "after": "2030-01-01", "group": True}).json()
    assert body["results"] == [] and body["confidence"]["reason"] == "filtered"
    assert "放宽筛选条件" in body["confidence"]["reason_text"]


def test_the_schema_lists_the_reasons(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    reason = schemas["ConfidenceOut"]["properties"]["reason"]
    codes = {c for option in reason["anyOf"] for c in option.get("enum", [])}
    assert (
        codes
        == set(REASONS)
        == {
            "conflict",
            "not_covered",
            "off_topic",
            "missing_words",
            "no_figure",
            "no_match",
            "filtered",
            "no_results",
        }
    )


def test_reason_of_prefers_a_conflict_then_missing_words() -> None:
    both = Confidence(False, 0.1, 0.5, ("北京", "明天", "下雨"), ("北京",))
    said = "问题中的“北京”与最接近的文档不符，文档中也没有出现“明天”、“下雨”"
    assert (both.reason, both.reason_text) == reason_of(both) == ("conflict", said)
    only = Confidence(False, 0.6, 1.4, ("苏州工业园区",), ("苏州",))
    assert only.reason_text == "问题中的“苏州”与最接近的文档不符"
    cooking = Confidence(False, 0.0, 2.6, ("红烧肉", "做", "才", "好吃"))
    assert (cooking.reason, cooking.reason_text) == ("missing_words", "文档中没有出现“红烧肉”、“好吃”")
    assert Confidence(False, 0.3, 0.5, ("钱",)).reason_text == "文档中没有出现“钱”"
    weak = Confidence(False, 0.1, 0.5, ())
    assert (weak.reason, weak.reason_text) == ("no_match", REASONS["no_match"])
    assert Confidence(True, 0.9, 3.0, ("红烧肉",)).reason is None
    # a decision may name its own reason; the sentence defaults to the code's
    assert Confidence(False, 0.0, 0.0, (), reason="no_match").reason_text == REASONS["no_match"]


def test_an_empty_index_says_there_are_no_results() -> None:
    got = payload(SearchResult("问题", (), 0.0), None)
    assert got["confident"] is False and got["results"] == []
    assert got["confidence"]["reason"] == "no_results" and got["confidence"]["reason_text"] == REASONS["no_results"]


def test_the_cli_says_it_before_the_passages_and_marks_no_answer(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYQA_MODEL", "hash:64")
    index = ["--index", str(tmp_path / "idx")]
    assert cli.main(["search", "上海地铁票价是多少？", "-k", "2", *index]) == 0
    out = capsys.readouterr().out
    assert out.startswith("未找到可靠答案：文档中没有出现“上海”、“地铁”、“票价”\n")
    assert "1. [" in out and "答:" not in out
    assert cli.main(["search", "上海地铁票价是多少？", "-k", "2", "--group", *index]) == 0
    assert capsys.readouterr().out.startswith("未找到可靠答案：")

    assert cli.main(["search", "新认定的高新技术企业奖励多少？", "-k", "2", *index]) == 0
    out = capsys.readouterr().out
    assert "未找到可靠答案" not in out and "   答: " in out and "20万元" in out

    question = ["2023年稳岗补贴最高多少钱？", "--issuer", "人力资源局"]
    assert cli.main(["search", *question, "-k", "2", "--json", *index]) == 0
    api = client.get("/api/search", params={"q": question[0], "issuer": question[2], "k": 2}).json()
    assert json.loads(capsys.readouterr().out)["confidence"] == api["confidence"]
    assert api["confidence"]["reason"] == "conflict"


def test_the_model_reads_laws_figures_and_its_own_encoder() -> None:
    from types import SimpleNamespace

    from policyqa.embed import HashEmbedder
    from policyqa.search.noanswer import asked_units, default_model, named_absent, offtopic_questions

    heads = ["中华人民共和国著作权法 著作权法 第一条", "广州市长期护理保险试行办法"]
    docs = {str(i): SimpleNamespace(text=SimpleNamespace(head=h)) for i, h in enumerate(heads)}
    index = SimpleNamespace(identities=SimpleNamespace(docs=docs))
    assert named_absent("发明专利权受《专利法》保护多少年？", index) == ["专利法"]  # type: ignore[arg-type]
    assert named_absent("《著作权法》保护哪些作品？", index) == []  # type: ignore[arg-type]
    assert named_absent("有什么办法可以少交税？", index) == []  # type: ignore[arg-type]  # 办法 as "a way", not a regulation
    money = asked_units("补贴多少钱？")
    assert money is not None and money.search("每人补贴500元") and not money.search("按规定给予补贴")
    assert asked_units("什么是职务作品？") is None
    model = default_model()
    assert model.encoder == "multilingual-e5-small" and len(model.features) == len(model.weights)
    assert not model.applies_to(HashEmbedder())  # its cosines are the bundled encoder's, not any other's
    assert len(offtopic_questions()) >= 100
