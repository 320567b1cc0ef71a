"""Run every benchmark, print the figures and write bench/RESULTS.md.

    python bench/run.py [--quick]        (make bench / make bench-quick)

Each figure is a ratio against a baseline measured in the same run, on the same machine: the machines
are shared and noisy, absolute numbers are not comparable between runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import coldstart
import encoders
import indexing
import latency
import light
import memory
import quality
import scale
import updates
from common import ROOT, machine
from policyqa.config import Settings
from policyqa.embed import load_embedder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer rounds, 200 documents for indexing")
    args = p.parse_args(argv)
    began = time.perf_counter()
    flag = " --quick" if args.quick else ""
    # the latency, cold start and scale runs use the index of the shipped corpus
    subprocess.run([sys.executable, "-m", "policyqa", "build"], cwd=ROOT, check=True, capture_output=True)
    sections: list[tuple[str, str]] = []

    def section(name: str, command: str, make) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        print(f"--- {name} ...", file=sys.stderr, flush=True)
        text = make()
        print(text, flush=True)
        sections.append((text, f"Reproduce: `{command}` ({time.perf_counter() - t:.0f} s in this run)\n"))

    section("encoders", f"python bench/encoders.py{flag}", lambda: encoders.run(args.quick))
    section("service memory", "python bench/memory.py", lambda: memory.run(memory.MODELS))
    section("latency and throughput", f"python bench/latency.py{flag}", lambda: latency.run(args.quick))
    section("light service", f"python bench/light.py{flag}", lambda: light.run(args.quick))
    section("indexing", f"python bench/indexing.py{flag}", lambda: indexing.run(args.quick))
    section("cold start", f"python bench/coldstart.py{flag}", lambda: coldstart.run(args.quick))
    section("scale", f"python bench/scale.py{flag}", lambda: scale.run(args.quick))
    section("updates", "python bench/updates.py", updates.run)

    def side_by_side() -> str:
        settings = Settings.from_env()
        rows = quality.run_quality(
            ROOT / "corpus" / "eval" / "seed-qa.jsonl", ROOT / "corpus", load_embedder(settings.model, None)
        )
        return "## Retrieval quality side by side\n\nOn corpus/eval/seed-qa.jsonl, same model, one run.\n\n" + (
            quality.table(rows) + "\n"
        )

    section("quality", "python bench/quality.py", side_by_side)
    total = time.perf_counter() - began
    head = [
        "# policyqa benchmarks",
        "",
        f"- machine: {machine()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- command: `make bench{'-quick' if args.quick else ''}` (`python bench/run.py{flag}`), "
        f"{total / 60:.1f} minutes end to end",
        "- every figure is a ratio against a baseline measured in the same run; absolute times vary with the "
        "load of this shared machine",
        "",
    ]
    body = "\n".join(text + "\n" + how for text, how in sections)
    (ROOT / "bench" / "RESULTS.md").write_text("\n".join(head) + "\n" + body, encoding="utf-8")
    print(f"wrote bench/RESULTS.md in {total / 60:.1f} minutes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
