import json
from pathlib import Path

import pytest

from policyqa.errors import PolicyQAError
from policyqa.ingest.segment import normalize_query
from policyqa.models import Chunk, Hit
from policyqa.search.confidence import Confidence
from policyqa.search.evaluation import Question, evaluate, read_questions, relevant
from policyqa.search.ranking import SearchResult


def chunk(text: str, source: str = "a.txt") -> Chunk:
    return Chunk(text[:8], "d", source, "t", "", text, 0, len(text))


CHUNKS = [
    chunk("国家级创新型产业集群2个。"),
    chunk("高淳园成立10亿元规模产业引导基金"),
    chunk("其他内容"),
    chunk("国家级创新型产业集群 2 个", "b.txt"),
]


def fake(order: dict[str, list[int]]):
    def run(q: str) -> SearchResult:
        return SearchResult(q, tuple(Hit(CHUNKS[i], 1.0 / (r + 1), r + 1) for r, i in enumerate(order.get(q, []))), 0.0)

    return run


def test_relevance_ignores_width_and_space_and_checks_source() -> None:
    q = Question("q", ("国家级创新型产业集群2个",), "a.txt")
    assert relevant(CHUNKS[0], q)
    assert not relevant(CHUNKS[3], q)  # right words, other file
    assert relevant(CHUNKS[3], Question("q", ("国家级创新型产业集群２个",)))


def test_metrics() -> None:
    qs = [Question("a", ("2个",), "a.txt"), Question("b", ("10亿元",)), Question("none", ())]
    report = evaluate("x", qs, fake({"a": [2, 0, 1], "b": [1, 2, 0]}), CHUNKS)
    assert report.questions == 2
    assert report.hit1 == 0.5 and report.hit3 == 1.0
    assert report.mrr10 == pytest.approx((1 / 2 + 1) / 2)
    assert [m["q"] for m in report.misses] == ["a"]


def test_read_questions(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"q": "问", "must": ["答"]}, ensure_ascii=False) + "\n\n" + '{"q": "无", "must": []}\n')
    qs = read_questions(path)
    assert [q.answerable for q in qs] == [True, False]
    path.write_text("{bad json\n")
    with pytest.raises(PolicyQAError, match=r"qa\.jsonl:1"):
        read_questions(path)


def test_shipped_eval_set_is_broad() -> None:
    qs = read_questions(Path(__file__).resolve().parents[1] / "corpus" / "eval" / "seed-qa.jsonl")
    assert len(qs) >= 60
    assert sum(not q.answerable for q in qs) >= 8
    assert any(q.q.isascii() for q in qs)


def test_traditional_and_full_width_questions_are_normalised() -> None:
    assert normalize_query("  南京有幾個國家級創新型產業集群？ ") == "南京有几个国家级创新型产业集群?"


def test_flag_precision_and_recall() -> None:
    flagged = {"a": False, "b": True, "none": True, "none2": False}

    def run(q: str) -> SearchResult:
        hits = tuple(Hit(CHUNKS[i], 1.0, r + 1) for r, i in enumerate([0, 1]))
        return SearchResult(q, hits, 0.0, Confidence(not flagged[q], 0.0, 0.0, ()))

    qs = [Question("a", ("2个",)), Question("b", ("10亿元",)), Question("none", ()), Question("none2", ())]
    report = evaluate("x", qs, run, CHUNKS)
    assert report.unanswerable == 2
    assert report.flag_precision == 0.5 and report.flag_recall == 0.5
    assert report.wrong_flags == ("b",) and report.missed_flags == ("none2",)
