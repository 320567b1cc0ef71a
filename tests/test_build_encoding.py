"""A build encodes each distinct text once: repeated passages and sentences across documents, and within one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from policyqa.embed import HashEmbedder
from policyqa.ingest.chunk import ChunkSettings, chunk_document, sentence_texts
from policyqa.ingest.loaders import parse
from policyqa.snapshot.refresh import refresh
from policyqa.snapshot.steps import EncodedOnce, embed_chunks
from policyqa.store.base import Vectors

from .conftest import TINY


class Counting(HashEmbedder):
    """The hashing embedder, remembering every text it was asked to encode."""

    def __init__(self) -> None:
        super().__init__(64)
        self.asked: list[str] = []

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.asked += texts
        return super().encode_queries(texts)


# the same notice under two titles: every passage and sentence of one is in the other
TWIN = TINY.replace("关于支持科技企业发展的若干措施", "关于支持科技企业发展的若干措施（修订）")


def test_each_distinct_text_is_encoded_once_and_gets_its_own_vector() -> None:
    chunks = [
        c for name, text in (("a.txt", TINY), ("b.txt", TWIN)) for c in chunk_document(parse(text.encode(), name))
    ]
    chunks += chunk_document(parse(TINY.encode(), "c.txt"), ChunkSettings())
    needed = [t for c in chunks for t in (c.embed_text, *sentence_texts(c))]
    assert len(set(needed)) < len(needed) / 2  # three copies of one notice
    embedder = Counting()
    into: dict[str, Vectors] = {}
    embed_chunks(embedder, chunks, None, into, batch=4)  # repeats across calls into the model, and within
    assert sorted(embedder.asked) == sorted(set(needed))
    plain = HashEmbedder(64)
    for c in chunks:
        assert np.allclose(into[c.chunk_id].passage, plain.encode_passages([c.embed_text])[0])
        sentences = sentence_texts(c)
        assert np.allclose(into[c.chunk_id].sentences, plain.encode_passages(sentences).reshape(len(sentences), 64))


def test_a_whole_build_of_repeated_documents_encodes_the_repeats_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(TINY, encoding="utf-8")
    (corpus / "b.txt").write_text(TWIN, encoding="utf-8")
    embedder = Counting()
    report = refresh(corpus, tmp_path / "index", embedder)
    assert report.chunks == 2 * len(chunk_document(parse(TINY.encode(), "a.txt")))
    assert len(embedder.asked) == len(set(embedder.asked))
    assert set(embedder.asked) == {
        t for c in chunk_document(parse(TINY.encode(), "a.txt")) for t in (c.embed_text, *sentence_texts(c))
    }


def test_what_is_remembered_is_bounded() -> None:
    once = EncodedOnce(Counting(), limit=3)
    first = once.encode(["甲", "乙", "甲"])
    assert np.allclose(first[0], first[2]) and once.encoded == 2
    once.encode(["丙", "丁"])  # past the limit: forgets what it held
    assert len(once.seen) <= 3
    once.encode(["甲"])
    assert once.encoded == 5
    assert once.encode([]).shape == (0, 64)
