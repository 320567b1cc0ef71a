import json
from dataclasses import asdict
from pathlib import Path

import pytest

from policyqa.embed import HashEmbedder
from policyqa.errors import CorpusError, IndexMismatchError, IndexMissingError, StoreError
from policyqa.snapshot import index, layout
from policyqa.snapshot.refresh import refresh
from policyqa.store import connect
from policyqa.store import faiss as faiss_store


def test_build_save_load_roundtrip(corpus: Path, tmp_path: Path, embedder, store) -> None:
    report = refresh(corpus, tmp_path / "idx", embedder, store=store)
    assert report.documents == 2 and report.chunks > 0 and report.embedded == report.chunks
    ix = index.load(tmp_path / "idx", embedder, store)
    q = embedder.encode_queries(["高新技术企业"])[0]
    assert len(ix.chunks) == report.chunks and len(ix.vectors.nearest(q, 100)) == report.chunks
    meta = json.loads((ix.folder / "meta.json").read_text())
    assert meta["store"] == store.name
    assert meta["model"] == "hash-64" and meta["dim"] == 64 and meta["format_version"] == layout.FORMAT_VERSION
    assert meta["chunking"]["maximum"] == 400
    assert {d["source"] for d in meta["documents"]} == {"measures.txt", "sub/datacenter.md"}
    assert all(len(d["sha256"]) == 64 for d in meta["documents"])


def test_passages_read_back_as_they_were_written_and_a_foreign_line_is_damage(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    lines = (ix.folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [asdict(c) for c in ix.chunks]
    assert len({c.chunk_id: c for c in ix.chunks}) == len(set(ix.chunks))  # hashable and equal as dataclasses
    row = json.loads(lines[0])
    del row["section"]
    (ix.folder / "chunks.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a passage"):  # (a snapshot's sizes are checked before this)
        layout.read_chunks(ix.folder)


def test_loading_with_another_model_says_rebuild(corpus: Path, tmp_path: Path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        index.load(tmp_path / "idx", HashEmbedder(32))


def test_loading_another_format_says_rebuild(corpus: Path, tmp_path: Path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    folder = layout.current_snapshot(tmp_path / "idx")
    meta = json.loads((folder / "meta.json").read_text())
    meta["format_version"] = 999
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IndexMismatchError, match="rebuild"):
        index.load(tmp_path / "idx", embedder)


def test_missing_index_and_empty_corpus(tmp_path: Path, embedder) -> None:
    with pytest.raises(IndexMissingError):
        index.load(tmp_path / "none", embedder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no documents"):
        refresh(tmp_path / "empty", tmp_path / "idx", embedder)


def test_update_embeds_only_what_changed_and_drops_removed(corpus: Path, tmp_path: Path, embedder, store) -> None:
    first = refresh(corpus, tmp_path / "idx", embedder, store=store)
    same = refresh(corpus, tmp_path / "idx", embedder, store=store)
    assert not same.changed and same.embedded == 0
    (corpus / "new.txt").write_text("新文件\n\n人工智能产业发展专项资金管理办法已经印发。\n", encoding="utf-8")
    (corpus / "sub" / "datacenter.md").unlink()
    update = refresh(corpus, tmp_path / "idx", embedder, store=store)
    assert update.embedded == 1
    ix = index.load(tmp_path / "idx", embedder, store)
    assert {c.source for c in ix.chunks} == {"measures.txt", "new.txt"}
    assert first.snapshot != update.snapshot


def test_a_broken_file_keeps_its_old_chunks(corpus: Path, tmp_path: Path, embedder, store) -> None:
    refresh(corpus, tmp_path / "idx", embedder, store=store)
    (corpus / "measures.txt").write_bytes(b"")
    report = refresh(corpus, tmp_path / "idx", embedder, store=store)
    assert any("measures.txt" in e for e in report.errors)
    ix = index.load(tmp_path / "idx", embedder, store)
    assert "measures.txt" in {c.source for c in ix.chunks}


def test_builds_are_serialised_by_the_lock(corpus: Path, tmp_path: Path, embedder) -> None:
    import fcntl
    import subprocess
    import sys
    import time

    idx = tmp_path / "idx"
    refresh(corpus, idx, embedder)
    before = (idx / "CURRENT").read_text()
    env = {**__import__("os").environ, "POLICYQA_MODEL": "hash:64"}
    cmd = [sys.executable, "-m", "policyqa", "build", "--force", "--corpus", str(corpus), "--index", str(idx)]
    with open(idx / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(3)
        assert proc.poll() is None  # waiting for the lock
        assert (idx / "CURRENT").read_text() == before
        fcntl.flock(held, fcntl.LOCK_UN)
    assert proc.wait(60) == 0
    assert (idx / "CURRENT").read_text() != before


def test_reused_words_match_a_fresh_segmentation(corpus: Path, tmp_path: Path, embedder) -> None:
    import numpy as np

    idx = tmp_path / "idx"
    refresh(corpus, idx, embedder)
    # a new document whose heading adds dictionary words that also occur in old passages
    (corpus / "new.md").write_text(
        "# 高新技术企业认定\n\n## 人才公寓\n\n人才公寓面向高新技术企业。\n", encoding="utf-8"
    )
    refresh(corpus, idx, embedder)
    fresh = tmp_path / "fresh"
    refresh(corpus, fresh, embedder, force=True)
    a, b = index.load(idx, embedder), index.load(fresh, embedder)
    assert a.segmenter.words == b.segmenter.words
    for left, right in ((a.lexical.passages, b.lexical.passages), (a.lexical.sentences, b.lexical.sentences)):
        assert left.terms == right.terms
        assert np.array_equal(left.indptr, right.indptr) and np.array_equal(left.indices, right.indices)
        assert np.array_equal(left.tfs, right.tfs)


def test_dense_index_type_follows_corpus_size() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = faiss_store.dense_index(vectors)
    assert type(flat).__name__ == "IndexFlatIP"
    hnsw = faiss_store.dense_index(vectors, force="hnsw")
    assert type(hnsw).__name__ == "IndexHNSWSQ" and hnsw.hnsw.efSearch == faiss_store.search_effort(300)
    _, exact = flat.search(vectors[:20], 5)
    _, approx = hnsw.search(vectors[:20], 5)
    assert (exact[:, 0] == approx[:, 0]).all()  # each vector finds itself first
    assert faiss_store.HNSW_FROM > 1000 and faiss_store.search_effort(10**6) > faiss_store.search_effort(10**4)


def test_another_store_rebuilds_reusing_the_faiss_vectors(corpus: Path, tmp_path: Path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    qdrant = connect("qdrant")
    with pytest.raises(IndexMismatchError, match="faiss store"):
        index.load(tmp_path / "idx", embedder, qdrant)
    report = refresh(corpus, tmp_path / "idx", embedder, store=qdrant)
    assert report.changed and report.embedded == 0  # the vectors came from the FAISS snapshot's files
    assert len(index.load(tmp_path / "idx", embedder, qdrant).chunks) == report.chunks


def test_unknown_store_is_named() -> None:
    with pytest.raises(StoreError, match="POLICYQA_STORE"):
        connect("milvus")
