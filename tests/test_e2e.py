"""End to end with the real default model, through the HTTP app, on the seed corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.api import create_app
from policyqa.config import Settings
from policyqa.engine import Engine

from .conftest import SEED

pytestmark = pytest.mark.model

QUESTIONS = [
    ("南京有几个国家级创新型产业集群？", "国家级创新型产业集群2个"),
    ("高淳园的产业引导基金规模多大？", "10亿元规模产业引导基金"),
    ("鼓楼园建设的是什么产业集群？", "双碳经济创新型产业集群"),
    ("江苏省车联网先导区是由哪家公司建设的？", "阿波罗智行信息科技"),
    ("南京市一共有多少个创新型产业集群？", "共有创新型产业集群15个"),
    ("江北新区生物医药集群建了多少个共性技术平台？", "共性技术平台14个"),
    ("江宁智能电网掌握了全国多大比例的继电保护技术标准？", "90%以上技术标准"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("e2e")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    settings = Settings.from_env({}, corpus_dir=corpus, index_dir=root / "index")
    app = create_app(settings)
    with TestClient(app) as c:
        import time

        deadline = time.monotonic() + 600
        while c.get("/api/health").status_code != 200:
            assert time.monotonic() < deadline, c.get("/api/health").json()
            time.sleep(0.5)
        yield c


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_answer_in_top_three(client: TestClient, question: str, expected: str) -> None:
    results = client.get("/api/search", params={"q": question, "k": 3}).json()["results"]
    texts = [r["text"] for r in results]
    assert any(expected in t for t in texts), texts
    for r in results:
        assert r["source"] == SEED.name and r["doc_id"] and r["title"]


def test_health_reports_the_default_model(client: TestClient) -> None:
    body = client.get("/api/health").json()
    assert body["model"] == "multilingual-e5-small:onnx-int8" and body["chunks"] > 30


def test_engine_is_reusable_from_the_cli_path(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    engine = Engine.open(corpus, tmp_path / "i", "multilingual-e5-small", None)
    engine.ensure()
    top = engine.search("高淳园的产业引导基金规模多大？", 1).hits[0]
    assert "10亿元" in top.chunk.text[top.answer_start : top.answer_end]


@pytest.mark.parametrize(
    ("question", "confident"),
    [
        ("南京有几个国家级创新型产业集群？", True),
        ("高淳园的产业引导基金规模多大？", True),
        ("苏州工业园区有几个国家级产业集群？", False),
        ("深圳对半导体企业的补贴标准是多少？", False),
        ("a", False),
        ("?", False),
        ("今天南京的天气怎么样？", False),  # chit-chat that names the corpus's city
        ("红烧肉怎么做才好吃？", False),
        ("明天股市会涨吗？", False),
    ],
)
def test_confidence_flag(client: TestClient, question: str, confident: bool) -> None:
    body = client.get("/api/search", params={"q": question, "k": 3}).json()
    assert body["confident"] is confident, body["confidence"]
    if "天气" in question or "股市" in question:
        assert body["confidence"]["reason"] == "off_topic" and body["confidence"]["probability"] > 0.5
    assert body["results"], "the nearest passages are returned either way"
