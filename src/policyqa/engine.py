"""The running state shared by the service and the CLI: the embedder, the snapshot being served, and the
update jobs that replace it.

A search reads `self.index` once, so swapping in a new snapshot never disturbs a search under way. Updates
run one at a time on a worker thread; a deleted document is hidden from searches at once, before the
snapshot without it is published.
"""

from __future__ import annotations

import errno
import gc
import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from policyqa.embed import Embedder, load_embedder
from policyqa.errors import (
    CorpusError,
    IndexMismatchError,
    IndexMissingError,
    ModelMismatchError,
    PolicyQAError,
    StoreError,
)
from policyqa.ingest import corpus as corpus_mod
from policyqa.ingest import sidecar
from policyqa.ingest.chunk import ChunkSettings
from policyqa.ingest.limits import Limits
from policyqa.ingest.watcher import WALK_EVERY, CorpusWatcher
from policyqa.messages import chinese
from policyqa.search.filters import Filters
from policyqa.search.noanswer import default_model, offtopic_vectors
from policyqa.search.ranking import SearchOptions, SearchResult, search
from policyqa.snapshot import index as index_mod
from policyqa.snapshot.index import Index
from policyqa.snapshot.layout import check_meta, current_snapshot
from policyqa.snapshot.refresh import refresh
from policyqa.snapshot.steps import BuildReport, Progress, file_stats
from policyqa.store import default_store
from policyqa.store.base import Store, Vectors

log = logging.getLogger("policyqa")
KEEP_JOBS = 50
# An update leaves a document with more passages than this to embed to a "large" job of its own, which any
# later job interrupts (keeping the vectors embedded so far) and which resumes after it.
LARGE_JOB = 2000
MERGE_YIELDS = 3  # a merge job gives way to later jobs this many times (each time it starts over), then finishes


class Observer(Protocol):
    """What the service counts as it happens (api/observe.py): each search, each job as it ends."""

    def searched(self, result: SearchResult) -> None: ...

    def job_done(self, job: Job) -> None: ...


class Cancelled(Exception):
    """Raised inside a build by its progress callback when its job is cancelled or preempted."""


@dataclass
class Job:
    """One index update, as reported by the admin API. Only the engine's worker changes it."""

    id: str
    kind: str  # "update" (incremental), "rebuild" (re-embed everything) or "merge" (an update that merges segments)
    reason: str
    state: str = "queued"  # queued -> running -> done | failed | cancelled (a preempted large job: queued again)
    large: bool = False  # embeds documents an update deferred; later jobs pass it
    cancel: str | None = None  # why the worker should stop this job at its next batch
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    done: int = 0  # passages embedded so far (while a scan is parsed: its pages read by OCR)
    total: int = 0  # passages to embed (pages of the scan to read)
    unit: str = "passages"  # what done and total count: "passages" or "pages"
    error: str | None = None
    report: dict[str, Any] | None = None
    yielded: int = 0  # times a later job went ahead of it (a merge job does so at most MERGE_YIELDS times)

    def as_dict(self) -> dict[str, Any]:
        """The job, with a Chinese `message` beside an English `error` (for the page)."""
        return {**asdict(self), "message": chinese(self.error, 500) if self.error else None}


def disk_error(exc: OSError) -> str:
    """An update that could not write (or read) the index, said as the API says an OSError: what and why."""
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    where = f" at {exc.filename}" if exc.filename else ""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    advice = "free disk space on the server" if full else "check the index disk (full, read-only or failing)"
    return f"the index could not be written{where}: {exc.strerror or exc} ({name}); {advice}; the update is retried"


