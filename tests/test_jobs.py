"""Update jobs: a large document waits in a job of its own that small updates pass, and jobs can be cancelled."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from policyqa import engine as engine_mod
from policyqa.embed import HashEmbedder
from policyqa.engine import Engine


class SlowEmbedder(HashEmbedder):
    """The hashing embedder at a few milliseconds a batch: slow enough to catch a job in the middle."""

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.01)
        return super().encode_passages(texts)


def big_document(articles: int) -> str:
    # each article long enough (over 150 characters) to be a passage of its own: one passage per article
    sentence = "第{i}号园区的产业引导基金规模为{i}亿元，用于支持第{i}号集群的企业研发、人才引进和成果转化。"
    lines = [f"第{i + 1}条 " + sentence.format(i=i) * 4 for i in range(articles)]
    return "大型园区管理办法\n\n" + "\n\n".join(lines) + "\n"


def sources(engine: Engine, q: str) -> list[str]:
    return [h.chunk.source for h in engine.search(q, 10).hits]


def wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_small_upload_passes_a_large_one(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine_mod, "LARGE_JOB", 100)
    engine = Engine(corpus, tmp_path / "idx", SlowEmbedder(64))
    engine.update()
    (corpus / "big.txt").write_text(big_document(400), encoding="utf-8")
    first = engine.wait(engine.submit("update", "big upload"), 60)
    assert first.state == "done" and list(first.report["deferred"]) == ["big.txt"]  # left to a large job
    large = next(j for j in engine.jobs.values() if j.large)
    wait_until(lambda: large.state == "running" and large.done > 0)

    (corpus / "small.txt").write_text("充电桩补贴办法\n\n第一条 充电桩建设补贴每个5000元。\n", encoding="utf-8")
    small = engine.submit("update", "small upload")
    engine.wait(small, 60)
    assert small.state == "done" and large.state in ("queued", "running")  # the small one went first
    assert sources(engine, "充电桩建设补贴")[0] == "small.txt"
    assert "big.txt" not in {d.source for d in engine.index.documents.values()}

    engine.wait(large, 120)
    assert large.state == "done" and "big.txt" in {d.source for d in engine.index.documents.values()}
    assert large.report["embedded"] < large.report["chunks"]  # it resumed: vectors from before were kept


def test_jobs_can_be_cancelled_and_deleting_a_document_stops_its_work(corpus: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(engine_mod, "LARGE_JOB", 100)
    engine = Engine(corpus, tmp_path / "idx", SlowEmbedder(64))
    engine.update()
    (corpus / "big.txt").write_text(big_document(400), encoding="utf-8")
    engine.wait(engine.submit("update", "big upload"), 60)
    large = next(j for j in engine.jobs.values() if j.large)
    wait_until(lambda: large.state == "running" and large.done > 0)
    engine.cancel(large.id)
    engine.wait(large, 30)
    assert large.state == "cancelled" and "big.txt" not in {d.source for d in engine.index.documents.values()}

    again = engine.submit("update", "try again")
    engine.wait(again, 60)
    large = next(j for j in reversed(engine.jobs.values()) if j.large)
    wait_until(lambda: large.state == "running" and large.done > 0)
    (corpus / "big.txt").unlink()  # what DELETE /api/documents does, then it submits an update
    removal = engine.submit("update", "removed big.txt")
    engine.wait(removal, 60)
    engine.wait(large, 30)
    assert removal.state == "done" and large.state == "done" and large.report["embedded"] == 0
