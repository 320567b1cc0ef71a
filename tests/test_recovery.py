"""Damaged snapshots: the newest whole one is served, `build` repairs, the service never sticks at 503."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from policyqa.embed import HashEmbedder
from policyqa.engine import Engine
from policyqa.errors import IndexMissingError, ModelMismatchError
from policyqa.snapshot import index, layout
from policyqa.snapshot.refresh import refresh


def _truncate(name: str, keep: Callable[[bytes], int]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: keep(data)])

    return damage


def _garbage_current(folder: Path) -> None:
    (folder.parent.parent / "CURRENT").write_bytes(b"\xff\xfe\x00garbage\x80\x81/../..")


DAMAGE = {
    "vectors.npy truncated": _truncate("vectors.npy", lambda d: len(d) // 2),
    "chunks.jsonl cut mid-line": _truncate("chunks.jsonl", lambda d: len(d) - 40),
    "chunks.jsonl cut at a line end": _truncate("chunks.jsonl", lambda d: d.rstrip(b"\n").rfind(b"\n") + 1),
    "sentences.npy truncated": _truncate("sentences.npy", lambda d: len(d) - 64),
    "lexical postings truncated": _truncate("lexical.indices.npy", lambda d: len(d) // 3),
    "words.jsonl truncated": _truncate("words.jsonl", lambda d: len(d) // 2),
    "meta.json garbage": lambda f: (f / "meta.json").write_bytes(b"\x00\x01{not json"),
    "binary garbage in CURRENT": _garbage_current,
    "CURRENT names a missing snapshot": lambda f: (f.parent.parent / "CURRENT").write_text("20990101T000000-1\n"),
}


def two_snapshots(corpus: Path, idx: Path, embedder: HashEmbedder) -> tuple[str, Path]:
    """An older whole snapshot and the current one, which the caller damages."""
    older = refresh(corpus, idx, embedder).snapshot
    (corpus / "new.txt").write_text("新能源补贴办法\n\n第一条 充电桩建设补贴每个5000元。\n", encoding="utf-8")
    refresh(corpus, idx, embedder)
    current = layout.current_snapshot(idx)
    assert current is not None and current.name != older
    return older, current


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_snapshot_is_passed_over_and_build_repairs_it(
    kind: str, corpus: Path, tmp_path: Path, embedder
) -> None:
    idx = tmp_path / "idx"
    older, current = two_snapshots(corpus, idx, embedder)
    DAMAGE[kind](current)

    pointer = "CURRENT" in kind  # the snapshot is whole; only the pointer to it is not
    served = index.load(idx, embedder)  # the newest whole snapshot, saying what it passed over
    assert served.name == (current.name if pointer else older)
    assert any(("CURRENT" if pointer else current.name) in d for d in served.damage)
    engine = Engine.start(corpus, idx, "hash:64", None)
    assert engine.index is not None and engine.index.name == served.name

    report = refresh(corpus, idx, embedder)  # repairs instead of crashing
    assert report.changed and report.snapshot not in (older, current.name)
    assert report.repaired
    fresh = index.load(idx, embedder)
    assert fresh.name == report.snapshot and not fresh.damage
    assert {c.source for c in fresh.chunks} == {"measures.txt", "sub/datacenter.md", "new.txt"}
    assert (idx / "snapshots" / current.name).exists() == pointer  # a damaged one is set aside for good


def test_when_no_snapshot_loads_the_error_says_which_and_why(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    older, current = two_snapshots(corpus, idx, embedder)
    DAMAGE["vectors.npy truncated"](current)
    DAMAGE["chunks.jsonl cut mid-line"](idx / "snapshots" / older)
    with pytest.raises(IndexMissingError, match=f"{current.name} is damaged.*{older} is damaged"):
        index.load(idx, embedder)
    engine = Engine.start(corpus, idx, "hash:64", None)
    assert engine.index is None and "damaged" in engine.damage[0]
    engine.wait(engine.submit("update", "start"), 60)
    assert engine.index is not None and len(engine.index.documents) == 3


def test_cli_build_repairs_and_search_warns(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    _older, current = two_snapshots(corpus, idx, embedder)
    DAMAGE["binary garbage in CURRENT"](current)
    env = {**os.environ, "POLICYQA_MODEL": "hash:64"}
    base = [sys.executable, "-m", "policyqa"]
    search = subprocess.run([*base, "search", "充电桩", "--index", str(idx)], env=env, capture_output=True, text=True)
    assert search.returncode == 0 and "Traceback" not in search.stderr and "CURRENT" in search.stderr
    build = subprocess.run(
        [*base, "build", "--corpus", str(corpus), "--index", str(idx)], env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    assert "Traceback" not in build.stderr and "repaired: CURRENT" in build.stderr
    assert index.load(idx, embedder).damage == ()


def test_another_model_is_refused_not_silently_rebuilt(corpus: Path, tmp_path: Path, embedder) -> None:
    idx = tmp_path / "idx"
    first = refresh(corpus, idx, embedder).snapshot
    other = HashEmbedder(32)
    with pytest.raises(ModelMismatchError, match="--rebuild-for-model"):
        refresh(corpus, idx, other)
    with pytest.raises(ModelMismatchError):
        Engine.start(corpus, idx, "hash:32", None)
    assert layout.current_snapshot(idx).name == first  # type: ignore[union-attr]
    env = {**os.environ, "POLICYQA_MODEL": "hash:32"}
    cmd = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(idx)]
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "--rebuild-for-model" in refused.stderr
    assert subprocess.run([*cmd, "--rebuild-for-model"], env=env, capture_output=True).returncode == 0
    assert json.loads((layout.current_snapshot(idx) / "meta.json").read_text())["dim"] == 32  # type: ignore[operator]


def test_the_service_serves_the_whole_snapshot_and_says_why(corpus: Path, tmp_path: Path, embedder, server_factory):
    idx = tmp_path / "idx"
    older, current = two_snapshots(corpus, idx, embedder)
    DAMAGE["chunks.jsonl cut at a line end"](current)
    srv = server_factory(corpus, idx)
    health = httpx.get(f"{srv.url}/api/health").json()
    assert health["status"] == "ok" and any(current.name in d and "damaged" in d for d in health["damaged"])
    deadline = time.monotonic() + 60  # the start update writes a whole snapshot with every document
    while httpx.get(f"{srv.url}/api/health").json()["snapshot"] in (older, current.name):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert httpx.get(f"{srv.url}/api/health").json()["documents"] == 3


def test_the_service_rebuilds_when_nothing_loads_and_refuses_another_model(
    corpus: Path, tmp_path: Path, embedder, server_factory
) -> None:
    idx = tmp_path / "idx"
    older, current = two_snapshots(corpus, idx, embedder)
    DAMAGE["vectors.npy truncated"](current)
    DAMAGE["vectors.npy truncated"](idx / "snapshots" / older)
    srv = server_factory(corpus, idx)  # waits for 200: the rebuild from the corpus
    health = httpx.get(f"{srv.url}/api/health").json()
    assert health["documents"] == 3 and health["damaged"]

    refused = server_factory(corpus, idx, wait=False, POLICYQA_MODEL="hash:32")
    deadline = time.monotonic() + 60
    while True:
        try:
            resp = httpx.get(f"{refused.url}/api/health")
            if resp.json().get("status") == "failed":
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert resp.status_code == 503 and "--rebuild-for-model" in resp.json()["error"]
    assert layout.current_snapshot(idx).name == health["snapshot"]  # type: ignore[union-attr]
