"""Retrieval quality and build time of one encoder on one QA set, with this checkout's ranking code.

Builds a fresh index of the corpus with the encoder (sentence vectors encoded again one by one, as policyqa
does, or pooled from one pass per passage with --sentences one-pass), times the build, and evaluates the
hybrid search and the dense leg alone. Prints one JSON line; bench/encoders.py runs it per encoder.

    python bench/encoder_quality.py --model multilingual-e5-small:onnx-int8 [--sentences separate]
        [--qa corpus/eval/seed-qa.jsonl] [--corpus corpus]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from policyqa.config import Settings
from policyqa.embed import Embedder, load_embedder
from policyqa.search.evaluation import evaluate, read_questions
from policyqa.search.ranking import SearchOptions, search
from policyqa.snapshot import index as index_mod
from policyqa.snapshot.refresh import refresh


def measure(model: str, sentences: str, qa: Path, corpus: Path, model_dir: Path | None) -> dict[str, object]:
    began = time.perf_counter()
    embedder: Embedder = load_embedder(model, model_dir)
    loaded = time.perf_counter() - began
    if sentences == "one-pass":
        embedder.use_one_pass()  # type: ignore[attr-defined]
    questions = read_questions(qa)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report = refresh(corpus, Path(tmp), embedder)
        build = time.perf_counter() - t
        idx = index_mod.load(Path(tmp), embedder)
        out: dict[str, object] = {
            "model": model,
            "sentences": sentences,
            "qa": str(qa),
            "load_s": round(loaded, 2),
            "build_s": round(build, 2),
            "passages": report.chunks,
            "sentence_vectors": len(idx.sentences),
        }
        for name, opts in (("hybrid", SearchOptions()), ("dense", SearchOptions(mode="dense"))):
            r = evaluate(name, questions, lambda q, o=opts: search(idx, embedder, q, 10, o), idx.chunks)
            out[name] = {"hit1": round(r.hit1, 4), "hit5": round(r.hit5, 4), "ndcg10": round(r.ndcg10, 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="an encoder name, e.g. multilingual-e5-small:torch")
    p.add_argument("--sentences", choices=["one-pass", "separate"], default="separate")
    p.add_argument("--qa", type=Path, default=Path("corpus/eval/seed-qa.jsonl"))
    p.add_argument("--corpus", type=Path, default=Path("corpus"))
    args = p.parse_args(argv)
    result = measure(args.model, args.sentences, args.qa, args.corpus, Settings.from_env().model_dir)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
