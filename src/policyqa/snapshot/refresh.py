"""Bring the index up to date with the corpus: an incremental update when one can extend the served snapshot
(update.py), else a whole build (build.py), one at a time per index folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from policyqa.embed import Embedder
from policyqa.ingest.chunk import ChunkSettings
from policyqa.ingest.limits import Limits
from policyqa.snapshot import build, update
from policyqa.snapshot.index import Index
from policyqa.snapshot.layout import build_lock, clean_leftovers
from policyqa.snapshot.steps import BuildReport, Inputs, Progress
from policyqa.store import default_store
from policyqa.store.base import Store, Vectors

log = logging.getLogger("policyqa")


def refresh(
    corpus: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings | None = None,
    progress: Progress | None = None,
    force: bool = False,
    allow_model_change: bool = False,
    limits: Limits | None = None,
    cache: dict[str, Vectors] | None = None,
    defer_over: int | None = None,
    store: Store | None = None,
    delta_from: int | None = None,
    stats: dict[str, list[int]] | None = None,
    previous: Index | None = None,
) -> BuildReport:
    """Build or update the index from the corpus folder.

    Every document is parsed (cheap); only chunks whose id is not in the previous snapshot are embedded
    (expensive). A document that fails to parse keeps its previously indexed chunks, and is reported.
    Damaged snapshots are set aside and the build starts from the newest whole one (or from nothing).
    An index built with another model is refused unless `allow_model_change` (then rebuilt for this one).
    `cache` holds vectors embedded by builds that were stopped (and gains this build's, as they come);
    a document with more than `defer_over` passages still to embed is left as it was, for a later build.
    `store` keeps the vectors and BM25 (default: FAISS and arrays in the snapshot folder).
    From `delta_from` passages on (default update.DELTA_FROM), a store that keeps segments gets a snapshot
    that shares the previous one's unchanged data and adds what changed (update.py); `force` writes a whole
    one. `stats`: the corpus files' sizes and times (file_stats) when the caller has just read them (one walk
    of a large folder is seconds). `previous`: the snapshot the caller serves, whose documents an update need
    not read again.
    """
    began = time.perf_counter()
    store = store or default_store()
    settings = settings or ChunkSettings()
    cache = {} if cache is None else cache
    inputs = Inputs(corpus, index_dir, embedder, settings, store, limits, cache, progress, defer_over, began)
    with build_lock(index_dir):
        for name in clean_leftovers(index_dir, store):
            log.info("removed %s, left by a build that was stopped", name)
        report = None if force else update.update(inputs, delta_from, stats, previous)
        if report is not None:
            return report
        return build.build(inputs, force, allow_model_change, stats)
