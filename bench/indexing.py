"""Indexing: a full build against raw encode of the same texts, and a one-document update against a full
build, on a corpus of 1,000 documents made deterministically from the seed's own sentences.

    python bench/indexing.py [--quick]    (--quick: 200 documents)
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from common import CACHE, ROOT
from policyqa.config import Settings
from policyqa.embed import Embedder, load_embedder
from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import ChunkSettings, chunk_document, sentence_texts
from policyqa.ingest.segment import split_sentences
from policyqa.snapshot.refresh import refresh


def seed_sentences() -> list[str]:
    doc = ingest.load(ROOT / "corpus" / "nanjing-hitech-clusters.txt", ROOT / "corpus")
    out = []
    for block in doc.blocks:
        if block.kind == "paragraph":
            text = doc.text[block.start : block.end]
            out += [text[s:e] for s, e in split_sentences(text) if e - s >= 12]
    return out


def make_corpus(folder: Path, n: int) -> Path:
    """n documents: a title, two numbered sections, 2-4 seed sentences each (same seed, same corpus)."""
    sentences = seed_sentences()
    if folder.is_dir() and len(list(folder.glob("*.txt"))) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        rng = random.Random(i)
        parts = [f"创新型产业集群工作简报第{i + 1}期", ""]
        for j, head in enumerate(("一、工作进展", "二、下一步安排")):
            parts += [head, "".join(rng.sample(sentences, rng.randint(2, 4))), ""]
            if j == 0:
                parts += [f"（编号 {i:04d}）", ""]
        (folder / f"brief-{i:04d}.txt").write_text("\n".join(parts), encoding="utf-8")
    return folder


def raw_encode(embedder: Embedder, texts: list[str]) -> float:
    began = time.perf_counter()
    embedder.encode_passages(texts)
    return time.perf_counter() - began


def run(quick: bool = False) -> str:
    n = 200 if quick else 1000
    corpus = make_corpus(CACHE / f"corpus-{n}", n)
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.model_dir)
    docs = [ingest.load(p, corpus) for p in sorted(corpus.glob("*.txt"))]
    chunks = [c for d in docs for c in chunk_document(d, ChunkSettings())]
    passages = [c.embed_text for c in chunks]
    everything = passages + [t for c in chunks for t in sentence_texts(c)]
    embedder.encode_passages(passages[:16])  # warm up

    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(tmp) / "index"
        began = time.perf_counter()
        full = refresh(corpus, idx, embedder)
        full_s = time.perf_counter() - began
        raw_same_s = raw_encode(embedder, everything)
        raw_passages_s = raw_encode(embedder, passages)

        work = Path(tmp) / "corpus"
        shutil.copytree(corpus, work)
        refresh(work, idx, embedder)  # same content, other folder: everything is reused
        target = work / "brief-0500.txt" if n > 500 else work / "brief-0100.txt"
        target.write_text(target.read_text(encoding="utf-8") + "\n三、补充说明\n本期新增一条说明。\n", encoding="utf-8")
        began = time.perf_counter()
        one = refresh(work, idx, embedder)
        one_s = time.perf_counter() - began
        (work / "brief-new.txt").write_text("新增简报\n\n一、内容\n新增一份文档用于测试。\n", encoding="utf-8")
        began = time.perf_counter()
        added = refresh(work, idx, embedder)
        add_s = time.perf_counter() - began
        target.unlink()
        began = time.perf_counter()
        removed = refresh(work, idx, embedder)
        remove_s = time.perf_counter() - began

    cps = full.chunks / full_s
    lines = [
        "## Indexing",
        "",
        f"Corpus: {n} documents generated from the seed's sentences (`bench/indexing.py`, cached in bench/cache/), "
        f"{full.chunks} passages; the build also embeds {len(everything) - len(passages)} sentence vectors.",
        "",
        "| | seconds | passages/s | vs build |",
        "|---|---|---|---|",
        f"| full build (parse, chunk, embed passages + sentences, BM25, write, publish) | {full_s:.1f} | {cps:.1f} | |",
        f"| raw `encode` of the same texts (passages + sentences) | {raw_same_s:.1f} | "
        f"{full.chunks / raw_same_s:.1f} | build at **{raw_same_s / full_s:.0%}** of raw |",
        f"| raw `encode` of the passages alone | {raw_passages_s:.1f} | {full.chunks / raw_passages_s:.1f} | "
        f"build at {raw_passages_s / full_s:.0%} of raw |",
        "",
        "Target: a full build at least 90% of raw encode throughput. The like-for-like row compares the same "
        "texts; the passages-only row shows the price of the sentence vectors (about one more encode of the "
        "same characters), which buy dense hit@1 0.657 -> 0.806 on the seed set.",
        "",
        "| incremental update (model loaded) | seconds | embedded | vs full build |",
        "|---|---|---|---|",
        f"| one document changed | {one_s:.2f} | {one.embedded} | **{one_s / full_s:.1%}** |",
        f"| one document added | {add_s:.2f} | {added.embedded} | {add_s / full_s:.1%} |",
        f"| one document removed | {remove_s:.2f} | {removed.embedded} | {remove_s / full_s:.1%} |",
        "",
        "Target: at most 5%.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    print(run(p.parse_args().quick))
