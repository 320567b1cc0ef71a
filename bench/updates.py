"""Searches during updates: 4 clients search a real server (default model) while an admin uploads a
document and then asks for a full rebuild. Counts the searches served and failed, and their latency.

    python bench/updates.py
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import ROOT, pct, questions, serve

TOKEN = "bench-token"
DOC = (
    "关于促进低空经济发展的若干措施\n\n一、总体目标\n到2027年，全市低空经济规模达到300亿元，建成通用机场3个。\n\n"
    "二、支持措施\n对新落户的低空经济企业给予最高500万元奖励。\n"
).encode()


def run() -> str:
    qs = questions()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus, ignore=shutil.ignore_patterns("eval"))
        shutil.copytree(ROOT / "index", Path(tmp) / "index")
        srv = serve(corpus, Path(tmp) / "index", POLICYQA_ADMIN_TOKEN=TOKEN)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        phase = ["idle"]
        log: list[tuple[str, float, bool]] = []
        stop = threading.Event()

        def client(n: int) -> None:
            i = n * 11
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    began = time.perf_counter()
                    try:
                        ok = c.get(srv.url + "/api/search", params={"q": qs[i % len(qs)], "k": 5}).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    log.append((phase[0], time.perf_counter() - began, ok))
                    i += 1

        def wait(job: dict) -> float:
            began = time.perf_counter()
            while True:
                state = httpx.get(f"{srv.url}/api/index/jobs/{job['id']}", timeout=30).json()
                if state["state"] in ("done", "failed"):
                    assert state["state"] == "done", state
                    return time.perf_counter() - began
                time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        try:
            for t in threads:
                t.start()
            time.sleep(5)
            phase[0] = "upload"
            up = httpx.post(srv.url + "/api/documents", files={"file": ("低空经济.txt", DOC)}, headers=auth, timeout=60)
            upload_s = wait(up.json()["job"])
            phase[0] = "rebuild"
            rb = httpx.post(srv.url + "/api/index/rebuild", params={"full": "true"}, headers=auth, timeout=60)
            rebuild_s = wait(rb.json()["job"])
            phase[0] = "after"
            time.sleep(3)
            found = httpx.get(srv.url + "/api/search", params={"q": "低空经济规模目标", "k": 1}).json()
        finally:
            stop.set()
            for t in threads:
                t.join()
            srv.stop()

    lines = [
        "## Searches during updates",
        "",
        "4 clients search back to back (default model, seed corpus) while an admin uploads one document, "
        "then asks for a full rebuild that re-embeds every passage.",
        "",
        "| phase | seconds | searches served | failed | p50 | p95 |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds in (("before (5 s)", 5.0), ("upload -> indexed", upload_s), ("full rebuild", rebuild_s)):
        key = {"before (5 s)": "idle", "upload -> indexed": "upload", "full rebuild": "rebuild"}[name]
        rows = [(d, ok) for p, d, ok in log if p == key]
        lat = [d for d, _ in rows]
        lines.append(
            f"| {name} | {seconds:.1f} | {sum(ok for _, ok in rows)} | {sum(not ok for _, ok in rows)} | "
            f"{pct(lat, 50) * 1000:.0f} ms | {pct(lat, 95) * 1000:.0f} ms |"
        )
    top = found["results"][0]["source"] if found.get("results") else None
    lines += ["", f"After the updates the new document answers first: `{top}`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
