"""Attacks and faults on the corpus folder and the index disk: symbolic links out of the folder, file names
that are not UTF-8, a disk that fills during a publish, and files too large to parse in the service."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.api import create_app
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.errors import DocumentError
from policyqa.ingest import loaders
from policyqa.ingest.limits import Limits
from policyqa.snapshot import build, layout

SECRET = "机密文件\n\n绝密口令是蓝鲸七号，不得外传。\n"
GBK_NAME = "关于".encode("gbk") + b".txt"
OCEAN = "海洋经济发展规划\n\n到2030年，海洋生产总值达到1.5万亿元，建成海洋强省。\n"


def sources(engine: Engine, q: str) -> list[str]:
    return [h.chunk.source for h in engine.search(q, 10).hits]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the corpus, holding a file no one may read through the corpus."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET, encoding="utf-8")
    return folder


def test_symbolic_links_in_the_corpus_are_never_followed(corpus: Path, outside: Path, tmp_path: Path, embedder) -> None:
    (corpus / "passwd.txt").symlink_to(outside / "secret.txt")
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.update()
    indexed = {d.source for d in engine.index.documents.values()}
    assert indexed == {"measures.txt", "sub/datacenter.md"}
    assert not any("蓝鲸" in c.text for c in engine.index.chunks)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", model="hash:64", watch_seconds=0)
    with TestClient(create_app(settings, engine)) as client:
        for source in ("passwd.txt", "linked/secret.txt"):
            doc_id = loaders.document_id(source)
            assert client.get(f"/api/documents/{doc_id}/text").status_code == 404
            assert client.get(f"/api/documents/{doc_id}/original").status_code == 404


def test_a_link_put_in_place_of_a_listed_file_is_not_read(corpus: Path, outside: Path) -> None:
    """Between the walk and the read a file may become a link (or a folder on its path may): refused."""
    (corpus / "measures.txt").unlink()
    (corpus / "measures.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(DocumentError, match="symbolic link"):
        loaders.read_file(corpus, "measures.txt")
    (corpus / "sub" / "datacenter.md").unlink()
    (corpus / "sub").rmdir()
    (corpus / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DocumentError, match="symbolic link"):
        loaders.read_file(corpus, "sub/secret.txt")


def test_the_original_of_a_file_replaced_by_a_link_is_refused(corpus: Path, outside: Path, tmp_path, embedder):
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.update()
    (corpus / "measures.txt").unlink()
    (corpus / "measures.txt").symlink_to(outside / "secret.txt")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", model="hash:64", watch_seconds=0)
    with TestClient(create_app(settings, engine)) as client:
        resp = client.get(f"/api/documents/{loaders.document_id('measures.txt')}/original")
        assert resp.status_code == 404 and "蓝鲸" not in resp.text


def drop_gbk_file(corpus: Path) -> None:
    fd = os.open(os.fsencode(corpus) + b"/" + GBK_NAME, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, "甲市通知\n\n稳岗补贴通过网上申请。\n".encode("gbk"))
    os.close(fd)


def test_a_file_name_that_is_not_utf8_is_refused_and_the_rest_indexed(corpus: Path, tmp_path: Path, embedder):
    drop_gbk_file(corpus)
    engine = Engine(corpus, tmp_path / "idx", embedder)
    report = engine.update()
    assert {d.source for d in engine.index.documents.values()} == {"measures.txt", "sub/datacenter.md"}
    refused = [e for e in report.errors if "not UTF-8" in e]
    assert refused and refused[0].startswith("\\xb9\\xd8\\xd3\\xda.txt: ")  # as `ls -b` shows the name
    (corpus / "new.txt").write_text(OCEAN, encoding="utf-8")  # later changes are still indexed
    job = engine.poll()
    assert job is not None and engine.wait(job, 60).state == "done"
    assert sources(engine, "海洋生产总值")[0] == "new.txt"
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", model="hash:64", watch_seconds=0)
    with TestClient(create_app(settings, engine)) as client:
        status = client.get("/api/index/status")
        assert status.status_code == 200 and status.json()["last_error"] is None
        assert client.get("/api/health").status_code == 200


def test_build_with_a_name_that_is_not_utf8_says_so_in_one_line(corpus: Path, tmp_path: Path) -> None:
    drop_gbk_file(corpus)
    env = {**os.environ, "POLICYQA_MODEL": "hash:64"}
    cmd = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(tmp_path / "i")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    skipped = [line for line in out.stderr.splitlines() if "not UTF-8" in line]
    assert len(skipped) == 1 and skipped[0].startswith("skipped: \\xb9\\xd8")
    assert "2 documents" in out.stdout


def test_an_update_that_failed_on_a_full_disk_is_retried(
    corpus: Path, tmp_path: Path, embedder, monkeypatch, caplog
) -> None:
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.update()
    real = build.publish
    full = [True]

    def publish(index_dir, tmp, name, meta, store):  # the disk fills while the snapshot is sealed
        if full[0]:
            layout.discard(tmp, name, store)
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "meta.json"))
        return real(index_dir, tmp, name, meta, store)

    monkeypatch.setattr(build, "publish", publish)
    (corpus / "ocean.txt").write_text(OCEAN, encoding="utf-8")  # acknowledged, as an upload is
    failed = engine.wait(engine.submit("update", "uploaded ocean.txt"), 60)
    assert failed.state == "failed" and "ENOSPC" in (failed.error or "")
    assert "磁盘空间不足" in failed.as_dict()["message"]  # not 内部错误
    logged = [r for r in caplog.records if "ENOSPC" in r.getMessage()]
    assert logged and not any(r.exc_info for r in caplog.records)  # one line, no traceback
    assert "ocean.txt" not in sources(engine, "海洋生产总值")
    assert not list((tmp_path / "idx" / "snapshots").glob(".tmp-*"))
    full[0] = False  # space freed: the next look finds the change still pending
    job = engine.poll()
    assert job is not None and engine.wait(job, 60).state == "done"
    assert sources(engine, "海洋生产总值")[0] == "ocean.txt"
    assert engine.poll() is None


def test_a_failed_first_update_is_retried_too(corpus: Path, tmp_path: Path, embedder, monkeypatch) -> None:
    real = build.publish

    def publish(index_dir, tmp, name, meta, store):
        monkeypatch.setattr(build, "publish", real)  # full once
        layout.discard(tmp, name, store)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build, "publish", publish)
    engine = Engine(corpus, tmp_path / "idx", embedder)
    assert engine.wait(engine.submit("update", "service start"), 60).state == "failed"
    job = engine.poll()
    assert job is not None and engine.wait(job, 60).state == "done" and engine.index is not None


def test_a_file_dropped_into_the_folder_gets_the_upload_size_limit(corpus: Path, tmp_path: Path, embedder) -> None:
    body = "<p>" + "长" * 5000 + "</p>"  # one text node, as the 105 MB page was
    (corpus / "huge.html").write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
    engine = Engine(corpus, tmp_path / "idx", embedder)
    engine.limits = Settings(max_upload_bytes=4000).limits
    report = engine.update()
    assert "huge.html" not in {d.source for d in engine.index.documents.values()}
    refused = [e for e in report.errors if e.startswith("huge.html: ")]
    assert refused and "the limit is 4000 bytes" in refused[0]
    assert Settings(max_upload_bytes=4000).limits.file_bytes == 4000
    assert Settings.from_env({"POLICYQA_MAX_UPLOAD_BYTES": "1234"}).limits.file_bytes == 1234
    assert Limits().file_bytes == Settings().max_upload_bytes


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs (root only; skipped elsewhere), unmounted afterwards."""
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_build_on_a_full_disk_is_one_line(corpus: Path, small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    with contextlib.suppress(OSError), open(ballast, "wb") as fh:  # fill the disk, but for a few kilobytes
        fh.write(b"\0" * (1024 * 1024))
    env = {**os.environ, "POLICYQA_MODEL": "hash:64"}
    cmd = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(small_disk / "i")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "(ENOSPC)" in out.stderr
    ballast.unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "2 documents" in again.stdout
    assert not list((small_disk / "i" / "snapshots").glob(".tmp-*"))
