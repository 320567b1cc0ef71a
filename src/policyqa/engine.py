"""The running state shared by the service and the CLI: the embedder and the index snapshot being served.

A search reads `self.index` once, so swapping in a new snapshot never disturbs a search under way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from policyqa import index as index_mod
from policyqa.chunk import ChunkSettings
from policyqa.embed import Embedder, load_embedder
from policyqa.errors import IndexMismatchError, IndexMissingError
from policyqa.index import BuildReport, Index
from policyqa.search import SearchOptions, SearchResult, search


class Engine:
    def __init__(
        self, corpus_dir: Path, index_dir: Path, embedder: Embedder, chunking: ChunkSettings | None = None
    ) -> None:
        self.corpus_dir = corpus_dir
        self.index_dir = index_dir
        self.embedder = embedder
        self.chunking = chunking or ChunkSettings()
        self.index: Index | None = None
        self._update_lock = threading.Lock()

    @classmethod
    def open(
        cls, corpus_dir: Path, index_dir: Path, model: str, model_dir: Path | None, threads: int | None = None
    ) -> Engine:
        return cls(corpus_dir, index_dir, load_embedder(model, model_dir, threads))

    def load(self) -> Index:
        """Serve the snapshot on disk (strict: a missing or mismatched index is an error)."""
        self.index = index_mod.load(self.index_dir, self.embedder)
        return self.index

    def update(self, force: bool = False, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Bring the index up to date with the corpus and serve the result."""
        with self._update_lock:
            report = index_mod.build(self.corpus_dir, self.index_dir, self.embedder, self.chunking, progress, force)
            if self.index is None or self.index.name != report.snapshot:
                self.load()
            return report

    def ensure(self) -> BuildReport | None:
        """Serve what is on disk, building it first when there is none or it was built differently."""
        try:
            self.load()
        except (IndexMissingError, IndexMismatchError):
            return self.update()
        return None

    def search(self, query: str, k: int = 5, options: SearchOptions | None = None) -> SearchResult:
        current = self.index
        if current is None:
            raise IndexMissingError("the index is not loaded yet; wait for /api/health to answer 200")
        return search(current, self.embedder, query, k, options)
