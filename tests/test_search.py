from pathlib import Path

import pytest

from policyqa import index
from policyqa.errors import QueryError
from policyqa.search import clean_query, rrf, search


def test_rrf_rewards_agreement() -> None:
    fused = rrf([1, 2, 3], [3, 1, 4])
    order = sorted(fused, key=lambda i: -fused[i])
    assert order[0] == 1 and order[1] == 3 and set(order) == {1, 2, 3, 4}


def test_clean_query_rejects_empty_and_long() -> None:
    assert clean_query("  问题\x00 ") == "问题"
    with pytest.raises(QueryError):
        clean_query(" \u200b ")
    with pytest.raises(QueryError):
        clean_query("长" * 501)


def test_search_returns_cited_passages(corpus: Path, tmp_path: Path, embedder) -> None:
    index.build(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    result = search(ix, embedder, "新认定的高新技术企业有一次性奖励吗？", k=3)
    top = result.hits[0]
    assert "20万元" in top.chunk.text
    assert top.chunk.source == "measures.txt"
    assert top.chunk.section == "二、主要措施 › （一）加大资金支持"
    answer = top.chunk.text[top.answer_start : top.answer_end]
    assert "20万元" in answer
    assert "高新技术" in top.matched_terms
    assert [h.rank for h in result.hits] == [1, 2, 3]
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
