"""The light service (issue 27) against today's code, in one run: the code before it (REF, unpacked from git)
and this checkout serve, search and build the same corpus with the default model, side by side.

    python bench/light.py [--corpus DIR] [--build-corpus DIR] [--qa FILE] [--baseline REF] [--quick]

- service: `policyqa serve` of each, started in turn: time from start to the first answer of /api/search,
  RSS after 100 searches, then GET /api/search p50 over the questions, rounds alternated with the bare
  fp32 torch encode of the same questions (sentence-transformers in this process, as bench/latency.py);
- build: a full build of --build-corpus from nothing by each (passages per second, wall clock including
  the model load), then `policyqa build` again on the unchanged corpus (seconds, median of 3), and with
  --qa the hybrid hit@1 of `policyqa eval` on both builds;
- ONNX Runtime's session options and the passes' token budget, each in a fresh process on the light
  encoder: load, a question's encode p50, texts per second on a sample of the build's texts, RSS.
Ratios are printed against the issue's targets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from common import PYTHON, ROOT, free_port, ms, pct, questions, rss_mib
from latency import bare_model, timed_bare, timed_http
from policyqa.embed import quiet_transformers

BASELINE = "5275811"  # main before issue 27: sentence-transformers' ONNX int8 backend, each text encoded twice
VARIANTS = {  # name -> runtime.Tuning fields
    "default": {},
    "1 thread": {"threads": 1},
    "spinning": {"spinning": True},
    "no arena": {"arena": False},
    "no memory patterns": {"mem_pattern": False},
    "one text a pass": {"tokens_per_pass": 1},
    "512 tokens a pass": {"tokens_per_pass": 512},
    "8192 tokens a pass": {"tokens_per_pass": 8192},
    "16 rows a pass": {"rows_per_pass": 16},
    "32 rows a pass": {"rows_per_pass": 32, "tokens_per_pass": 4096},
}


@dataclass(frozen=True)
class Code:
    name: str
    src: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(self.src), "POLICYQA_WATCH_SECONDS": "0", **extra}
        env.pop("POLICYQA_MODEL", None)  # each code's default model
        return env

    def policyqa(self, *args: str, **env: str) -> tuple[float, str]:
        began = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "-m", "policyqa", *args], env=self.env(**env), capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{self.name}: policyqa {' '.join(args)} failed: {done.stderr[-2000:]}")
        return time.perf_counter() - began, done.stdout


def unpack(ref: str, into: Path) -> Path:
    """The src/ folder of `ref` (and web/, which its service serves), from git: nothing is checked out here."""
    archive = subprocess.run(["git", "archive", ref, "src", "web"], cwd=ROOT, capture_output=True, check=True).stdout
    tar = into / "baseline.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as fh:
        fh.extractall(into / "baseline", filter="data")
    return into / "baseline" / "src"


@dataclass
class Service:
    code: Code
    proc: subprocess.Popen[bytes]
    url: str
    first_answer: float


def start(code: Code, corpus: Path, index: Path, question: str) -> Service:
    """`policyqa serve`, and the time from starting it to the first answer of /api/search with passages."""
    port = free_port()
    args = ["serve", "--port", str(port), "--corpus", str(corpus), "--index", str(index)]
    began = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-m", "policyqa", *args], env=code.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - began < 600:
        if proc.poll() is not None:
            raise RuntimeError(f"{code.name}: serve exited with {proc.returncode}")
        try:
            answer = httpx.get(url + "/api/search", params={"q": question, "k": 5}, timeout=30)
            if answer.status_code == 200 and answer.json()["results"]:
                return Service(code, proc, url, time.perf_counter() - began)
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError(f"{code.name}: no answer in 600 s")


def services(codes: list[Code], corpus: Path, tmp: Path, qs: list[str], rounds: int) -> list[str]:
    """Each code's service: first answer, RSS after 100 searches, and its search p50 against the bare encode."""
    for code in codes:
        code.policyqa("build", "--corpus", str(corpus), "--index", str(tmp / f"serve-{code.name}"))
    running: list[Service] = []
    rss: dict[str, float] = {}
    try:
        for code in codes:  # one at a time: neither start competes with the other
            running.append(start(code, corpus, tmp / f"serve-{code.name}", qs[0]))
            with httpx.Client(timeout=60) as client:
                for i in range(100):
                    client.get(running[-1].url + "/api/search", params={"q": qs[i % len(qs)], "k": 5})
            rss[code.name] = rss_mib(running[-1].proc.pid)
        quiet_transformers()  # the fp32 folder's tokenizer warning
        model = bare_model()
        timed_bare(model, qs[:5])  # warm-up
        bare: list[float] = []
        http: dict[str, list[float]] = {c.name: [] for c in codes}
        for _ in range(rounds):
            bare += timed_bare(model, qs)
            time.sleep(0.5)  # torch's threads stop spinning
            for s in running:
                http[s.code.name] += timed_http(s.url, qs)
    finally:
        for s in running:
            s.proc.terminate()
            s.proc.wait(20)
    return _service_rows(running, rss, bare, http)


