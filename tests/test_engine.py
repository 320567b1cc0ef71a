"""The engine as the service runs it: update jobs on a worker thread, hiding deleted documents, watching."""

from pathlib import Path

from policyqa.engine import Engine
from policyqa.snapshot.refresh import refresh


def sources(engine: Engine, q: str) -> list[str]:
    return [h.chunk.source for h in engine.search(q, 10).hits]


def test_jobs_run_one_at_a_time_and_report(corpus: Path, tmp_path: Path, embedder) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder)
    first = engine.submit("update", "start")
    second = engine.submit("rebuild", "admin")  # waits behind the first, or shares a queued one
    engine.wait(first, 60)
    engine.wait(second, 60)
    assert first.state == "done" and second.state == "done"
    assert first.report is not None and first.report["chunks"] > 0
    status = engine.status()
    assert status["state"] == "idle" and status["chunks"] > 0 and status["last_error"] is None


def test_hidden_documents_leave_results_at_once(corpus: Path, tmp_path: Path, embedder, store) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder, store=store)
    engine.ensure()
    assert "sub/datacenter.md" in sources(engine, "数据中心电能利用效率")
    doc_id = next(d.doc_id for d in engine.index.documents.values() if d.source == "sub/datacenter.md")
    engine.hide(doc_id)
    assert "sub/datacenter.md" not in sources(engine, "数据中心电能利用效率")
    (corpus / "sub" / "datacenter.md").unlink()
    engine.update()
    assert engine.hidden == frozenset()  # gone from the snapshot, so nothing left to hide
    assert "sub/datacenter.md" not in sources(engine, "数据中心电能利用效率")


def test_poll_picks_up_dropped_files_and_outside_builds(corpus: Path, tmp_path: Path, embedder, store) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder, store=store)
    engine.update()
    assert engine.poll() is None  # nothing changed
    (corpus / "new.txt").write_text("新能源补贴办法\n\n第一条 充电桩建设补贴每个5000元。\n", encoding="utf-8")
    job = engine.poll()
    assert job is not None and engine.wait(job, 60).state == "done"
    assert sources(engine, "充电桩建设补贴")[0] == "new.txt"

    (corpus / "new.txt").unlink()
    refresh(corpus, tmp_path / "idx", embedder, store=store)  # another process publishes a snapshot
    engine._seen = None  # the outside build saw the change; the engine only reloads
    engine.poll()
    assert "new.txt" not in sources(engine, "充电桩建设补贴")


def test_a_failed_job_keeps_serving_and_says_why(corpus: Path, tmp_path: Path, embedder) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.update()
    for path in sorted(corpus.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    job = engine.wait(engine.submit("update"), 60)
    assert job.state == "failed" and "no documents" in (job.error or "")
    assert engine.status()["last_error"] == job.error
    assert sources(engine, "数据中心电能利用效率")  # the old snapshot still serves


def test_a_replaced_snapshot_is_freed_although_what_was_loaded_is_frozen(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    """The engine freezes what a load leaves alive (gc.freeze), so a full collection need not walk a large
    index; a snapshot it stops serving must still be freed by reference counts, or every update would leak."""
    import weakref

    for delta_from in (None, 1):  # whole snapshots, and snapshots of segments sharing loaded parts
        engine = Engine(corpus, tmp_path / f"idx{delta_from}", embedder)
        engine.delta_from = delta_from
        engine.update()
        old = weakref.ref(engine.index)
        (corpus / f"added{delta_from}.txt").write_text(
            "新能源补贴办法\n\n第一条 充电桩补贴每个5000元。\n", encoding="utf-8"
        )
        engine.update()
        assert engine.index is not None and engine.index is not old()
        assert old() is None  # freed at once, without a collection


def test_an_upload_publishes_first_and_a_large_merge_follows_as_a_job(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    from policyqa.snapshot import update

    monkeypatch.setattr(update, "MERGE_NOW", 0)  # passages: every merge is large
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.delta_from = 1
    engine.update()
    (corpus / "measures.txt").unlink()
    first = engine.wait(engine.submit("update", "a user's change"), 60)
    assert first.state == "done" and first.report is not None and first.report["merge_pending"]
    merge = next(j for j in engine.jobs.values() if j.kind == "merge")
    assert merge.large and engine.wait(merge, 60).state == "done"
    assert not any(s["deleted"] for s in engine.index.meta["segments"])
    assert "measures.txt" not in {c.source for c in engine.index.chunks}


def test_a_merge_job_gives_way_a_few_times_then_finishes_first(corpus: Path, tmp_path: Path, embedder) -> None:
    """A preempted merge starts over (it keeps nothing, unlike a large document's embedding), so under a
    stream of uploads it would never finish: after MERGE_YIELDS times it no longer gives way."""
    from policyqa.engine import MERGE_YIELDS, Job

    engine = Engine(corpus, tmp_path / "idx", embedder)
    for yielded, preempted in ((0, True), (MERGE_YIELDS - 1, True), (MERGE_YIELDS, False)):
        running = Job("merge-job", "merge", "segments to merge", state="running", large=True, yielded=yielded)
        engine._queue.insert(0, running)
        with engine._jobs_lock:  # as the worker holds it between jobs: the new job only queues
            job = engine.submit("update", "an upload")
            assert (running.cancel == "preempted") is preempted
            engine._queue[:] = []
        assert job.state == "queued"
