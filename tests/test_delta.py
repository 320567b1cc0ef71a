"""Updates that write only what changed (snapshot/update.py): segments shared by hard links, deletions, merges, and the
same answers as one index over the same passages."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from policyqa.embed import HashEmbedder
from policyqa.ingest.identity import Identities
from policyqa.search.ranking import search
from policyqa.snapshot import index, layout, steps, update
from policyqa.snapshot.documents import document_rows
from policyqa.snapshot.refresh import refresh
from policyqa.store.base import Words
from policyqa.store.lexical import BM25

from .conftest import NOTICE, TINY2

OCEAN = """海洋经济发展规划

一、发展目标
到2025年，全市海洋生产总值突破1000亿元。建设国家级海洋牧场示范区3个。

二、重点任务
培育海洋装备制造产业集群，支持船舶企业智能化改造。
"""


def build(corpus: Path, idx: Path, embedder: HashEmbedder, **kw: object) -> steps.BuildReport:
    return refresh(corpus, idx, embedder, delta_from=1, **kw)  # type: ignore[arg-type]


def snapshot_meta(idx: Path) -> dict:
    folder = layout.current_snapshot(idx)
    assert folder is not None
    return json.loads((folder / "meta.json").read_text(encoding="utf-8"))


def live_words(ix: index.Index) -> list[Words]:
    """The words of the served passages, in their order, read from the segments' words.jsonl."""
    by_id: dict[str, Words] = {}
    for _, sub, _ in layout.segments(ix.folder, ix.meta):
        for line in (sub / "words.jsonl").read_text(encoding="utf-8").splitlines():
            chunk_id, passage, sentences = json.loads(line)
            by_id[chunk_id] = Words(passage, sentences)
    return [by_id[c.chunk_id] for c in ix.chunks]


def assert_scores_as_one_index(ix: index.Index, query: str) -> None:
    """BM25 over the segments scores every live passage as one index built over the same words would."""
    words = ix.segmenter.query_words(query)
    ids = list(range(len(ix.chunks)))
    got = ix.lexical.scores(words, ids, 0.0)
    one = BM25.build([w.passage for w in live_words(ix)]).scores(words)
    assert np.allclose([got[i] for i in ids], one, atol=1e-5)
    assert ix.lexical.idf(words[0]) == pytest.approx(BM25.build([w.passage for w in live_words(ix)]).idf(words[0]))


def sources(ix: index.Index, embedder: HashEmbedder, query: str) -> list[str]:
    return [h.chunk.source for h in search(ix, embedder, query, k=10).hits]


