"""Query latency over HTTP against the bare model.encode(query), and throughput at 1, 4 and 16 clients.

python bench/latency.py [--quick]    (needs a built index in ./index: `policyqa build`)
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import httpx

from common import ROOT, Server, pct, questions, serve


def bare_model():  # type: ignore[no-untyped-def]
    """The model as sentence-transformers loads it, with nothing of policyqa around it."""
    from sentence_transformers import SentenceTransformer

    from policyqa.bundle import default_cache_root, ensure_model

    return SentenceTransformer(str(ensure_model(default_cache_root())), device="cpu")


def timed_bare(model, qs: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for q in qs:
        began = time.perf_counter()
        model.encode("query: " + q, normalize_embeddings=True)
        out.append(time.perf_counter() - began)
    return out


def timed_http(url: str, qs: list[str]) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        for q in qs:
            began = time.perf_counter()
            resp = client.get(url + "/api/search", params={"q": q, "k": 5})
            out.append(time.perf_counter() - began)
            resp.raise_for_status()
    return out


def load(url: str, qs: list[str], clients: int, seconds: float) -> tuple[float, int, int, list[float]]:
    """Each client asks questions back to back for `seconds`. Returns QPS, answered, errors, latencies."""
    stop = time.perf_counter() + seconds
    answered, errors, lat = [0], [0], []
    lock = threading.Lock()

    def client(n: int) -> None:
        i = n * 7
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop:
                q = qs[i % len(qs)]
                i += 1
                began = time.perf_counter()
                try:
                    ok = c.get(url + "/api/search", params={"q": q, "k": 5}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - began
                with lock:
                    answered[0] += ok
                    errors[0] += not ok
                    lat.append(took)

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answered[0] / (time.perf_counter() - began), answered[0], errors[0], lat


def run(quick: bool = False, corpus: Path = ROOT / "corpus", index: Path = ROOT / "index") -> str:
    qs = questions()
    rounds = 2 if quick else 3
    seconds = 5.0 if quick else 10.0
    model = bare_model()
    timed_bare(model, qs[:10])  # warm up
    single = min(timed_bare(model, qs[:20]))
    began = time.perf_counter()
    batch = 16
    for i in range(0, len(qs), batch):
        model.encode(["query: " + q for q in qs[i : i + batch]], normalize_embeddings=True, batch_size=batch)
    batched_rate = len(qs) / (time.perf_counter() - began)

    srv = serve(corpus, index)
    bare: list[float] = []
    http: list[float] = []
    try:
        timed_http(srv.url, qs[:10])
        for _ in range(rounds):  # alternate, so both see the same machine weather
            bare += timed_bare(model, qs)
            http += timed_http(srv.url, qs)
        batched = {c: load(srv.url, qs, c, seconds) for c in (1, 4, 16)}
    finally:
        srv.stop()
    del model
    plain_srv: Server = serve(corpus, index, POLICYQA_MICRO_BATCH="0")
    try:
        timed_http(plain_srv.url, qs[:10])
        plain = {c: load(plain_srv.url, qs, c, seconds) for c in (1, 4, 16)}
    finally:
        plain_srv.stop()

    b50, h50 = pct(bare, 50), pct(http, 50)
    lines = [
        "## Query latency over HTTP",
        "",
        f"{len(qs)} eval questions x {rounds} rounds, one client, keep-alive, k=5; the bare encode is "
        "`SentenceTransformer.encode('query: ' + q)` in the benchmark process, alternated round by round.",
        "",
        "| | p50 | p95 | p99 |",
        "|---|---|---|---|",
        f"| bare model.encode(query) | {b50 * 1000:.1f} ms | {pct(bare, 95) * 1000:.1f} ms | "
        f"{pct(bare, 99) * 1000:.1f} ms |",
        f"| GET /api/search (whole request) | {h50 * 1000:.1f} ms | {pct(http, 95) * 1000:.1f} ms | "
        f"{pct(http, 99) * 1000:.1f} ms |",
        f"| ratio | **{h50 / b50:.2f}x** | {pct(http, 95) / pct(bare, 95):.2f}x "
        f"| {pct(http, 99) / pct(bare, 99):.2f}x |",
        "",
        "Target: p50 at most 1.3x the bare encode.",
        "",
        "## Throughput",
        "",
        f"Closed loop: each client sends the next question when the last answer arrives, {seconds:.0f} s per row.",
        f"Encode ceilings in the same run: one question per forward pass {1 / single:.0f}/s; "
        f"{batch} per pass {batched_rate:.0f}/s.",
        "",
        "| clients | QPS, micro-batching | p50 | errors | QPS, one pass per question | p50 | errors | gain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in (1, 4, 16):
        q1, _, e1, l1 = batched[c]
        q0, _, e0, l0 = plain[c]
        lines.append(
            f"| {c} | {q1:.1f} | {pct(l1, 50) * 1000:.1f} ms | {e1} | {q0:.1f} | {pct(l0, 50) * 1000:.1f} ms | {e0} "
            f"| {q1 / q0:.2f}x |"
        )
    lines += ["", "Target: at least 50 QPS at 4 clients.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    print(run(p.parse_args().quick))
