"""Durable acknowledgements: an upload answered 202 is on the disk (file and name) and is indexed after a
kill -9; a write that fails leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from policyqa import durable
from policyqa.engine import Engine
from policyqa.ingest import corpus as corpus_mod

from .test_service import AUTH, TOKEN, sources, wait_job

OCEAN = "海洋经济发展规划\n\n到2030年，海洋生产总值达到1.5万亿元，建成海洋强省。\n".encode()


def test_an_upload_is_flushed_then_named_then_its_folder_flushed(tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def link(src, dst, **kw) -> None:
        calls.append(("link", str(dst)))
        real_link(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    stored = corpus_mod.add(tmp_path, "海洋.txt", OCEAN)
    folder = str(tmp_path)
    assert [kind for kind, _ in calls] == ["fsync", "link", "fsync"]
    assert Path(calls[0][1]).name.startswith(corpus_mod.UPLOADING)  # the bytes, under their temporary name
    assert calls[1] == ("link", f"{folder}/{stored.source}") and calls[2] == ("fsync", folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["海洋.txt"]


def test_a_replacement_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "CURRENT"
    target.write_bytes(b"old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        durable.replace_file(target, b"new\n")
    assert target.read_bytes() == b"old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT"]


def test_uploads_left_half_written_by_a_crash_are_removed(corpus: Path, tmp_path: Path, embedder) -> None:
    old = corpus / f"{corpus_mod.UPLOADING}abc123"
    old.write_bytes(OCEAN[:10])
    os.utime(old, (time.time() - 120, time.time() - 120))
    young = corpus / f"{corpus_mod.UPLOADING}def456"  # maybe another process's, being written now
    young.write_bytes(OCEAN[:10])
    Engine(corpus, tmp_path / "idx", embedder).update()
    assert not old.exists() and young.exists()


def test_an_upload_acknowledged_just_before_kill_9_is_indexed_at_the_next_start(
    corpus: Path, server_factory, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    srv = server_factory(corpus, index, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_WATCH_SECONDS="0")
    blocker = httpx.post(f"{srv.url}/api/index/rebuild?full=true", headers=AUTH)  # keep the worker busy
    assert blocker.status_code == 202
    resp = httpx.post(f"{srv.url}/api/documents", files={"file": ("海洋.txt", OCEAN)}, headers=AUTH)
    os.kill(srv.proc.pid, signal.SIGKILL)  # right after the 202, before its update could publish
    srv.proc.wait(10)
    assert resp.status_code == 202, resp.text
    assert (corpus / "海洋.txt").read_bytes() == OCEAN
    again = server_factory(corpus, index, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_WATCH_SECONDS="0")
    status = httpx.get(f"{again.url}/api/index/status").json()
    if status["job"] is not None:
        assert wait_job(again.url, status["job"]["id"])["state"] == "done"
    assert sources(again.url, "海洋生产总值")[0] == "海洋.txt"
    assert not [p for p in corpus.iterdir() if p.name.startswith(corpus_mod.UPLOADING)]


def test_a_delete_acknowledged_before_a_crash_never_answers_again(corpus: Path, tmp_path: Path, embedder) -> None:
    from fastapi.testclient import TestClient

    from policyqa.api import create_app
    from policyqa.config import Settings

    index = tmp_path / "idx"
    Engine(corpus, index, embedder).update()
    (corpus / "measures.txt").unlink()  # the delete was acknowledged; the service died before its update
    engine = Engine(corpus, index, embedder)
    engine.load()  # the snapshot on disk still holds it
    settings = Settings(corpus_dir=corpus, index_dir=index, model="hash:64", watch_seconds=0)
    with engine._update_lock, TestClient(create_app(settings, engine)) as client:  # the start's update waits
        found = client.get("/api/search", params={"q": "高新技术企业奖励", "k": 10}).json()["results"]
        assert found and "measures.txt" not in [r["source"] for r in found]
        listed = [d["source"] for d in client.get("/api/documents").json()["documents"]]
        assert listed == ["sub/datacenter.md"]