def _service_rows(
    running: list[Service], rss: dict[str, float], bare: list[float], http: dict[str, list[float]]
) -> list[str]:
    rows = [
        "| | first answer | RSS after 100 searches | GET /api/search p50 | p95 | p50 vs bare fp32 torch encode |",
        "|---|---|---|---|---|---|",
        f"| bare fp32 torch `encode('query: ' + q)` | | | {ms(pct(bare, 50))} | {ms(pct(bare, 95))} | 1.00x |",
    ]
    for s in running:
        lat = http[s.code.name]
        ratio = pct(lat, 50) / pct(bare, 50)
        rows.append(
            f"| {s.code.name} service | {s.first_answer:.2f} s | {rss[s.code.name]:.0f} MiB | {ms(pct(lat, 50))} "
            f"| {ms(pct(lat, 95))} | {ratio:.2f}x |"
        )
    old, new = running[0], running[-1]
    return [
        *rows,
        "",
        f"- RSS after 100 searches: {rss[new.code.name]:.0f} MiB ({rss[new.code.name] / rss[old.code.name]:.2f}x "
        f"today's); target <= 400 MiB: {'met' if rss[new.code.name] <= 400 else 'NOT met'}",
        f"- start to first answer: {new.first_answer / old.first_answer:.2f}x today's; target <= 0.5x: "
        f"{'met' if new.first_answer <= 0.5 * old.first_answer else 'NOT met'}",
        f"- GET /api/search p50: {pct(http[new.code.name], 50) / pct(bare, 50):.2f}x the bare fp32 torch encode; "
        f"target <= 0.6x: {'met' if pct(http[new.code.name], 50) <= 0.6 * pct(bare, 50) else 'NOT met'}",
    ]


