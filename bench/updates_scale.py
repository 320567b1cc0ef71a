"""Updates at scale: one document added, changed and removed in an index of 100,000 or 1,000,000 passages,
while a thread searches without pause. Measures each update end to end (the corpus file written, then
`Engine.update`: stat, parse, embed with the default model, write, publish and load the new snapshot), the
bytes it wrote, and the searches served and failed meanwhile; and the index's disk, RSS and cold start.

The large index is real documents replicated: every document of a built index (`--source`, e.g. the 64
documents of ../shared/devset) is copied under `copyNNNNN/` in a temporary corpus folder, with its passages,
their words and their vectors (plus noise of 0.01, normalised) written straight into a snapshot through
write_snapshot, so nothing is parsed or embedded to make it. The vectors come from the source
index's model; the snapshot is labelled with the default model's name so the engine serves it (the
question and the new document are embedded by the default model, as a user's would be).

    python bench/updates_scale.py --source /tmp/dev-index [--passages 100000] [--work /tmp/updates-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import pct
from policyqa.config import Settings
from policyqa.embed import load_embedder
from policyqa.engine import Engine
from policyqa.ingest.chunk import ChunkSettings, chunk_id
from policyqa.ingest.loaders import document_id
from policyqa.ingest.segment import Segmenter
from policyqa.models import Chunk
from policyqa.search import ranking as search_mod
from policyqa.snapshot import layout
from policyqa.snapshot.build import write_snapshot
from policyqa.snapshot.documents import DocInfo
from policyqa.snapshot.layout import FORMAT_VERSION
from policyqa.store.base import Vectors, Words
from policyqa.store.faiss import FaissStore

QUESTIONS = ["南京有几个国家级创新型产业集群？", "稳岗补贴怎么申请？", "部门预算中一般公共预算支出是多少？"]


def replicate(source: Path, corpus_src: Path, work: Path, passages: int, model: str, dim: int) -> None:
    """A corpus folder and an index of about `passages` passages: the source index's documents, copied."""
    folder = layout.current_snapshot(source)
    assert folder is not None, f"no index in {source}"
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    chunks = layout.read_chunks(folder)
    store = FaissStore()
    vectors = store.vectors(folder)
    words = {}
    with (folder / "words.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            cid, passage, sentences = json.loads(line)
            words[cid] = Words(passage, sentences)
    texts = {d: layout.read_text(folder, d) for d in dict.fromkeys(c.doc_id for c in chunks)}
    corpus, index_dir = work / "corpus", work / "index"
    shutil.rmtree(work, ignore_errors=True)
    corpus.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out_chunks: list[Chunk] = []
    groups: list[Vectors] = []
    known: dict[str, Words] = {}
    out_texts = []
    docs, stat = [], {}
    copies = max(1, round(passages / len(chunks)))
    for n in range(copies):
        for info in (DocInfo.from_dict(d) for d in meta["documents"]):
            src = f"copy{n:05d}/{info.source}"
            path = corpus / src
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(corpus_src / info.source, path)
            st = path.stat()
            stat[src] = [st.st_size, st.st_mtime_ns]
            doc_id = document_id(src)
            docs.append(replace(info, doc_id=doc_id, source=src).as_dict())
            entry = texts[info.doc_id]
            if entry is not None:
                out_texts.append({**entry, "doc_id": doc_id, "source": src})
        for c, v in zip(chunks, vectors, strict=True):
            src = f"copy{n:05d}/{c.source}"
            doc_id = document_id(src)
            new = replace(c, doc_id=doc_id, source=src, chunk_id=chunk_id(doc_id, c.section, c.text))
            out_chunks.append(new)
            known[new.chunk_id] = words[c.chunk_id]
            noisy = v.passage + rng.normal(0, 0.01, v.passage.shape).astype(np.float32)
            rows = v.sentences + rng.normal(0, 0.01, v.sentences.shape).astype(np.float32)
            norms = np.linalg.norm(rows, axis=1, keepdims=True) if len(rows) else 1.0
            groups.append(Vectors(noisy / np.linalg.norm(noisy), rows / norms))
    new_meta = {
        "format_version": FORMAT_VERSION,
        "store": store.name,
        "model": model,
        "dim": dim,
        "chunking": ChunkSettings().as_dict(),
        "chunks": len(out_chunks),
        "created": time.time(),
        "documents": sorted(docs, key=lambda d: d["source"]),
        "errors": [],
        "stat": stat,
        "failed": {},
    }
    segmenter = Segmenter((folder / "dictionary.txt").read_text(encoding="utf-8").split())
    began = time.perf_counter()
    write_snapshot(index_dir, new_meta, out_chunks, groups, dim, segmenter, known, out_texts, store)
    print(f"wrote {len(out_chunks):,} passages in {time.perf_counter() - began:.0f} s", flush=True)


class _Encoded:
    """The embedder, except that the question's vector is already known."""

    def __init__(self, embedder: object, vector: np.ndarray) -> None:
        self.embedder, self.vector = embedder, vector

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.vector

    def __getattr__(self, name: str) -> object:
        return getattr(self.embedder, name)


def disk(folder: Path) -> int:
    """Bytes under a folder, each hard-linked file once."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        st = path.lstat()
        if path.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total


def written(folder: Path) -> int:
    """Bytes of the files of a snapshot that no other snapshot shares (what its build wrote)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.stat().st_nlink == 1)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(source: Path, corpus_src: Path, work: Path, passages: int, reuse: bool) -> str:
    settings = Settings.from_env()
    embedder = load_embedder(settings.model, settings.model_dir)
    if not (reuse and (work / "index" / "CURRENT").is_file()):
        # in a process of its own, so that what it held is not counted in this one's memory
        cmd = [sys.executable, __file__, "--source", str(source), "--corpus", str(corpus_src), "--work", str(work)]
        subprocess.run([*cmd, "--passages", str(passages), "--write-only"], check=True)
    corpus, index_dir = work / "corpus", work / "index"
    engine = Engine(corpus, index_dir, embedder)
    began = time.perf_counter()
    engine.load()
    loaded = time.perf_counter() - began
    engine.search(QUESTIONS[0])
    cold = time.perf_counter() - began
    ix = engine.index
    assert ix is not None
    # search alone, the question's vector computed beforehand
    bare: list[float] = []
    for q in QUESTIONS * 10:
        vector = embedder.encode_queries([q])
        stand_in = _Encoded(embedder, vector)
        t = time.perf_counter()
        search_mod.search(ix, stand_in, q)  # type: ignore[arg-type]
        bare.append((time.perf_counter() - t) * 1000)
    size = len(ix.chunks)
    # a notice of typical length (8-20 passages): embedding its passages and sentences is most of an add
    typical = [
        d.source
        for d in ix.documents.values()
        if d.source.startswith("copy00000/") and Path(d.source).suffix == ".txt" and 8 <= d.chunks <= 20
    ]
    victim = corpus / sorted(typical)[0]
    lines = [
        f"{size:,} passages in {len(ix.documents):,} documents; snapshot on disk "
        f"{disk(ix.folder) / 2**30:.2f} GiB ({disk(ix.folder) / size:,.0f} bytes a passage); "
        f"index read in {loaded:.1f} s, first answer after {cold:.1f} s; RSS {rss_mib():,.0f} MiB "
        f"({rss_mib() * 2**20 / size:,.0f} bytes a passage), peak {peak_mib():,.0f} MiB; search without the "
        f"question encode p50 {pct(bare, 50):.1f} ms, p95 {pct(bare, 95):.1f} ms ({len(bare)} searches)",
        "",
        f"One document of {ix.documents[str(victim.relative_to(corpus))].chunks} passages; a thread searches "
        "(question encode included) all the while.",
        "",
        "| update | end to end | written | searches served | failed | p50 | p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    added = corpus / "added" / "notice.txt"
    steps = [
        ("add one document", lambda: (added.parent.mkdir(exist_ok=True), shutil.copyfile(victim, added))),
        (
            "change it",
            lambda: added.write_bytes(added.read_bytes() + "\n补充说明：本通知自发布之日起施行。\n".encode()),
        ),
        ("remove it", lambda: added.unlink()),
    ]
    for name, step in steps:
        latencies: list[float] = []
        failures: list[str] = []
        stop = threading.Event()

        def searcher(
            stop: threading.Event = stop, latencies: list[float] = latencies, failures: list[str] = failures
        ) -> None:
            n = 0
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    engine.search(QUESTIONS[n % len(QUESTIONS)])
                    latencies.append((time.perf_counter() - t) * 1000)
                except Exception as exc:  # counted, not raised: the figure is how many failed
                    failures.append(repr(exc))
                n += 1

        thread = threading.Thread(target=searcher)
        thread.start()
        time.sleep(1.0)
        t0 = time.perf_counter()
        step()
        report = engine.update()
        seconds = time.perf_counter() - t0
        time.sleep(0.5)
        stop.set()
        thread.join()
        new = engine.index
        assert new is not None and new.name == report.snapshot
        lines.append(
            f"| {name} | {seconds:.2f} s | {written(new.folder) / 2**20:.1f} MiB | {len(latencies)} | "
            f"{len(failures)} | {pct(latencies, 50):.0f} ms | {pct(latencies, 95):.0f} ms |"
        )
        segments = len(new.meta.get("segments", []))
        print(lines[-1], f"(embedded {report.embedded} passages, segments {segments})", flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, required=True, help="a built index of real documents")
    parser.add_argument("--corpus", type=Path, default=Path("../../shared/devset/docs"), help="its corpus folder")
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/updates-scale"))
    parser.add_argument("--reuse", action="store_true", help="keep an index made by an earlier run")
    parser.add_argument("--write-only", action="store_true", help="only make the index (a step of a run)")
    args = parser.parse_args()
    if args.write_only:
        settings = Settings.from_env()
        embedder = load_embedder(settings.model, settings.model_dir)
        replicate(args.source, args.corpus, args.work, args.passages, embedder.name, embedder.dim)
    else:
        print(run(args.source, args.corpus, args.work, args.passages, args.reuse))
    os._exit(0)


if __name__ == "__main__":
    main()
