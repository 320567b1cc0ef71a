"""File events tell the service when to walk the corpus folder (watcher.py), with real inotify."""

import time
from pathlib import Path

from policyqa import engine as engine_mod
from policyqa.engine import Engine
from policyqa.ingest.watcher import CorpusWatcher


def until(check, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_walk_is_due_only_after_something_moved(tmp_path: Path) -> None:
    watcher = CorpusWatcher(tmp_path, every=3600).start()
    try:
        assert until(lambda: watcher.watching)
        assert watcher.due()  # whatever moved before the watch was set
        assert not watcher.due()
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "new.txt").write_text("通知", encoding="utf-8")
        assert until(watcher.due)
        time.sleep(0.3)  # a new folder is watched anew, with one more walk for what moved meanwhile
        assert until(lambda: watcher.watching)
        watcher.due()
        assert not watcher.due()
        (tmp_path / "sub" / "new.txt").write_text("通知（修订）", encoding="utf-8")  # changed in place
        assert until(watcher.due)
        watcher.every = 0  # the walk that comes whatever the events say
        assert watcher.due() and watcher.due()
    finally:
        watcher.stop()


def test_without_events_every_look_walks(tmp_path: Path) -> None:
    watcher = CorpusWatcher(tmp_path / "missing", every=3600).start()
    assert not watcher.watching and watcher.due() and watcher.due()


def test_a_watching_engine_walks_the_corpus_only_when_it_moved(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.update()
    walks = []
    real = engine_mod.corpus_signature
    monkeypatch.setattr(engine_mod, "corpus_signature", lambda folder: walks.append(folder) or real(folder))
    engine.watch(every=3600)
    try:
        assert until(lambda: engine.watcher is not None and engine.watcher.watching)
        for _ in range(5):
            assert engine.poll() is None
        assert len(walks) == 1  # the first look; then nothing moved
        (corpus / "new.txt").write_text("新能源补贴办法\n\n第一条 充电桩建设补贴每个5000元。\n", encoding="utf-8")
        assert until(lambda: engine.poll() is not None or bool(engine.jobs))
        job = next(iter(engine.jobs.values()))
        assert engine.wait(job, 60).state == "done"
        assert engine.search("充电桩建设补贴").hits[0].chunk.source == "new.txt"
    finally:
        assert engine.watcher is not None
        engine.watcher.stop()


def test_the_watch_never_follows_a_link_out_of_the_corpus(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    corpus.mkdir()
    outside.mkdir()
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    watcher = CorpusWatcher(corpus, every=3600).start()
    try:
        assert until(lambda: watcher.watching)
        assert watcher.due() and not watcher.due()
        (outside / "secret.txt").write_text("机密", encoding="utf-8")
        time.sleep(1.5)
        assert not watcher.due()  # nothing outside the corpus is watched
        (corpus / "new").mkdir()  # a new folder is watched too, once it is there
        assert until(watcher.due) and until(lambda: watcher.watching)
        time.sleep(0.5)
        watcher.due()
        (corpus / "new" / "a.txt").write_text("通知", encoding="utf-8")
        assert until(watcher.due)
    finally:
        watcher.stop()
