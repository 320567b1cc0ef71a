from pathlib import Path

import numpy as np
import pytest

from policyqa.errors import QueryError
from policyqa.search.ranking import _answer, clean_query, rrf, search
from policyqa.snapshot import index
from policyqa.snapshot.refresh import refresh
from policyqa.store.faiss import ArrayLexical, FaissVectors


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


def test_search_returns_cited_passages(corpus: Path, tmp_path: Path, embedder, store) -> None:
    refresh(corpus, tmp_path / "idx", embedder, store=store)
    ix = index.load(tmp_path / "idx", embedder, store)
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


def test_confidence_flags_questions_the_corpus_cannot_answer(corpus: Path, tmp_path: Path, embedder, store) -> None:
    refresh(corpus, tmp_path / "idx", embedder, store=store)
    ix = index.load(tmp_path / "idx", embedder, store)
    sure = search(ix, embedder, "新认定的高新技术企业奖励多少？", k=3).confidence
    assert sure is not None and sure.confident and sure.coverage == 1.0 and sure.missing == ()
    unsure = search(ix, embedder, "上海地铁票价是多少？", k=3).confidence
    assert unsure is not None and not unsure.confident
    assert unsure.coverage == 0.0 and set(unsure.missing) == {"上海", "地铁", "票价"}


def test_dense_leg_blends_passage_and_best_sentence(corpus: Path, tmp_path: Path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    store = ix.vectors
    assert isinstance(store, FaissVectors)
    ptr, vectors, sentences = store.ptr, store.vectors, store.sentences
    assert len(ptr) == len(ix.chunks) + 1 and int(ptr[-1]) == len(sentences)
    q = embedder.encode_queries(["引进领军人才"])[0]
    many = next(i for i in range(len(ix.chunks)) if ptr[i + 1] - ptr[i] >= 2)
    lo, hi = int(ptr[many]), int(ptr[many + 1])
    expected = (float(vectors[many] @ q) + float(np.max(sentences[lo:hi] @ q))) / 2
    assert store.scores(q, [many], 0.5)[many] == pytest.approx(expected)
    rows = [i for i, c in enumerate(ix.chunks) if c.kind == "table_row" or ptr[i + 1] == ptr[i]]
    for i in rows:
        assert store.scores(q, [i], 0.5)[i] == pytest.approx(float(vectors[i] @ q))


def test_answer_sentence_ties_go_to_the_closest_sentence() -> None:
    text = "第一句话没有关键词内容。第二句话同样没有关键词。"
    spans = [(0, 12), (12, 24)]
    assert _answer(text, [], {}, spans, [0.1, 0.9]) == (12, 24)
    assert _answer(text, [], {}, spans, [0.9, 0.1]) == (0, 12)
    assert _answer(text, ["同样"], {"同样": 1.0}, spans, [0.9, 0.1]) == (12, 24)


def test_the_heading_lines_opening_a_passage_are_never_the_answer() -> None:
    text = "一、资金支持\n对新认定的企业给予奖励。"
    assert _answer(text, ["资金支持"], {"资金支持": 1.0}, [], [], body_start=7) == (7, len(text))


def test_lexical_leg_blends_passage_and_best_sentence(corpus: Path, tmp_path: Path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    store = ix.lexical
    assert isinstance(store, ArrayLexical)
    words = ix.segmenter.query_words("引进领军人才")
    own = store.passages.scores(words)
    per_sentence = store.sentences.scores(words)
    blended = store.scores(words, range(len(ix.chunks)), 0.5)
    for i in range(len(ix.chunks)):
        best = max((float(s) for s, o in zip(per_sentence, store.sentence_owner, strict=True) if o == i), default=0.0)
        assert blended[i] == pytest.approx((own[i] + best) / 2)
    top = store.top(words, 1, 0.5)
    assert list(top) == [next(i for i, c in enumerate(ix.chunks) if "领军人才" in c.text)]


def test_a_lone_letter_or_sign_is_never_a_confident_question() -> None:
    """Questions without Chinese are judged by the first passage's cosine and contrast alone; a lone letter
    is close to any short passage, and in a corpus of English snippets it passed both."""
    from types import SimpleNamespace

    from policyqa.embed import HashEmbedder
    from policyqa.models import Chunk, Hit
    from policyqa.search.confidence import assess
    from policyqa.search.noanswer import Evidence

    background = np.zeros((4, 2), np.float32)
    background[:, 0] = [0.0, 0.1, 0.2, 0.3]
    index = SimpleNamespace(
        vectors=SimpleNamespace(background=lambda: background),
        lexical=SimpleNamespace(known=lambda w: True),
        segmenter=SimpleNamespace(pieces=lambda w: [], rarity=lambda w: 1.0),
    )
    chunk = Chunk("d#0", "d.txt", "d", "", "", "A fund of 1 billion yuan.", 0, 25, "text", 0)
    top = Hit(chunk, 1.0, 1, 0.9, None)
    qvec = np.array([1.0, 0.0], np.float32)

    def evidence(question: str, words: list[str]) -> Evidence:
        return Evidence(question, tuple(words), qvec, {0: 0.9}, {}, top, 0.0, ())

    embedder = HashEmbedder()
    assert assess(index, embedder, evidence("How large is the fund?", ["how", "large", "fund"])).confident  # type: ignore[arg-type]
    for lone in ("a", "?", "1"):
        assert not assess(index, embedder, evidence(lone, [lone])).confident  # type: ignore[arg-type]