def builds(codes: list[Code], corpus: Path, tmp: Path, repeats: int) -> list[str]:
    """A full build of `corpus` from nothing by each code, then the same build again with nothing changed."""
    full: dict[str, tuple[float, int, str]] = {}
    unchanged: dict[str, float] = {}
    for code in codes:
        index = tmp / f"build-{code.name}"
        seconds, out = code.policyqa("build", "--corpus", str(corpus), "--index", str(index))
        found = re.search(r"(\d+) chunks \((\d+) embedded\) in ([\d.]+)s", out)
        if not found:
            raise RuntimeError(f"{code.name}: unexpected build report {out!r}")
        full[code.name] = (seconds, int(found[1]), found[3])
        again = sorted(
            code.policyqa("build", "--corpus", str(corpus), "--index", str(index))[0] for _ in range(repeats)
        )
        unchanged[code.name] = again[len(again) // 2]
    rows = [
        "| | full build | passages | passages/s | in-build seconds (report) | build, nothing changed |",
        "|---|---|---|---|---|---|",
    ]
    for code in codes:
        seconds, chunks, reported = full[code.name]
        rows.append(
            f"| {code.name} | {seconds:.1f} s | {chunks} | {chunks / seconds:.1f} | {reported} s "
            f"| {unchanged[code.name]:.2f} s |"
        )
    old, new = codes[0].name, codes[-1].name
    speed = (full[new][1] / full[new][0]) / (full[old][1] / full[old][0])
    return [
        *rows,
        "",
        f"- full build: {speed:.2f}x today's passages per second; target >= 2x: {'met' if speed >= 2 else 'NOT met'}",
        f"- `policyqa build` on the unchanged corpus: {unchanged[new]:.2f} s (today {unchanged[old]:.2f} s); "
        f"target <= 2 s: {'met' if unchanged[new] <= 2 else 'NOT met'}",
    ]


def quality(codes: list[Code], corpus: Path, tmp: Path, qa: Path) -> list[str]:
    """`policyqa eval QA` on each code's full build of `corpus` (builds): hybrid hit@1 must stay within 0.005."""
    hit1: dict[str, float] = {}
    for code in codes:
        index = str(tmp / f"build-{code.name}")
        out = code.policyqa("eval", str(qa), POLICYQA_CORPUS_DIR=str(corpus), POLICYQA_INDEX_DIR=index)[1]
        found = re.search(r"^hybrid\s+\d+\s+([\d.]+)", out, re.MULTILINE)
        if not found:
            raise RuntimeError(f"{code.name}: unexpected eval report {out[:500]!r}")
        hit1[code.name] = float(found[1])
    old, new = hit1[codes[0].name], hit1[codes[-1].name]
    return [
        f"- hybrid hit@1 on `{qa.name}`: today {old:.3f}, light {new:.3f} ({new - old:+.3f}); target: within 0.005: "
        f"{'met' if new >= old - 0.005 else 'NOT met'}"
    ]


WORKER = """
import json, sys, time
sys.path.insert(0, {src!r})
from pathlib import Path
from policyqa import bundle
from policyqa.embed import DEFAULT_MODEL
from policyqa.runtime import OnnxEmbedder, Tuning
folder = bundle.ensure_backend(bundle.default_cache_root(), "onnx-int8")
began = time.perf_counter()
e = OnnxEmbedder(folder, bundle.BACKENDS["onnx-int8"][1], DEFAULT_MODEL, tuning=Tuning(**{tuning!r}))
e.encode_queries(["预热"])
load = time.perf_counter() - began
qs, texts = json.loads(sys.stdin.read())
times = []
for q in qs * {rounds}:
    t = time.perf_counter(); e.encode_queries([q]); times.append(time.perf_counter() - t)
t = time.perf_counter(); e.encode_passages(texts); rate = len(texts) / (time.perf_counter() - t)
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
times.sort()
print(json.dumps([load, times[len(times) // 2], rate, rss]))
"""


def build_texts(corpus: Path, limit: int) -> list[str]:
    """What a build encodes, passage then sentences, for the first `limit` passages of the corpus."""
    from policyqa.ingest.chunk import chunk_document, sentence_texts
    from policyqa.ingest.loaders import corpus_entries, parse

    texts: list[str] = []
    for source, entry in corpus_entries(corpus):
        try:
            doc = parse(Path(entry.path).read_bytes(), source)
        except Exception:  # a file the build would skip
            continue
        for c in chunk_document(doc):
            texts += [c.embed_text, *sentence_texts(c)]
            limit -= 1
            if limit <= 0:
                return texts
    return texts


def tunings(new: Code, corpus: Path, qs: list[str], names: list[str], sample: int, rounds: int) -> list[str]:
    texts = build_texts(corpus, sample)
    rows = [
        f"Each in a fresh process: {len(qs)} questions x {rounds}, then {len(texts)} texts of a build of the corpus.",
        "",
        "| session | load | question p50 | texts/s | vs default | RSS |",
        "|---|---|---|---|---|---|",
    ]
    base = 0.0
    for name in names:
        code = WORKER.format(src=str(new.src), tuning=VARIANTS[name], rounds=rounds)
        done = subprocess.run(
            [PYTHON, "-c", code], input=json.dumps([qs, texts]), capture_output=True, text=True, check=True
        )
        load, p50, rate, rss = json.loads(done.stdout.splitlines()[-1])
        base = base or rate
        rows.append(f"| {name} | {load:.2f} s | {ms(p50)} | {rate:.1f} | {rate / base:.2f}x | {rss:.0f} MiB |")
    return rows


def run(
    quick: bool = False,
    corpus: Path | None = None,
    build_corpus: Path | None = None,
    ref: str = BASELINE,
    qa: Path | None = None,
) -> str:
    corpus = corpus or ROOT / "corpus"
    build_corpus = build_corpus or corpus
    qs = questions()[: 20 if quick else None]
    with tempfile.TemporaryDirectory(prefix="bench-light-") as name:
        tmp = Path(name)
        codes = [Code(f"today ({ref})", unpack(ref, tmp)), Code("light", ROOT / "src")]
        serving = services(codes, corpus, tmp, qs, 1 if quick else 3)
        building = builds(codes, build_corpus, tmp, 1 if quick else 3)
        if qa is not None:
            building += quality(codes, build_corpus, tmp, qa)
    names = ["default", "one text a pass"] if quick else list(VARIANTS)
    tuned = tunings(codes[-1], build_corpus, qs, names, 20 if quick else 300, 1 if quick else 3)
    return "\n".join(
        [
            "## The light service (issue 27)",
            "",
            f"Today's code is `{ref}` (sentence-transformers' ONNX int8 backend, torch imported), against this "
            f"checkout's light encoder (onnxruntime and tokenizers). Service on `{corpus}`, {len(qs)} questions; "
            f"builds of `{build_corpus}`.",
            "",
            *serving,
            "",
            *building,
            "",
            "### ONNX Runtime session options (light encoder)",
            "",
            *tuned,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, help="the corpus served (default: the shipped corpus/)")
    p.add_argument("--build-corpus", type=Path, help="the corpus built from nothing (default: --corpus)")
    p.add_argument("--baseline", default=BASELINE, help=f"git ref of today's code (default {BASELINE})")
    p.add_argument("--qa", type=Path, help="also `policyqa eval QA` on both builds of --build-corpus")
    p.add_argument("--quick", action="store_true", help="one round, 20 questions, two session variants")
    args = p.parse_args(argv)
    print(run(args.quick, args.corpus, args.build_corpus, args.baseline, args.qa))
    return 0


if __name__ == "__main__":
    sys.exit(main())
