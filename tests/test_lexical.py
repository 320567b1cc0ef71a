from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from policyqa.store.faiss import ArrayLexical, Owners
from policyqa.store.lexical import BM25, Collection, best


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


# --- today's exhaustive scoring, kept here as the reference the faster code must match bit for bit ----------

PASSAGES = [
    ["南京", "高新", "高新区", "产业", "集群", "创新", "创新型", "产业", "集群"],
    ["产业", "基金", "规模", "亿元", "高淳", "高淳园"],
    ["企业", "研发", "投入", "补助", "企业", "企业"],
    [],
    ["人才", "公寓", "住房", "保障", "人才", "南京"],
    ["产业", "集群", "集群", "南京", "江宁", "江宁园", "生物", "医药"],
]
SENTENCES = [["南京", "高新区"], ["产业", "集群", "创新型"], ["产业", "基金"], ["企业", "研发"], ["人才", "公寓"]]
OWNER = np.array([0, 0, 1, 2, 4], np.int64)  # passage 3 and 5 have no sentence of their own
QUESTIONS = [["南京", "产业", "集群"], ["企业", "研发", "企业"], ["基金", "无关"], ["人才", "住房", "南京", "江宁园"]]


def reference_build(docs: list[list[str]]) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    postings: dict[str, list[tuple[int, int]]] = {}
    for n, words in enumerate(docs):
        for word, tf in Counter(words).items():
            postings.setdefault(word, []).append((n, tf))
    terms = {t: i for i, t in enumerate(sorted(postings))}
    indptr = np.zeros(len(terms) + 1, np.int64)
    indices, tfs = [], []
    for t in sorted(postings):
        for n, tf in postings[t]:
            indices.append(n)
            tfs.append(tf)
        indptr[terms[t] + 1] = len(indices)
    return terms, indptr, np.array(indices, np.int32), np.array(tfs, np.float32)


def reference_scores(bm: BM25, words: list[str]) -> np.ndarray:
    out = np.zeros(bm.size, np.float32)
    avgdl = float(bm.doc_len.mean()) or 1.0
    for word in dict.fromkeys(words):
        t = bm.terms.get(word)
        if t is None:
            continue
        lo, hi = bm.indptr[t], bm.indptr[t + 1]
        docs, tf = bm.indices[lo:hi], bm.tfs[lo:hi]
        norm = tf + bm.k1 * (1 - bm.b + bm.b * bm.doc_len[docs] / avgdl)
        out[docs] += bm.idf(word) * tf * (bm.k1 + 1) / norm
    return out


def reference_blended(passages: BM25, sentences: BM25, words: list[str], sentence: float) -> np.ndarray:
    own = reference_scores(passages, words)
    best_sentence = np.zeros_like(own)
    np.maximum.at(best_sentence, OWNER, reference_scores(sentences, words))
    out: np.ndarray = (1 - sentence) * own + sentence * best_sentence
    return out


def test_the_numpy_build_writes_the_same_arrays() -> None:
    bm = BM25.build(PASSAGES)
    terms, indptr, indices, tfs = reference_build(PASSAGES)
    assert bm.terms == terms
    for mine, theirs in ((bm.indptr, indptr), (bm.indices, indices), (bm.tfs, tfs)):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
    assert BM25.build([]).size == 0 and BM25.build([[], []]).top(["南京"], 3) == []


def test_scores_and_top_k_are_identical_to_exhaustive_scoring() -> None:
    passages, sentences = BM25.build(PASSAGES), BM25.build(SENTENCES)
    lexical = ArrayLexical(passages, sentences, OWNER, Owners([f"d{i}" for i in range(len(PASSAGES))]))
    for words in QUESTIONS:
        assert np.array_equal(passages.scores(words), reference_scores(passages, words))  # bit for bit
        expected = reference_blended(passages, sentences, words, 0.6)
        assert np.array_equal(lexical.blended(words, 0.6), expected)
        for depth in (1, 2, 3, 10):
            assert lexical.top(words, depth, 0.6) == dict(best(expected, depth))
        assert lexical.scores(words, [0, 3, 5], 0.6) == {i: float(expected[i]) for i in (0, 3, 5)}


def test_collection_statistics_score_a_segment_as_part_of_the_whole() -> None:
    whole = BM25.build(PASSAGES)
    first, second = BM25.build(PASSAGES[:3]), BM25.build(PASSAGES[3:])
    stats = Collection.of([first, second])
    assert stats.size == 6 and stats.df["产业"] == 3 and stats.avgdl == pytest.approx(float(whole.doc_len.mean()))
    for words in QUESTIONS:
        joined = np.concatenate([first.scores(words, stats), second.scores(words, stats)])
        assert np.allclose(joined, whole.scores(words), rtol=1e-6)
        assert [i for i, _ in best(joined, 3)] == [i for i, _ in whole.top(words, 3)]
    assert first.idf("江宁", stats) == pytest.approx(whole.idf("江宁"))  # a word only the other segment holds
    assert first.idf("江宁") == 0.0
    assert np.array_equal(first.scores(["南京"], None), reference_scores(first, ["南京"]))


def test_ties_at_the_cut_go_to_the_first_positions() -> None:
    scores = np.array([1.0, 3.0, 2.0, 2.0, 0.0, 2.0, 2.0, 2.0], np.float32)
    assert best(scores, 3) == [(1, 3.0), (2, 2.0), (3, 2.0)]
    assert best(scores, 0) == [] and best(scores, 20)[-1] == (0, 1.0)
