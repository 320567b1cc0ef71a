"""What operators watch: `GET /metrics` in Prometheus text format, a request id on every response, and one log
line for every request that carries it (so a user's report can be found in the log).

Counters and histograms are kept in a registry of each app's own (several apps live in one test process);
what the engine holds now (documents, passages, jobs, the snapshot's age, parse failures) is read at each
scrape by a collector, so nothing goes stale between scrapes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from policyqa.api.guard import ASGIApp, HttpOnly, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from policyqa.api.deps import AppState
    from policyqa.engine import Job
    from policyqa.search.ranking import SearchResult

log = logging.getLogger("policyqa.access")

REQUEST_ID = "X-Request-ID"
# A client's own id is kept when it is short and plain (no spaces, quotes or line breaks to forge log lines)
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
# Why a file was not indexed, by the setting or the words its error names (errors of the served snapshot)
_RULES = [
    (re.compile(r"\((POLICYQA_[A-Z_]+)\)"), None),
    (re.compile(r"the limit is \d+ bytes"), "POLICYQA_MAX_UPLOAD_BYTES"),
    (re.compile(r"not UTF-8"), "file_name"),
    (re.compile(r"symbolic link"), "symbolic_link"),
    (re.compile(r"no text found"), "no_text"),
    (re.compile(r"unsupported file type"), "unsupported"),
    (re.compile(r"cannot (?:be )?read"), "unreadable"),
]


def failure_rule(error: str) -> str:
    """The rule (a limit's setting, or what was wrong) a parse failure's message names."""
    for pattern, rule in _RULES:
        found = pattern.search(error)
        if found:
            return rule or found.group(1)
    return "other"


class Metrics:
    """The app's registry: what the HTTP edge and the engine report as it happens, and the collector that
    reads the engine's state at each scrape. Also the engine's observer (Engine.observer)."""

    def __init__(self, state: AppState) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, open fds, CPU seconds
        self.requests = Counter(
            "policyqa_http_requests", "Requests answered, by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.search_seconds = Histogram(
            "policyqa_search_seconds", "Time to answer a search (the engine's)", buckets=SEARCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.not_confident = Counter(
            "policyqa_searches_not_confident", "Searches answered 未找到可靠答案 (confident: false), by reason",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        self.job_seconds = Histogram(
            "policyqa_job_seconds", "Update jobs from start to end, by kind and final state",
            ["kind", "state"], buckets=JOB_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_EngineState(state))

    def searched(self, result: SearchResult) -> None:
        self.search_seconds.observe(result.took_ms / 1000)
        confidence = result.confidence
        if confidence is not None and not confidence.confident:
            self.not_confident.labels(confidence.reason or "unknown").inc()

    def job_done(self, job: Job) -> None:
        if job.started is not None and job.finished is not None:
            self.job_seconds.labels(job.kind, job.state).observe(max(0.0, job.finished - job.started))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _EngineState:
    """Gauges read from the engine at each scrape."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        eng = self.state.engine
        ix = eng.index if eng is not None else None
        docs = GaugeMetricFamily("policyqa_documents", "Documents of the served snapshot (deleted ones excluded)")
        docs.add_metric([], len(ix.documents) - len(eng.hidden) if ix is not None and eng is not None else 0)
        passages = GaugeMetricFamily("policyqa_passages", "Passages of the served snapshot")
        passages.add_metric([], len(ix.chunks) if ix is not None else 0)
        age = GaugeMetricFamily("policyqa_snapshot_age_seconds", "Time since the served snapshot was written")
        if ix is not None:
            age.add_metric([], max(0.0, time.time() - float(ix.meta.get("created") or time.time())))
        jobs = GaugeMetricFamily("policyqa_jobs", "Update jobs kept (the last 50), by state", labels=["state"])
        states = eng.job_states() if eng is not None else {}
        for name in ("queued", "running", "done", "failed", "cancelled"):
            jobs.add_metric([name], states.get(name, 0))
        failures = GaugeMetricFamily(
            "policyqa_parse_failures", "Files of the corpus not indexed, by the rule they broke", labels=["rule"]
        )
        failed: dict[str, str] = (ix.meta.get("failed") or {}) if ix is not None else {}
        for rule, n in sorted(Tally(failure_rule(e) for e in failed.values()).items()):
            failures.add_metric([rule], n)
        threads = GaugeMetricFamily("policyqa_threads", "Threads of the service process")
        threads.add_metric([], threading.active_count())
        up = GaugeMetricFamily("policyqa_ready", "1 when the service answers searches")
        up.add_metric([], 1 if ix is not None else 0)
        yield from (docs, passages, age, jobs, failures, threads, up)


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is sane, else a new one."""
    given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


class RequestLog(HttpOnly):
    """Every request: its id in the `X-Request-ID` answer header, counted by route template and status, and
    logged in one line (client address, method, path, status, milliseconds, id)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(scope)
        began = time.perf_counter()
        status = 500  # what a client sees when the app fails before it answers

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            route = _route(scope)
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            ms = (time.perf_counter() - began) * 1000
            client = (scope.get("client") or ("-",))[0]
            log.info("%s %s %s %d %.1fms id=%s", client, scope.get("method"), _path(scope), status, ms, rid)


def _route(scope: dict[str, Any] | Scope) -> str:
    """The template of the route that answered (/api/documents/{doc_id}), never the path itself: the page's
    files are `static`, and a path no route took is `unmatched` (label values stay few)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "static" if scope.get("endpoint") is not None else "unmatched"


def _path(scope: Scope) -> str:
    """The path as the client sent it, with its query, escaped so that it stays on one log line."""
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "backslashreplace")
    query = scope.get("query_string") or b""
    line = raw + (b"?" + query if query else b"")
    return str(line.decode("ascii", "backslashreplace"))[:2000]
