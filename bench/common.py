"""Shared by the benchmarks: the machine, percentiles, a real `policyqa serve` process, the model."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache"
PYTHON = sys.executable


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {platform.platform()}"
    )


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p)) if values else float("nan")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    ready_seconds: float

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def serve(corpus: Path, index: Path, **env: str) -> Server:
    """Start `policyqa serve` and wait for /api/health 200; the time it took is the cold start."""
    port = free_port()
    cmd = [PYTHON, "-m", "policyqa", "serve", "--port", str(port), "--corpus", str(corpus), "--index", str(index)]
    began = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "POLICYQA_WATCH_SECONDS": "0", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return Server(proc, url, time.perf_counter() - began)
        except httpx.HTTPError:
            pass
        if time.perf_counter() - began > 600:
            proc.kill()
            raise TimeoutError("server not ready in 600 s")
        time.sleep(0.02)


def questions() -> list[str]:
    import json

    lines = (ROOT / "corpus" / "eval" / "seed-qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["q"] for line in lines if line.strip()]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