def test_an_added_document_is_a_new_segment_beside_the_linked_old_one(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    first = layout.current_snapshot(idx)
    assert first is not None and "segments" not in snapshot_meta(idx)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    report = build(corpus, idx, embedder)
    meta = snapshot_meta(idx)
    assert report.changed and report.documents == 3
    assert [s["name"] for s in meta["segments"]] == [first.name, report.snapshot]
    assert report.embedded == meta["segments"][1]["passages"]  # only the new document was embedded
    # the old passages are the previous snapshot's files, not copies of them
    new = idx / "snapshots" / report.snapshot
    assert (new / "segments" / first.name / "vectors.npy").stat().st_ino == (first / "vectors.npy").stat().st_ino
    ix = index.load(idx, embedder)
    assert len(ix.chunks) == meta["chunks"] and "ocean.txt" in sources(ix, embedder, "海洋生产总值")
    assert_scores_as_one_index(ix, "海洋生产总值 高新技术企业 奖励")
    assert ix.text(ix.chunks[-1].doc_id)["source"] == "ocean.txt"
    assert ix.text(ix.chunks[0].doc_id)["source"] == ix.chunks[0].source


def test_a_changed_and_a_removed_document_stop_answering(corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    monkeypatch.setattr(update, "MERGE_DELETED", 0.99)  # keep the segment with what it no longer answers for
    idx = tmp_path / "idx"
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN.replace("1000亿元", "1200亿元"), encoding="utf-8")
    (corpus / "sub" / "datacenter.md").unlink()
    report = build(corpus, idx, embedder)
    ix = index.load(idx, embedder)
    assert report.documents == 2 and {d.source for d in ix.documents.values()} == {"measures.txt", "ocean.txt"}
    assert {c.source for c in ix.chunks} == {"measures.txt", "ocean.txt"}
    texts = [c.text for c in ix.chunks if c.source == "ocean.txt"]
    assert any("1200亿元" in t for t in texts) and not any("1000亿元" in t for t in texts)
    assert report.embedded < len(texts)  # the passages the edit did not touch kept their vectors
    assert "sub/datacenter.md" not in sources(ix, embedder, "数据中心电能利用效率")
    assert_scores_as_one_index(ix, "数据中心 海洋 电能利用效率")
    deleted = {d for s in snapshot_meta(idx)["segments"] for d in s["deleted"]}
    assert len(deleted) == 2  # the old ocean.txt and datacenter.md
    # a dense search never returns a deleted passage, and every passage it may return is found
    q = embedder.encode_queries(["数据中心"])[0]
    assert sorted(ix.vectors.nearest(q, 1000)) == list(range(len(ix.chunks)))


def test_each_segment_keeps_its_documents_and_meta_lists_none(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    monkeypatch.setattr(update, "MERGE_DELETED", 0.99)
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN.replace("1000亿元", "1200亿元"), encoding="utf-8")
    (corpus / "sub" / "datacenter.md").unlink()
    build(corpus, idx, embedder)
    meta = snapshot_meta(idx)
    assert "documents" not in meta  # an update does not write every document's row again
    folder = layout.current_snapshot(idx)
    assert folder is not None
    held = {
        s["name"]: sorted(
            d["source"] for d in json.loads((folder / "segments" / s["name"] / "documents.json").read_text())
        )
        for s in meta["segments"]
    }
    # the first segment (the whole snapshot before) got its documents when first linked, and still lists
    # datacenter.md, which it no longer answers for; the segment of the old ocean.txt answered for nothing
    # else and is gone
    assert held == {
        meta["segments"][0]["name"]: ["measures.txt", "sub/datacenter.md"],
        meta["segments"][1]["name"]: ["ocean.txt"],
    }
    listed = index.documents(idx)
    assert [d.source for d in listed] == ["measures.txt", "ocean.txt"]
    assert "1200亿元" in (layout.read_text(folder, listed[1].doc_id) or {}).get("text", "")  # the new version's row
    assert listed[1].sha256 == hashlib.sha256((corpus / "ocean.txt").read_bytes()).hexdigest()
    ix = index.load(idx, embedder)
    assert sorted(ix.documents) == ["measures.txt", "ocean.txt"] and ix.documents["ocean.txt"].chunks > 0


def test_a_snapshot_listing_documents_in_meta_still_loads_and_updates(corpus: Path, tmp_path: Path, embedder) -> None:
    """Snapshots of segments written before segments kept their documents list them all in meta.json."""
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    folder = layout.current_snapshot(idx)
    assert folder is not None
    meta = snapshot_meta(idx)
    rows = [d.as_dict() for d in index.documents(idx)]
    for s in meta["segments"]:
        (folder / "segments" / s["name"] / "documents.json").unlink()
        del meta["files"][f"segments/{s['name']}/documents.json"]
    (folder / "meta.json").write_text(json.dumps({**meta, "documents": rows}, ensure_ascii=False), encoding="utf-8")
    ix = index.load(idx, embedder)
    assert sorted(ix.documents) == ["measures.txt", "ocean.txt", "sub/datacenter.md"]
    (corpus / "more.md").write_text(TINY2.replace("数据中心", "算力中心"), encoding="utf-8")
    report = refresh(corpus, idx, embedder, delta_from=1, previous=ix)
    assert report.documents == 4 and "documents" not in snapshot_meta(idx)
    after = index.load(idx, embedder, previous=ix)
    assert sorted(after.documents) == ["measures.txt", "more.md", "ocean.txt", "sub/datacenter.md"]
    assert "more.md" in sources(after, embedder, "算力中心")


def test_an_update_from_the_loaded_snapshot_equals_one_read_from_disk(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    """A service hands its loaded snapshot to the update (documents, each segment's rows); `policyqa build`
    reads them from disk. Both must publish the same snapshot."""
    monkeypatch.setattr(update, "MERGE_DELETED", 0.99)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    a, b = tmp_path / "a", tmp_path / "b"
    for idx in (a, b):
        build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN.replace("1000亿元", "1200亿元"), encoding="utf-8")
    (corpus / "sub" / "datacenter.md").unlink()
    (corpus / "more.md").write_text(TINY2.replace("数据中心", "算力中心"), encoding="utf-8")
    first = build(corpus, a, embedder)
    loaded = index.load(b, embedder)
    report = build(corpus, b, embedder, previous=loaded)
    assert report.embedded == first.embedded < report.chunks  # the unchanged passages of ocean.txt kept theirs
    ia, ib = index.load(a, embedder), index.load(b, embedder, previous=loaded)
    assert [c.chunk_id for c in ia.chunks] == [c.chunk_id for c in ib.chunks]
    assert [(s["passages"], s["deleted"]) for s in ia.meta["segments"]] == [
        (s["passages"], s["deleted"]) for s in ib.meta["segments"]
    ]
    rows = [{s: (d.sha256, d.chunks, d.title, d.metadata) for s, d in ix.documents.items()} for ix in (ia, ib)]
    assert rows[0] == rows[1] and len(rows[0]) == 3
    assert np.allclose(ia.centroids[1], ib.centroids[1]) and ia.identities.idf == ib.identities.idf


HEADINGS_ONLY = "# 关于印发管理办法的通知\n\n## 第一章 总则\n"  # parses, but gives no passage


def test_documents_without_passages_are_listed_and_removed(corpus: Path, tmp_path: Path, embedder) -> None:
    """A document without passages is in no segment; meta.json lists it, and it goes when its file goes."""
    idx = tmp_path / "idx"
    (corpus / "empty-one.md").write_text(HEADINGS_ONLY, encoding="utf-8")  # in the whole snapshot first
    build(corpus, idx, embedder)
    (corpus / "heads.md").write_text(HEADINGS_ONLY, encoding="utf-8")
    alone = build(corpus, idx, embedder)  # an update that adds no passage
    listed = [d.source for d in index.documents(idx)]
    assert alone.changed and alone.documents == 4 and "heads.md" in listed and "empty-one.md" in listed
    (corpus / "heads2.md").write_text(HEADINGS_ONLY.replace("管理办法", "补贴办法"), encoding="utf-8")
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    assert build(corpus, idx, embedder).documents == 6
    for name in ("heads2.md", "empty-one.md"):
        (corpus / name).unlink()
    assert build(corpus, idx, embedder).documents == 4
    assert not build(corpus, idx, embedder).changed  # nothing left behind to remove again
    listed = [d.source for d in index.documents(idx)]
    assert listed == ["heads.md", "measures.txt", "ocean.txt", "sub/datacenter.md"]
    assert sorted(index.load(idx, embedder).documents) == listed
    (corpus / "heads.md").write_text(OCEAN.replace("海洋", "湖泊"), encoding="utf-8")  # now with passages
    build(corpus, idx, embedder)
    ix = index.load(idx, embedder)
    assert ix.documents["heads.md"].chunks > 0 and "heads.md" in sources(ix, embedder, "湖泊生产总值")
    assert "heads.md" not in {d["source"] for d in snapshot_meta(idx)["bare"]}


def test_a_document_changed_as_its_segment_is_merged_gets_its_new_identity(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    idx = tmp_path / "idx"
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    # the new title changes the identity; dropping measures.txt makes the segment lose enough to be merged
    (corpus / "ocean.txt").write_text(OCEAN.replace("海洋经济发展规划", "湖泊生态保护规划"), encoding="utf-8")
    (corpus / "measures.txt").unlink()
    build(corpus, idx, embedder)
    assert not any(s["deleted"] for s in snapshot_meta(idx)["segments"])  # merged
    ix = index.load(idx, embedder)
    ocean = ix.documents["ocean.txt"].doc_id
    assert "湖泊" in ix.identities.docs[ocean].words and "海洋经济" not in ix.identities.docs[ocean].text.head


def test_a_file_touched_but_not_changed_writes_nothing(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    first = build(corpus, idx, embedder)
    os.utime(corpus / "measures.txt", ns=(time.time_ns(), time.time_ns()))
    again = build(corpus, idx, embedder)
    assert not again.changed and again.snapshot == first.snapshot


def test_too_many_segments_are_merged_and_answers_stay(corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    monkeypatch.setattr(update, "MAX_SEGMENTS", 3)
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    for n in range(5):
        (corpus / f"notice{n}.txt").write_text(NOTICE.replace("甲市", f"{'甲乙丙丁戊'[n]}市"), encoding="utf-8")
        build(corpus, idx, embedder)
        assert len(snapshot_meta(idx)["segments"]) <= 3
    ix = index.load(idx, embedder)
    assert len(ix.documents) == 7 and len(ix.chunks) == snapshot_meta(idx)["chunks"]
    assert {c.source for c in ix.chunks} == {d.source for d in ix.documents.values()}
    assert_scores_as_one_index(ix, "稳岗补贴 丙市 高新技术企业")
    whole = refresh(corpus, tmp_path / "whole", embedder, force=True)
    assert whole.chunks == len(ix.chunks)


def test_a_segment_that_lost_most_passages_is_written_again(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    for name in ("measures.txt", "ocean.txt"):
        (corpus / name).unlink()
    build(corpus, idx, embedder)
    meta = snapshot_meta(idx)
    assert all(not s["deleted"] for s in meta["segments"])  # nothing kept that no longer answers
    ix = index.load(idx, embedder)
    assert {c.source for c in ix.chunks} == {"sub/datacenter.md"}


def test_a_large_merge_is_left_by_a_quick_update_for_a_job_of_its_own(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    """Writing a large segment again takes minutes at a million passages: an update a user waits for
    (defer_over set) publishes its change without it and says a merge is pending; the next build merges."""
    monkeypatch.setattr(update, "MERGE_NOW", 2)  # passages: every segment here is "large"
    idx = tmp_path / "idx"
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    (corpus / "measures.txt").unlink()  # the first segment loses more than MERGE_DELETED of its passages
    quick = build(corpus, idx, embedder, defer_over=100)
    meta = snapshot_meta(idx)
    assert quick.changed and quick.merge_pending and any(s["deleted"] for s in meta["segments"])
    assert "measures.txt" not in {c.source for c in index.load(idx, embedder).chunks}
    merge = build(corpus, idx, embedder)
    meta = snapshot_meta(idx)
    assert merge.changed and not merge.merge_pending and not any(s["deleted"] for s in meta["segments"])
    ix = index.load(idx, embedder)
    assert {c.source for c in ix.chunks} == {"ocean.txt", "sub/datacenter.md"}
    assert_scores_as_one_index(ix, "海洋生产总值 数据中心")
    assert not build(corpus, idx, embedder).changed  # nothing left to do


def test_a_loaded_snapshot_reuses_the_segments_it_shares(corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    monkeypatch.setattr(update, "MERGE_DELETED", 0.99)  # segments that no longer answer for some documents
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    before = index.load(idx, embedder)
    (corpus / "more.md").write_text(TINY2.replace("数据中心", "算力中心"), encoding="utf-8")
    build(corpus, idx, embedder)
    after = index.load(idx, embedder, previous=before)
    shared = before.parts.keys() & after.parts.keys()
    assert shared and all(after.parts[n] is before.parts[n] for n in shared)
    assert "more.md" in sources(after, embedder, "算力中心")
    # what is worked out per segment equals what the whole snapshot would give
    ids, centres, owner = after.centroids
    assert np.allclose(centres, after.vectors.centroids(owner, len(ids)), atol=1e-5)
    whole = Identities.build(after.chunks, after.segmenter)
    assert after.identities.idf == whole.idf
    assert {d: i.words for d, i in after.identities.docs.items()} == {d: i.words for d, i in whole.docs.items()}
    # and after a change and a removal, with segments that no longer answer for some documents
    (corpus / "ocean.txt").write_text(OCEAN.replace("海洋牧场", "海洋牧场与渔港"), encoding="utf-8")
    (corpus / "measures.txt").unlink()
    build(corpus, idx, embedder, previous=after)
    last = index.load(idx, embedder, previous=after)
    assert {d for s in last.meta["segments"] for d in s["deleted"]}
    ids, centres, owner = last.centroids
    assert (ids, owner.tolist()) == (document_rows(last.chunks)[0], document_rows(last.chunks)[1].tolist())
    assert np.allclose(centres, last.vectors.centroids(owner, len(ids)), atol=1e-5)
    whole = Identities.build(last.chunks, last.segmenter)
    assert last.identities.idf == pytest.approx(whole.idf)
    assert set(last.identities.docs) == set(whole.docs) == {c.doc_id for c in last.chunks}


def test_a_whole_build_after_updates_reuses_every_vector(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    (corpus / "new.md").write_text(TINY2.replace("数据中心", "算力中心"), encoding="utf-8")
    report = refresh(corpus, idx, embedder)  # below delta_from: a whole snapshot, no segments
    assert report.changed and "segments" not in snapshot_meta(idx)
    assert report.embedded == len([c for c in index.load(idx, embedder).chunks if c.source == "new.md"])


def test_small_corpora_still_get_whole_snapshots(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    refresh(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    refresh(corpus, idx, embedder)
    assert "segments" not in snapshot_meta(idx)


def test_kill_9_during_updates_leaves_a_whole_snapshot(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    env = {**os.environ, "POLICYQA_MODEL": "hash:64", "POLICYQA_DELTA_FROM": "1"}
    cmd = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(idx)]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    embedder = HashEmbedder(64)
    for n, delay in enumerate((0.2, 0.5, 0.8, 1.1, 1.4, 1.7)):
        (corpus / f"notice{n}.txt").write_text(NOTICE.replace("甲市", f"{'甲乙丙丁戊己'[n]}市"), encoding="utf-8")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ix = index.load(idx, embedder)  # whole and consistent, whichever snapshot it is
        assert len(ix.chunks) == ix.meta["chunks"] > 0
        assert {c.source for c in ix.chunks} == {d.source for d in ix.documents.values()}
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # and the next update completes
    ix = index.load(idx, embedder)
    assert len(ix.documents) == 8
    assert "segments" in ix.meta


def test_identities_are_read_back_not_segmented_again(corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    idx = tmp_path / "idx"
    build(corpus, idx, embedder)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")
    build(corpus, idx, embedder)
    expected = Identities.build(index.load(idx, embedder).chunks, index.load(idx, embedder).segmenter)

    def refuse(self: object, text: str) -> list[str]:
        raise AssertionError("segmented again")

    monkeypatch.setattr("policyqa.ingest.segment.Segmenter.words_of", refuse)
    ix = index.load(idx, embedder)
    assert ix.identities.idf == expected.idf
    assert {d: (i.words, i.years, i.places) for d, i in ix.identities.docs.items()} == {
        d: (i.words, i.years, i.places) for d, i in expected.docs.items()
    }


def test_the_corpus_is_listed_alike_from_any_root_spelling(corpus: Path, monkeypatch) -> None:
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "x.txt").write_text(OCEAN, encoding="utf-8")
    absolute = steps.file_stats(corpus)
    monkeypatch.chdir(corpus)
    assert steps.file_stats(Path(".")) == absolute
    monkeypatch.chdir(corpus.parent)
    assert steps.file_stats(Path(corpus.name)) == absolute
    assert set(absolute) == {"measures.txt", "sub/datacenter.md"}
