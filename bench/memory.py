"""Service memory per encoder: RSS of `policyqa serve` when ready and after 100 searches, and what importing
torch alone costs (the ONNX backend still runs inside sentence-transformers, which imports torch).

    python bench/memory.py [--models multilingual-e5-small:torch,multilingual-e5-small]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from common import PYTHON, ROOT, questions, rss_mib, serve

MODELS = ["multilingual-e5-small:torch", "multilingual-e5-small"]  # before (fp32 torch) and the default
PROBE = "import os,{mod}; print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])//1024)"


def import_rss(mod: str) -> int:
    out = subprocess.run([PYTHON, "-c", PROBE.format(mod=mod)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def run(models: list[str]) -> str:
    rows = []
    qs = questions()
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"POLICYQA_MODEL": model}
            subprocess.run(
                [PYTHON, "-m", "policyqa", "build", "--corpus", str(ROOT / "corpus"), "--index", tmp],
                check=True,
                capture_output=True,
                env={**__import__("os").environ, **env},
            )
            server = serve(ROOT / "corpus", Path(tmp), **env)
            try:
                ready = rss_mib(server.proc.pid)
                with httpx.Client(timeout=60) as client:
                    for i in range(100):
                        client.get(server.url + "/api/search", params={"q": qs[i % len(qs)], "k": 5})
                after = rss_mib(server.proc.pid)
            finally:
                server.stop()
        rows.append(f"| {model} | {server.ready_seconds:.1f} s | {ready:.0f} MiB | {after:.0f} MiB |")
    base = import_rss("sys")
    imports = {m: import_rss(m) - base for m in ("torch", "onnxruntime", "sentence_transformers")}
    return "\n".join(
        [
            "## Service memory",
            "",
            "`policyqa serve` on the seed corpus; RSS when /api/health first answers 200 and after 100 searches.",
            "",
            "| model | ready in | RSS ready | RSS after 100 searches |",
            "|---|---|---|---|",
            *rows,
            "",
            "What importing costs in a fresh Python (RSS over a bare interpreter): "
            + ", ".join(f"`import {m}` {v} MiB" for m, v in imports.items())
            + ".",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    print(run(args.models.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
