"""Shared fixtures: tiny Chinese corpora in temp folders, the hashing embedder, the seed document."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from policyqa.embed import HashEmbedder
from policyqa.store import connect
from policyqa.store.base import Store


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """An engine freezes what a load leaves alive (engine.settled); in a long-lived service that is the index,
    here it is also each test's objects, which would never be collected after the test."""
    yield
    gc.unfreeze()


if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "corpus" / "nanjing-hitech-clusters.txt"

TINY = """关于支持科技企业发展的若干措施

一、总体要求

（一）基本原则
坚持创新驱动，强化企业主体地位。支持高新技术企业做大做强。

二、主要措施

（一）加大资金支持
对新认定的高新技术企业给予一次性奖励20万元。对研发投入超过1000万元的企业，按照10%给予补助。

（二）优化人才服务
一是引进领军人才。对顶尖人才团队给予最高1亿元资助。二是完善住房保障。为人才提供人才公寓。
"""

# A notice with an issuer, a 文号 and a date (filters, metadata, the reader)
NOTICE = """甲市人力资源局关于发放稳岗补贴的通知

甲人社发〔2020〕3号

一、补贴对象
稳岗补贴发放给受疫情影响的中小企业。每家企业最高补贴10万元。

二、申请方式
稳岗补贴通过网上申请。企业登录平台提交材料。

甲市人力资源局
2020年2月10日
"""


TINY2 = """数据中心建设管理办法

第一条 为规范数据中心建设，制定本办法。

第二条 新建数据中心的电能利用效率不得高于1.3。
"""


def app_client(
    corpus: Path, index: Path, embedder: HashEmbedder, store: Store | None = None, **settings: str
) -> Iterator[TestClient]:
    """A TestClient over the app of an engine built on `corpus` with the hashing embedder (and `store`)."""
    from fastapi.testclient import TestClient

    from policyqa.api import create_app
    from policyqa.config import Settings
    from policyqa.engine import Engine

    engine = Engine(corpus, index, embedder, store=store)
    engine.ensure()
    app = create_app(Settings(corpus_dir=corpus, index_dir=index, model="hash:64", **settings), engine)
    with TestClient(app) as client:
        yield client


# The engines the search, lifecycle and service tests run against (Qdrant in local mode: no server needed).
STORES = ["faiss", "qdrant"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    return connect(request.param)


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "measures.txt").write_text(TINY, encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "datacenter.md").write_text(TINY2, encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `policyqa serve` process on a free loopback port."""

    def __init__(self, corpus: Path, index: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = index.parent / f"server-{self.port}.log"
        cmd = [
            sys.executable,
            "-m",
            "policyqa",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--corpus",
            str(corpus),
            "--index",
            str(index),
        ]
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def start(corpus: Path, index: Path | None = None, wait: bool = True, **env: str) -> Server:
        srv = Server(corpus, index or tmp_path / "index", {"POLICYQA_MODEL": "hash:64", **env})
        servers.append(srv)
        if wait:
            srv.wait_ready()
        return srv

    yield start
    for srv in servers:
        srv.stop()
