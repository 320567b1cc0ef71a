from pathlib import Path

from policyqa.lexical import BM25


def test_bm25_ranks_the_rarer_match_first(tmp_path: Path) -> None:
    docs = [["南京", "产业", "集群"], ["产业", "基金"], ["产业", "集群", "集群"], []]
    bm = BM25.build(docs)
    top = bm.top(["集群"], 10)
    assert [i for i, _ in top] == [2, 0]
    assert bm.top(["基金"], 10)[0][0] == 1
    assert bm.top(["无关"], 10) == []
    assert bm.idf("基金") > bm.idf("产业")
    bm.save(tmp_path)
    again = BM25.load(tmp_path)
    assert again.top(["集群"], 10) == top
