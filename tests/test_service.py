"""The hardened service, against real `policyqa serve` processes: admin token, uploads, deletes, limits,
hot swap under load, and kill -9 in the middle of builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from policyqa.embed import HashEmbedder
from policyqa.snapshot import index, layout

from .conftest import STORES, TINY

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OCEAN = "海洋经济发展规划\n\n一、发展目标\n到2030年，海洋生产总值达到1.5万亿元，建成海洋强省。\n".encode()


def wait_job(url: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/api/index/jobs/{job_id}", timeout=10).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


def sources(url: str, q: str, k: int = 10) -> list[str]:
    resp = httpx.get(f"{url}/api/search", params={"q": q, "k": k}, timeout=10)
    assert resp.status_code == 200, resp.text
    return [r["source"] for r in resp.json()["results"]]


def make_corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        text = TINY.replace("20万元", f"{i}万元").replace("人才公寓", f"人才公寓{i}号")
        (folder / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
    return folder


def test_admin_token_none_wrong_and_unset(corpus: Path, server_factory, tmp_path: Path) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    files = {"file": ("x.txt", OCEAN, "text/plain")}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        for call in (
            lambda h: httpx.post(f"{srv.url}/api/documents", files=files, headers=h),
            lambda h: httpx.delete(f"{srv.url}/api/documents/0123456789ab", headers=h),
            lambda h: httpx.post(f"{srv.url}/api/index/rebuild", headers=h),
        ):
            resp = call(headers)
            assert resp.status_code == 401 and "Authorization: Bearer" in resp.json()["error"]
            assert resp.headers["www-authenticate"] == "Bearer"
    assert httpx.post(f"{srv.url}/api/index/rebuild", headers=AUTH).status_code == 202
    assert not (corpus / "x.txt").exists()

    unset = server_factory(corpus, tmp_path / "index2")
    resp = httpx.post(f"{unset.url}/api/index/rebuild", headers=AUTH)
    assert resp.status_code == 403 and "POLICYQA_ADMIN_TOKEN" in resp.json()["error"]


@pytest.mark.parametrize("store", STORES)
def test_upload_is_searchable_and_delete_is_gone(corpus: Path, server_factory, tmp_path: Path, store: str) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_STORE=store)
    assert httpx.get(f"{srv.url}/api/health").json()["store"] == store
    resp = httpx.post(f"{srv.url}/api/documents", files={"file": ("../../海洋.txt", OCEAN, "text/plain")}, headers=AUTH)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["source"] == "海洋.txt" and len(body["doc_id"]) == 12 and body["size"] == len(OCEAN)
    assert (corpus / "海洋.txt").read_bytes() == OCEAN
    assert not (tmp_path / "海洋.txt").exists() and not (corpus.parent.parent / "海洋.txt").exists()
    assert wait_job(srv.url, body["job"]["id"])["state"] == "done"
    assert sources(srv.url, "海洋生产总值目标")[0] == "海洋.txt"
    listed = httpx.get(f"{srv.url}/api/documents").json()["documents"]
    mine = next(d for d in listed if d["doc_id"] == body["doc_id"])
    assert mine["chunks"] >= 1 and mine["sha256"] == body["sha256"] and mine["indexed_at"].endswith("Z")

    gone = httpx.delete(f"{srv.url}/api/documents/{body['doc_id']}", headers=AUTH)
    assert gone.status_code == 202
    assert "海洋.txt" not in sources(srv.url, "海洋生产总值目标")  # hidden at once, before the new snapshot
    assert wait_job(srv.url, gone.json()["job"]["id"])["state"] == "done"
    assert "海洋.txt" not in sources(srv.url, "海洋生产总值目标")
    assert body["doc_id"] not in [d["doc_id"] for d in httpx.get(f"{srv.url}/api/documents").json()["documents"]]
    assert not (corpus / "海洋.txt").exists()
    assert httpx.delete(f"{srv.url}/api/documents/{body['doc_id']}", headers=AUTH).status_code == 404
    bad = httpx.delete(f"{srv.url}/api/documents/..%2F..%2Fetc", headers=AUTH)
    assert bad.status_code == 404 and bad.json()["error"]
    malformed = httpx.delete(f"{srv.url}/api/documents/not-an-id", headers=AUTH)
    assert malformed.status_code == 422 and malformed.json()["field"] == "doc_id"


def test_bad_uploads_are_refused_and_the_service_stays_healthy(corpus: Path, server_factory) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_MAX_UPLOAD_BYTES="2000")
    before = sorted(p.name for p in corpus.rglob("*"))
    garbage = httpx.post(
        f"{srv.url}/api/documents",
        files={"file": ("report.pdf", b"%PDF-1.7\n" + os.urandom(800), "application/pdf")},
        headers=AUTH,
    )
    assert garbage.status_code == 422 and garbage.json()["field"] == "file" and "report.pdf" in garbage.json()["error"]
    big = httpx.post(f"{srv.url}/api/documents", files={"file": ("big.txt", "长" * 2000, "text/plain")}, headers=AUTH)
    assert big.status_code == 413 and "2000" in big.json()["error"]
    binary = httpx.post(f"{srv.url}/api/documents", files={"file": ("a.txt", b"\x00\x01" * 50)}, headers=AUTH)
    assert binary.status_code == 422
    no_file = httpx.post(f"{srv.url}/api/documents", data={"other": "x"}, headers=AUTH)
    assert no_file.status_code == 422 and no_file.json()["field"] == "file"
    not_multipart = httpx.post(f"{srv.url}/api/documents", json={"file": "x"}, headers=AUTH)
    assert not_multipart.status_code == 422
    assert sorted(p.name for p in corpus.rglob("*")) == before
    assert httpx.get(f"{srv.url}/api/health").status_code == 200
    assert sources(srv.url, "数据中心电能利用效率")


def test_an_upload_over_the_limit_names_the_configured_limit(corpus: Path, server_factory) -> None:
    """The body limit allows the multipart framing on top of POLICYQA_MAX_UPLOAD_BYTES; the 413 names the
    setting's own value, whether the size is declared (Content-Length) or found while the body streams in."""
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_MAX_UPLOAD_BYTES="4096")
    text = (OCEAN * 32).ljust(4096, b"\n")
    exact = httpx.post(f"{srv.url}/api/documents", files={"file": ("exact.txt", text)}, headers=AUTH)
    assert len(text) == 4096 and exact.status_code == 202, exact.text

    def streamed():  # no Content-Length
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(200):
            yield b"x" * 1000

    declared = httpx.post(f"{srv.url}/api/documents", files={"file": ("big.txt", b"x" * 200_000)}, headers=AUTH)
    chunked = httpx.post(
        f"{srv.url}/api/documents",
        content=streamed(),
        headers={**AUTH, "content-type": "multipart/form-data; boundary=b"},
    )
    for resp in (declared, chunked):
        assert resp.status_code == 413, resp.text
        body = resp.json()
        assert "limit of 4096 bytes" in body["error"] and "POLICYQA_MAX_UPLOAD_BYTES" in body["error"]
        assert str(4096 + 64 * 1024) not in body["error"]
        assert "上限为 4 KB" in body["message"] and "POLICYQA_MAX_UPLOAD_BYTES" in body["message"]