def corpus_signature(corpus_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """What a change to the corpus folder changes (a walk of the folder; see seen_signature)."""
    return seen_signature(corpus_dir, file_stats(corpus_dir)) if corpus_dir.is_dir() else ()


def seen_signature(corpus_dir: Path, stats: dict[str, list[int]]) -> tuple[tuple[str, int, int], ...]:
    """Each file's path, size and modification time as a walk found them, and the operators' known questions
    (a hand edit of that file is a change too)."""
    return signature(stats) + sidecar.stamp(corpus_dir, sidecar.QUESTIONS)


def signature(stats: dict[str, list[int]]) -> tuple[tuple[str, int, int], ...]:
    return tuple((source, size, mtime) for source, (size, mtime) in stats.items())


def settled(ix: Index) -> Index:
    """`ix`, with what the process holds so far moved out of the garbage collector's sight (gc.freeze).
    A loaded index is millions of objects (passages and their dicts) that live as long as it does and
    hold no cycles (freed by their counts when a snapshot is replaced); each full collection walked them
    all, about a second at a million passages, at a moment no one chose: in the middle of the next
    update, holding the interpreter against the searches. Garbage is collected first, so only what is
    alive is frozen; later full collections walk only what came after."""
    gc.collect()
    gc.freeze()
    return ix


def warm_up(embedder: Embedder) -> None:
    """Load an encoder that loads its model on first use, and embed the chit-chat list that the first question
    would otherwise wait for, in the background (while the index loads)."""
    warm = getattr(embedder, "warm", None)
    if warm is None:
        return
    warm()

    def chit_chat() -> None:
        try:
            if default_model().applies_to(embedder):
                offtopic_vectors(embedder)
        except PolicyQAError as exc:  # the first search meets it again, and says so
            log.warning("%s", exc)

    threading.Thread(target=chit_chat, name="policyqa-warm", daemon=True).start()


class Engine:
    def __init__(
        self,
        corpus_dir: Path,
        index_dir: Path,
        embedder: Embedder,
        chunking: ChunkSettings | None = None,
        store: Store | None = None,
    ) -> None:
        self.corpus_dir = corpus_dir
        self.index_dir = index_dir
        self.embedder = embedder
        self.chunking = chunking or ChunkSettings()
        self.store = store or default_store()  # where snapshots keep their vectors and BM25
        self.index: Index | None = None
        self.hidden: frozenset[str] = frozenset()  # doc_ids deleted but still in the served snapshot
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.last_error: str | None = None
        self.damage: tuple[str, ...] = ()  # snapshots that failed to load at start or since, with why
        self.allow_model_change = False  # rebuild an index made with another model instead of refusing it
        self.limits: Limits | None = None  # what parsing one corpus file may cost (None: the defaults)
        self.delta_from: int | None = None  # passages from which updates write only what changed (snapshot/update.py)
        self._update_lock = threading.Lock()
        self._jobs_lock = threading.Condition()
        self._queue: list[Job] = []
        self._worker: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._vectors: dict[str, Vectors] = {}  # embedded by builds that were stopped, for the next
        self.watcher: CorpusWatcher | None = None  # file events saying when poll() need walk the corpus
        self.observer: Observer | None = None  # told of each search and each finished job (metrics)

    @classmethod
    def open(
        cls,
        corpus_dir: Path,
        index_dir: Path,
        model: str,
        model_dir: Path | None,
        threads: int | None = None,
        micro_batch: bool = True,
        store: Store | None = None,
    ) -> Engine:
        return cls(corpus_dir, index_dir, load_embedder(model, model_dir, threads, micro_batch), store=store)

    @classmethod
    def start(
        cls,
        corpus_dir: Path,
        index_dir: Path,
        model: str,
        model_dir: Path | None,
        threads: int | None = None,
        micro_batch: bool = True,
        allow_model_change: bool = False,
        store: Store | None = None,
    ) -> Engine:
        """Open the engine and load the index on disk at the same time (faster service start).

        A damaged snapshot is passed over for the newest whole one (`damage` says which and why); without
        any, the engine starts empty and the first update builds one. An index built with another model is
        refused (ModelMismatchError) unless `allow_model_change`."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="policyqa-read") as pool:
            pending = pool.submit(lambda: index_mod.read(index_dir, store).warm())
            engine = cls.open(corpus_dir, index_dir, model, model_dir, threads, micro_batch, store)
            engine.allow_model_change = allow_model_change
            warm_up(engine.embedder)
            try:
                ix = pending.result()
                engine.damage = ix.damage
                check_meta(ix.meta, engine.embedder.name, engine.embedder.dim)
                engine.index = settled(ix)
            except ModelMismatchError:
                if not allow_model_change:
                    raise
                log.warning("rebuilding the index in %s for model %s", index_dir, engine.embedder.name)
            except StoreError as exc:  # served once the store answers (poll), or built by the start update
                engine.last_error = str(exc)
                log.error("%s; retrying", exc)
            except (IndexMissingError, IndexMismatchError) as exc:
                if "damaged" in str(exc):
                    engine.damage = (str(exc),)
                log.warning("%s; building the index from %s", exc, corpus_dir)
        for note in engine.damage:
            log.error("%s", note)
        return engine

    # --- serving ------------------------------------------------------------------------------

    def load(self) -> Index:
        """Serve the newest whole snapshot on disk (a missing or mismatched index is an error)."""
        ix = index_mod.load(self.index_dir, self.embedder, self.store, self.index).warm()
        self.index = settled(ix)
        if ix.damage:
            self.damage = tuple(dict.fromkeys((*self.damage, *ix.damage)))
        return ix

    def search(
        self, query: str, k: int = 5, options: SearchOptions | None = None, filters: Filters | None = None
    ) -> SearchResult:
        current = self.index
        if current is None:
            raise IndexMissingError("the index is not loaded yet; wait for /api/health to answer 200")
        result = search(current, self.embedder, query, k, options, exclude=self.hidden, filters=filters)
        if self.observer is not None:
            self.observer.searched(result)
        return result

    def hide(self, doc_id: str) -> None:
        """Stop returning a document's passages now; the next snapshot drops them for good."""
        self.hidden = self.hidden | {doc_id}

    def hide_missing(self) -> None:
        """Hide the served documents whose files are gone: deleted while the service was down, or by a delete
        acknowledged just before a crash, they must not answer again while the start's update runs."""
        ix = self.index
        if ix is not None:
            gone = {d.doc_id for d in ix.documents.values() if not (self.corpus_dir / d.source).exists()}
            self.hidden = self.hidden | gone

    def unhide(self, doc_id: str) -> None:
        self.hidden = self.hidden - {doc_id}

    # --- updating -----------------------------------------------------------------------------

    def update(
        self, force: bool = False, progress: Progress | None = None, defer_over: int | None = None
    ) -> BuildReport:
        """Bring the index up to date with the corpus and serve the result (in the calling thread). Documents
        with more than `defer_over` passages to embed are left for a later update (BuildReport.deferred)."""
        with self._update_lock:
            for name in corpus_mod.clean_leftovers(self.corpus_dir):
                log.info("removed %s, an upload left half-written by a crash", name)
            stats = file_stats(self.corpus_dir) if self.corpus_dir.is_dir() else None
            seen = seen_signature(self.corpus_dir, stats) if stats is not None else ()
            if force:
                self._vectors.clear()
            try:
                report = refresh(
                    self.corpus_dir,
                    self.index_dir,
                    self.embedder,
                    self.chunking,
                    progress,
                    force,
                    self.allow_model_change,
                    self.limits,
                    self._vectors,
                    defer_over,
                    self.store,
                    self.delta_from,
                    stats,
                    self.index,
                )
            except (Cancelled, CorpusError):
                self._seen = seen  # stopped on purpose, or the folder itself is the problem: wait for a change
                raise
            # What the corpus looked like is recorded only once its snapshot is published: after an update that
            # failed (a full disk), the next look finds the change still pending and updates again.
            self._seen = seen
            if not report.deferred:
                self._vectors.clear()
            if self.index is None or self.index.name != report.snapshot:
                self.load()
            if self.index is not None:
                # Hidden: deleted from the corpus but still in the served snapshot. A document whose file is
                # back (or was never removed: a delete that failed) is shown again.
                present = {d.doc_id: d.source for d in self.index.documents.values()}
                gone = {d for d in self.hidden if d in present and not (self.corpus_dir / present[d]).exists()}
                self.hidden = frozenset(gone)
            return report

    def ensure(self) -> BuildReport | None:
        """Serve what is on disk, building it first when there is none or it was built differently."""
        try:
            self.load()
        except (IndexMissingError, IndexMismatchError):
            return self.update()
        return None

    def submit(self, kind: str = "update", reason: str = "", large: bool = False) -> Job:
        """Queue an update (or a full rebuild) for the worker thread. A job still waiting in the queue is
        shared by later requests, since it will see their changes too. A new job goes ahead of large jobs
        and interrupts a running one (which resumes after it, keeping what it embedded)."""
        with self._jobs_lock:
            waiting = next((j for j in self._queue if j.state == "queued" and j.large == large), None)
            if waiting is not None:
                if kind == "rebuild":
                    waiting.kind = "rebuild"
                return waiting
            job = Job(f"job-{next(self._ids)}-{int(time.time())}", kind, reason, large=large)
            at = len(self._queue)
            if not large:  # ahead of the large jobs, but never ahead of the running one
                at = next((i for i, j in enumerate(self._queue) if j.large and j.state == "queued"), at)
            self._queue.insert(at, job)
            if not large:
                for other in self._queue:
                    # a merge loses its work when it gives way: after a few times it finishes first
                    gives_way = other.kind != "merge" or other.yielded < MERGE_YIELDS
                    if other.large and other.state == "running" and gives_way:
                        other.cancel = "preempted"
            self.jobs[job.id] = job
            while len(self.jobs) > KEEP_JOBS:
                self.jobs.popitem(last=False)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="policyqa-update", daemon=True)
                self._worker.start()
            self._jobs_lock.notify_all()
            return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or a running one at its next batch (nothing it did is published)."""
        with self._jobs_lock:
            job = self.jobs.get(job_id)
            if job is None or job.state not in ("queued", "running"):
                return job
            if job.state == "queued":
                self._queue.remove(job)
                job.state, job.finished = "cancelled", time.time()
                self._jobs_lock.notify_all()
            else:
                job.cancel = "cancelled"
            return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """Block until a job has finished (for the CLI and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._jobs_lock:
            while job.state in ("queued", "running"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._jobs_lock.wait(left)
        return job

    def _work(self) -> None:
        while True:
            with self._jobs_lock:
                if not self._queue:
                    self._worker = None
                    return
                job = self._queue[0]
                job.state, job.started, job.cancel = "running", time.time(), None

            def progress(done: int, total: int, unit: str = "passages", job: Job = job) -> None:
                job.done, job.total, job.unit = done, total, unit
                if job.cancel:
                    raise Cancelled(job.cancel)

            requeue = cancelled = False
            try:
                defer = None if job.large or job.kind == "rebuild" else LARGE_JOB
                report = self.update(force=job.kind == "rebuild", progress=progress, defer_over=defer)
                job.report = asdict(report)
                job.state, self.last_error = "done", None
                log.info("index %s: %s (%d embedded)", job.kind, report.snapshot, report.embedded)
                if report.deferred:
                    self.submit("update", f"large documents: {', '.join(report.deferred)}", large=True)
                elif report.merge_pending:
                    self.submit("merge", "segments to merge", large=True)
            except Cancelled as exc:
                requeue = str(exc) == "preempted"
                job.yielded += requeue
                cancelled = not requeue
                log.info("index %s %s: %s", job.kind, job.id, exc)
            except (PolicyQAError, OSError) as exc:  # a full disk says so, without a traceback
                self._failed(job, disk_error(exc) if isinstance(exc, OSError) else str(exc))
            except Exception as exc:  # a bug must not kill the worker: report it, keep serving the old index
                self._failed(job, f"{type(exc).__name__}: {exc}", bug=True)
            with self._jobs_lock:
                # the state changes only under the lock: a job seen as "queued" outside it could be cancelled
                # (taken out of the queue) by another thread between here and its removal
                if job in self._queue:
                    self._queue.remove(job)
                if requeue:
                    job.state = "queued"
                    self._queue.append(job)
                else:
                    job.state = "cancelled" if cancelled else job.state
                    job.finished = time.time()
                self._jobs_lock.notify_all()
            if self.observer is not None and not requeue:
                self.observer.job_done(job)

    def _failed(self, job: Job, error: str, bug: bool = False) -> None:
        job.state, job.error = "failed", error
        self.last_error = error
        log.error("index %s failed: %s", job.kind, error, exc_info=bug)
        if self._seen is None:
            self._seen = ()  # the start's update failed: the next look (poll) tries again

    def job_states(self) -> dict[str, int]:
        """How many of the jobs kept are in each state (read under the lock the worker changes them under)."""
        with self._jobs_lock:
            states: dict[str, int] = {}
            for job in self.jobs.values():
                states[job.state] = states.get(job.state, 0) + 1
            return states

    def status(self) -> dict[str, Any]:
        with self._jobs_lock:
            running = next((j for j in self._queue if j.state == "running"), None)
            queued = sum(1 for j in self._queue if j.state == "queued")
            last = next(reversed(self.jobs.values()), None) if self.jobs else None
            current = running or last
            ix = self.index
            return {
                "state": "running" if running else ("queued" if queued else "idle"),
                "job": current.as_dict() if current else None,
                "queued": queued,
                "last_error": self.last_error,
                "last_message": chinese(self.last_error, 500) if self.last_error else None,
                "snapshot": ix.name if ix else None,
                "documents": len(ix.documents) if ix else 0,
                "chunks": len(ix.chunks) if ix else 0,
            }

    # --- watching -----------------------------------------------------------------------------

    def watch(self, every: float = WALK_EVERY) -> None:
        """From now on poll() walks the corpus folder only when file events say something in it moved, and
        at least every `every` seconds (watcher.py)."""
        if self.watcher is None:
            self.watcher = CorpusWatcher(self.corpus_dir, every).start()

    def poll(self) -> Job | None:
        """One look for outside changes: files dropped into (or removed from) the corpus folder queue an
        update; a snapshot published by another process (`policyqa build`) is loaded."""
        with self._jobs_lock:
            busy = bool(self._queue)
        if busy:
            return None
        if self.watcher is None or self.watcher.due():
            signature = corpus_signature(self.corpus_dir)
            if self._seen is not None and signature != self._seen:
                return self.submit("update", "the corpus folder changed")
        folder = current_snapshot(self.index_dir)
        if folder is not None and (self.index is None or folder.name != self.index.name):
            try:
                with self._update_lock:
                    ix = index_mod.read_snapshot(folder, self.store, self.index)
                    check_meta(ix.meta, self.embedder.name, self.embedder.dim)
                    self.index = settled(ix.warm())
            except StoreError as exc:  # down, not damaged: look again next time
                log.warning("%s; serving the previous snapshot", exc)
            except Exception as exc:  # damaged or foreign: keep serving, and repair it with an update
                note = f"snapshot {folder.name} is damaged ({type(exc).__name__}: {exc}); serving the previous one"
                log.warning("%s", note)
                if note not in self.damage:
                    self.damage = (*self.damage, note)
                    return self.submit("update", "repair a damaged snapshot")
        return None
