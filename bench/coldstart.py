"""Cold start: `policyqa serve` to /api/health 200 with a built index, against loading the bare model in
a fresh Python; and the service's memory.

    python bench/coldstart.py [--quick]    (needs a built index in ./index: `policyqa build`)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import httpx

from common import PYTHON, ROOT, questions, rss_mib, serve

BARE = (
    "from sentence_transformers import SentenceTransformer; "
    "from policyqa.bundle import default_cache_root, ensure_model; "
    "SentenceTransformer(str(ensure_model(default_cache_root())), device='cpu').encode(['query: 测试'])"
)


def bare_load() -> float:
    began = time.perf_counter()
    subprocess.run([PYTHON, "-c", BARE], check=True, capture_output=True)
    return time.perf_counter() - began


def run(quick: bool = False) -> str:
    runs = 2 if quick else 3
    bare, ready, rss_ready, rss_after = [], [], [], []
    qs = questions()
    for _ in range(runs):
        bare.append(bare_load())
        srv = serve(ROOT / "corpus", ROOT / "index")
        try:
            ready.append(srv.ready_seconds)
            rss_ready.append(rss_mib(srv.proc.pid))
            with httpx.Client(timeout=30) as client:
                for q in qs:
                    client.get(srv.url + "/api/search", params={"q": q, "k": 5}).raise_for_status()
            rss_after.append(rss_mib(srv.proc.pid))
        finally:
            srv.stop()
    b, r = statistics.median(bare), statistics.median(ready)
    return "\n".join(
        [
            "## Cold start and memory",
            "",
            f"Median of {runs} runs, alternated. The baseline is a fresh Python that imports sentence-transformers, "
            "loads the converted model and encodes one question.",
            "",
            "| | seconds | RSS |",
            "|---|---|---|",
            f"| bare model load (baseline) | {b:.2f} | |",
            f"| `policyqa serve` to /api/health 200 | {r:.2f} ({r / b:.2f}x the baseline) | "
            f"{statistics.median(rss_ready):.0f} MiB |",
            f"| after {len(qs)} searches | | {statistics.median(rss_after):.0f} MiB |",
            "",
            "Target: ready in at most 8 s.",
            "",
        ]
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    print(run(p.parse_args().quick))