def test_searches_never_fail_during_updates(tmp_path: Path, server_factory) -> None:
    corpus = make_corpus(tmp_path / "big", 150)
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    first = httpx.get(f"{srv.url}/api/health").json()["snapshot"]
    served, failures, stop = [0], [], threading.Event()

    def searcher() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    resp = client.get(f"{srv.url}/api/search", params={"q": "人才公寓资助", "k": 5})
                    if resp.status_code != 200 or not resp.json()["results"]:
                        failures.append(resp.status_code)
                    served[0] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        up = httpx.post(f"{srv.url}/api/documents", files={"file": ("ocean.txt", OCEAN)}, headers=AUTH).json()
        rebuild = httpx.post(f"{srv.url}/api/index/rebuild", params={"full": "true"}, headers=AUTH).json()
        assert wait_job(srv.url, up["job"]["id"])["state"] == "done"
        assert wait_job(srv.url, rebuild["job"]["id"])["state"] == "done"
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [] and served[0] > 20
    assert httpx.get(f"{srv.url}/api/health").json()["snapshot"] != first
    assert "ocean.txt" in sources(srv.url, "海洋生产总值")


def test_kill_9_during_builds_leaves_the_old_snapshot_serving(tmp_path: Path, server_factory) -> None:
    corpus = make_corpus(tmp_path / "big", 300)
    idx = tmp_path / "index"
    env = {**os.environ, "POLICYQA_MODEL": "hash:64"}
    build = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(idx)]
    subprocess.run(build, env=env, check=True, capture_output=True)
    old = layout.current_snapshot(idx)
    assert old is not None
    srv = server_factory(corpus, idx, POLICYQA_ADMIN_TOKEN=TOKEN)

    killed = 0
    for delay in (0.3, 0.8, 1.4, 2.0, 2.6):
        proc = subprocess.Popen([*build, "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        current = layout.current_snapshot(idx)
        assert current is not None
        loaded = index.load(idx, HashEmbedder(64))  # whole and consistent, whichever snapshot it is
        assert len(loaded.chunks) == len(index.load(idx, HashEmbedder(64)).chunks) > 0
        assert sources(srv.url, "人才公寓资助")
    assert killed >= 3  # most kills landed mid-build

    # The server killed in the middle of its own rebuild comes back on the previous snapshot.
    srv_snapshot = httpx.get(f"{srv.url}/api/health").json()["snapshot"]
    httpx.post(f"{srv.url}/api/index/rebuild", params={"full": "true"}, headers=AUTH)
    time.sleep(0.8)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    on_disk = layout.current_snapshot(idx)
    assert on_disk is not None
    again = server_factory(corpus, idx)
    assert sources(again.url, "人才公寓资助")
    assert httpx.get(f"{again.url}/api/health").json()["snapshot"] in (srv_snapshot, on_disk.name)
    subprocess.run(build, env=env, check=True, capture_output=True)  # and the next build completes
    snapshots = [p for p in (idx / "snapshots").iterdir() if not p.name.startswith(".")]
    assert len(snapshots) <= layout.KEEP_SNAPSHOTS
