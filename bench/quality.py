"""Retrieval quality side by side on one QA file, all in one run and with the same model.

Rows: policyqa (hybrid), its dense leg alone, its BM25 leg alone, policyqa built without the domain
dictionary, and a naive baseline (blank-line paragraphs of the raw text + FAISS, no headings, no BM25).

    python bench/quality.py [--qa corpus/eval/seed-qa.jsonl] [--corpus corpus] [--model NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from policyqa.config import Settings
from policyqa.embed import Embedder, load_embedder
from policyqa.ingest import loaders as ingest
from policyqa.models import Chunk, Hit
from policyqa.search.evaluation import Report, evaluate, read_questions
from policyqa.search.ranking import SearchOptions, SearchResult, search
from policyqa.snapshot import build as whole
from policyqa.snapshot import index as index_mod
from policyqa.snapshot.refresh import refresh


def naive(corpus: Path, embedder: Embedder) -> tuple[list[Chunk], object]:
    """Paragraphs split at blank lines, embedded as they are, in a flat FAISS index."""
    import faiss

    chunks = []
    for path in ingest.corpus_files(corpus):
        source = path.relative_to(corpus).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, para in enumerate(p.strip() for p in text.split("\n\n")):
            if para:
                chunks.append(Chunk(f"{source}#{n}", source, source, "", "", para, 0, len(para), "text", 0))
    vectors = embedder.encode_passages([c.text for c in chunks]).astype(np.float32)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return chunks, flat


def run_quality(qa: Path, corpus: Path, embedder: Embedder) -> list[tuple[Report, float]]:
    """Each row with its mean milliseconds per question."""
    questions = read_questions(qa)
    rows: list[tuple[Report, float]] = []

    def timed(name: str, run: object, chunks: list[Chunk]) -> None:
        began = time.perf_counter()
        report = evaluate(name, questions, run, chunks)  # type: ignore[arg-type]
        rows.append((report, (time.perf_counter() - began) * 1000 / len(questions)))

    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "index"
        refresh(corpus, built, embedder)
        idx = index_mod.load(built, embedder)
        for name, opts in [
            ("policyqa (hybrid)", SearchOptions()),
            ("dense leg alone", SearchOptions(mode="dense")),
            ("BM25 leg alone", SearchOptions(mode="lexical")),
            ("hybrid, RRF fusion", SearchOptions(fusion="rrf")),
        ]:
            timed(name, lambda q, o=opts: search(idx, embedder, q, 10, o), idx.chunks)

        plain = Path(tmp) / "plain"
        with mock.patch.object(whole, "_dictionary", lambda docs: set()):
            refresh(corpus, plain, embedder)
        idx2 = index_mod.load(plain, embedder)
        timed("hybrid, no domain dictionary", lambda q: search(idx2, embedder, q, 10), idx2.chunks)
        idx3 = index_mod.load(plain, embedder)
        timed(
            "BM25 alone, no domain dictionary",
            lambda q: search(idx3, embedder, q, 10, SearchOptions(mode="lexical")),
            idx3.chunks,
        )

    chunks, flat = naive(corpus, embedder)

    def baseline(q: str) -> SearchResult:
        vec = embedder.encode_queries([q])
        scores, ids = flat.search(vec.astype(np.float32), 10)  # type: ignore[attr-defined]
        hits = [
            Hit(chunks[int(i)], float(s), r, float(s), None)
            for r, (s, i) in enumerate(zip(scores[0], ids[0], strict=True), 1)
            if i >= 0
        ]
        return SearchResult(q, tuple(hits), 0.0)

    timed("naive: paragraphs + FAISS", baseline, chunks)
    return rows


def table(rows: list[tuple[Report, float]]) -> str:
    lines = [
        "| run | hit@1 | hit@3 | hit@5 | MRR@10 | nDCG@10 | no-answer flag P / R | ms/question |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, ms in rows:
        flag = (
            "-"
            if r.flag_recall is None or r.flag_precision is None
            else f"{r.flag_precision:.3f} / {r.flag_recall:.3f}"
        )
        ranks = f"{r.hit1:.3f} | {r.hit3:.3f} | {r.hit5:.3f} | {r.mrr10:.3f} | {r.ndcg10:.3f}"
        lines.append(f"| {r.name} | {ranks} | {flag} | {ms:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--qa", type=Path, default=Path("corpus/eval/seed-qa.jsonl"))
    p.add_argument("--corpus", type=Path, default=Path("corpus"))
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)
    settings = Settings.from_env()
    embedder = load_embedder(args.model or settings.model, settings.model_dir)
    print(table(run_quality(args.qa, args.corpus, embedder)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
