"""The store seam: a store that fails answers 503 with the reason and the service recovers with it; Qdrant
on a server publishes by alias and drops the collections of pruned snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException

from policyqa.engine import Engine
from policyqa.errors import IndexMismatchError, StoreError
from policyqa.search.ranking import search
from policyqa.snapshot import index, layout
from policyqa.snapshot.refresh import refresh
from policyqa.store.qdrant import ALIAS, QdrantStore

from .conftest import app_client


@pytest.fixture
def qdrant_client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder, QdrantStore())


def test_a_store_that_fails_gives_503_with_the_reason_and_recovers(qdrant_client, monkeypatch) -> None:
    engine = qdrant_client.app.state.policyqa.engine
    reader = engine.index.vectors.reader
    healthy = reader.client.query_points

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ResponseHandlingException(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(reader.client, "query_points", down)
    resp = qdrant_client.get("/api/search", params={"q": "人才公寓"})
    assert resp.status_code == 503 and resp.headers["retry-after"]
    body = resp.json()
    assert "Qdrant store" in body["error"] and "Connection refused" in body["error"] and body["message"]
    monkeypatch.setattr(reader.client, "query_points", healthy)  # the store is back
    resp = qdrant_client.get("/api/search", params={"q": "人才公寓"})
    assert resp.status_code == 200 and "人才公寓" in resp.json()["results"][0]["text"]


class Server:
    """One in-memory Qdrant shared by every client the store opens, standing in for a server."""

    def __init__(self) -> None:
        self.client = QdrantClient(":memory:")
        self.client.close = lambda **kwargs: None  # type: ignore[method-assign]


# The stand-in is local mode, which says that payload indexes and exact-search parameters are for servers.
@pytest.mark.filterwarnings("ignore:Payload indexes:UserWarning", "ignore:Local mode performs:UserWarning")
def test_a_server_gets_a_collection_per_snapshot_and_the_alias_follows(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    server = Server()
    store = QdrantStore(url="http://qdrant.invalid:6333")
    monkeypatch.setattr(store, "client", lambda path=None: server.client)
    first = refresh(corpus, tmp_path / "idx", embedder, store=store).snapshot
    (corpus / "new.txt").write_text("新能源补贴办法\n\n第一条 充电桩建设补贴每个5000元。\n", encoding="utf-8")
    second = refresh(corpus, tmp_path / "idx", embedder, store=store).snapshot
    aliases = {a.alias_name: a.collection_name for a in server.client.get_aliases().aliases}
    assert aliases == {ALIAS: f"{ALIAS}-{second}"}
    assert not any(p.is_dir() for p in layout.current_snapshot(tmp_path / "idx").iterdir())  # nothing local
    for _ in range(2):  # older snapshots are pruned, and their collections dropped
        (corpus / "new.txt").write_text(f"新能源补贴办法\n\n第一条 补贴{_}元。\n", encoding="utf-8")
        refresh(corpus, tmp_path / "idx", embedder, store=store)
    names = {c.name for c in server.client.get_collections().collections}
    assert f"{ALIAS}-{first}" not in names and len(names) == layout.KEEP_SNAPSHOTS
    ix = index.load(tmp_path / "idx", embedder, store)
    with pytest.raises(IndexMismatchError, match="on a Qdrant server"):
        index.load(tmp_path / "idx", embedder, QdrantStore())  # the same snapshot, read in local mode
    assert search(ix, embedder, "充电桩补贴", k=1).hits[0].chunk.source == "new.txt"


def test_a_store_down_at_start_is_not_damage_and_the_watcher_loads_it_when_back(
    corpus: Path, tmp_path: Path, embedder, monkeypatch
) -> None:
    store = QdrantStore()
    refresh(corpus, tmp_path / "idx", embedder, store=store)
    opened = QdrantStore.open

    def down(self: QdrantStore, folder: Path, owners: Any) -> Any:
        raise StoreError("the Qdrant store at http://qdrant:6333 failed: ResponseHandlingException: timed out")

    monkeypatch.setattr(QdrantStore, "open", down)
    engine = Engine.start(corpus, tmp_path / "idx", "hash:64", None, store=store)
    assert engine.index is None and engine.damage == () and "timed out" in (engine.last_error or "")
    assert engine.poll() is None and engine.index is None  # still down: nothing set aside, nothing queued
    monkeypatch.setattr(QdrantStore, "open", opened)
    engine.poll()
    assert engine.index is not None and engine.search("人才公寓").hits
    assert not list((tmp_path / "idx" / "snapshots").glob(".damaged-*"))
