"""Scale of the whole search path (issue 14): a synthetic corpus of N passages recombined from real policy
sentences, written through the real write path, then searched with the real dev-set questions.

How the corpus is made (`synthesise`):
- The real sentences are those of the built snapshots given with --real (by default the dev set of 64
  documents in /tmp/idx-new, and the seed document built with the same fp32 model), every sentence that has
  its own vector (chunk.sentence_spans), each once (the sentence that two passages share by overlap once),
  with its jieba words as words.jsonl holds them, less the words of its passage's title and section.
- Documents of 30 passages. Each picks a real document at random and takes its title with every year replaced
  by one random year of 2015-2026 and every place (identity.places_in) by one random city, district or county
  of identity.divisions() (the first place named becomes it, places within it go; a title naming none gets
  one in front): distinct titles, doc_ids, sources, so identity matching has work to do.
- A passage is a random run of 2-6 consecutive sentences of that real document (fewer when it has fewer),
  with its document's title and the section of the run's first sentence.
- Words (store.base.Words) are recombined without running jieba on passages: the title's and the section's
  words (jieba once per distinct title and section) followed by the real sentences' stored words; each
  sentence's words are the same head followed by its own stored words.
- Vectors: each sentence vector is the real sentence's vector plus Gaussian noise (sigma 0.005 a dimension,
  about 0.1 in norm), normalised; the passage vector is the normalised mean of its sentence vectors plus the
  same noise, normalised again.
- The snapshot is written by `write_snapshot` with every passage's Words given as `known`, so no
  segmentation runs; all of this is `write_corpus`, the one function to adapt when that signature changes.

Timed phases take /tmp/cpu.lock exclusively (--lock), generation and writing take it shared. Search is timed
with the dev questions' vectors encoded once by the model of /tmp/idx-new (cached in --qcache), so the query
encode is excluded; the baseline of every ratio is the same code on the real dev-set index, in the same run.

    python bench/scale_path.py --passages 100000            (about 6 minutes here; 300000: 20 minutes)
    python bench/scale_path.py --passages 1000000 --lexical-only --no-libraries   (10 minutes; the whole path at
    1M needs more memory than the write path has here: it holds the 6 GB of sentence vectors three times)
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.ingest.chunk import ChunkSettings, sentence_spans
from policyqa.ingest.identity import _YEAR, divisions, places_in
from policyqa.ingest.segment import Segmenter, normalize, normalize_query, split_sentences
from policyqa.models import Chunk
from policyqa.snapshot import index as index_mod
from policyqa.snapshot import layout
from policyqa.snapshot.build import write_snapshot
from policyqa.snapshot.documents import DocInfo
from policyqa.store.base import Vectors, Words
from policyqa.store.faiss import FaissStore

REAL = [Path("/tmp/idx-new"), Path("/tmp/wt14b/seed-idx")]
QUESTIONS = Path("/work/shared/devset/qa.jsonl")
QCACHE = Path("/tmp/policyqa-scale-questions.npz")
PER_DOC = 30
NOISE = 0.005
MODEL = "multilingual-e5-small:torch"


# --- the real sentences --------------------------------------------------------------------------------


@dataclass
class Pool:
    texts: list[str]
    words: list[list[str]]  # each sentence's own words (without its passage's head)
    sections: list[str]
    vectors: np.ndarray
    titles: list[str]  # per real document
    starts: np.ndarray  # sentences of real document r: starts[r]:starts[r + 1]
    dictionary: list[str]
    stripped: int  # sentences whose stored words began with their head's words (the rest: segmented again)


def real_pool(folders: Sequence[Path]) -> Pool:
    docs: dict[tuple[str, str], tuple[str, list[tuple[str, list[str], str, np.ndarray]]]] = {}
    dictionary: set[str] = set()
    stripped = 0
    for root in folders:
        snap = layout.current_snapshot(root)
        if snap is None:
            continue
        seg = Segmenter((snap / "dictionary.txt").read_text(encoding="utf-8").split())
        dictionary |= set(seg.words)
        with (snap / "words.jsonl").open(encoding="utf-8") as fh:
            stored = {row[0]: row[2] for row in map(json.loads, fh)}
        vectors, ptr = np.load(snap / "sentences.npy"), np.load(snap / "sentence_ptr.npy")
        heads: dict[str, list[str]] = {}
        for i, c in enumerate(layout.read_chunks(snap)):
            spans = sentence_spans(c)
            if not spans or int(ptr[i + 1] - ptr[i]) != len(spans):
                continue
            entry = docs.setdefault((str(root), c.doc_id), (c.title, []))[1]
            head = " ".join(p for p in (c.title, c.section) if p)
            hw = heads.setdefault(head, seg.words_of(head))
            body = [(s + c.body_start, e + c.body_start) for s, e in split_sentences(c.body) or [(0, len(c.body))]]
            for k, (s, e) in enumerate(spans):
                text = c.text[s:e]
                if entry and entry[-1][0] == text:
                    continue  # the sentence two passages share by overlap
                own = stored[c.chunk_id][body.index((s, e))] if (s, e) in body else None
                if own is not None and own[: len(hw)] == hw:
                    own, stripped = own[len(hw) :], stripped + 1
                else:
                    own = seg.words_of(text)
                entry.append((text, own, c.section, vectors[int(ptr[i]) + k]))
    kept = [(title, rows) for title, rows in docs.values() if len(rows) >= 2]
    flat = [row for _, rows in kept for row in rows]
    return Pool(
        [r[0] for r in flat],
        [r[1] for r in flat],
        [r[2] for r in flat],
        np.stack([r[3] for r in flat]).astype(np.float32),
        [title for title, _ in kept],
        np.concatenate([[0], np.cumsum([len(rows) for _, rows in kept])]).astype(np.int64),
        sorted(dictionary),
        stripped,
    )


# --- the synthetic corpus ------------------------------------------------------------------------------


@dataclass
class Corpus:
    chunks: list[Chunk]
    words: list[Words]
    groups: list[Vectors]
    texts: list[dict[str, Any]]
    infos: list[DocInfo]
    dictionary: list[str]


def _places() -> list[str]:
    return sorted(n for n in divisions() if len(n) >= 3 and n[-1] in "市区县")


def _title(template: str, rng: np.random.Generator, places: list[str]) -> str:
    year = str(rng.integers(2015, 2027))
    title = _YEAR.sub(year, template)
    found = sorted(places_in(normalize(title)), key=title.find)
    place = places[int(rng.integers(len(places)))]
    for k, name in enumerate(found):  # the first place named becomes the new one, the places within it go
        title = title.replace(name, "" if k else place)
    return title if found else place + title


def _runs(pool: Pool, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per passage: its real document's number; and the flat list of real sentences of all runs with the
    run boundaries (passage i holds flat[ptr[i]:ptr[i + 1]])."""
    real = rng.integers(0, len(pool.titles), size=-(-n // PER_DOC))
    doc = real[np.arange(n) // PER_DOC]
    lo, hi = pool.starts[doc], pool.starts[doc + 1]
    size = np.minimum(rng.integers(2, 7, size=n), hi - lo)
    first = lo + (rng.random(n) * (hi - lo - size + 1)).astype(np.int64)
    ptr = np.concatenate([[0], np.cumsum(size)])
    flat = np.repeat(first, size) + (np.arange(ptr[-1]) - np.repeat(ptr[:-1], size))
    return doc, flat, ptr


def _vectors(pool: Pool, flat: np.ndarray, ptr: np.ndarray, rng: np.random.Generator) -> list[Vectors]:
    dim = pool.vectors.shape[1]
    sentences = np.empty((len(flat), dim), np.float32)
    for a in range(0, len(flat), 200_000):
        part = pool.vectors[flat[a : a + 200_000]] + NOISE * rng.standard_normal((len(flat[a : a + 200_000]), dim))
        sentences[a : a + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    sizes = np.diff(ptr)
    passages = np.add.reduceat(sentences, ptr[:-1], axis=0) / sizes[:, None]
    passages += NOISE * rng.standard_normal(passages.shape, dtype=np.float32)
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    return [Vectors(passages[i], sentences[ptr[i] : ptr[i + 1]]) for i in range(len(sizes))]


def synthesise(pool: Pool, n: int, seed: int = 1, vectors: bool = True) -> Corpus:
    """N passages in documents of 30 (see the module's docstring); no vectors when `vectors` is false."""
    rng = np.random.default_rng(seed)
    seg = Segmenter(pool.dictionary)
    places = _places()
    real, flat, ptr = _runs(pool, n, rng)
    cut: dict[str, list[str]] = {}
    chunks: list[Chunk] = []
    words: list[Words] = []
    texts: list[dict[str, Any]] = []
    infos: list[DocInfo] = []
    for d in range(0, n, PER_DOC):
        title = _title(pool.titles[real[d]], rng, places)
        doc_id, source = f"{d // PER_DOC:012x}", f"synthetic/{d // PER_DOC:07d}-{title}.txt"
        tw = seg.words_of(title)
        body: list[str] = []
        at = 0
        for p in range(d, min(d + PER_DOC, n)):
            run = flat[ptr[p] : ptr[p + 1]]
            section = pool.sections[run[0]]
            head = tw + cut.setdefault(section, seg.words_of(section))
            text = "".join(pool.texts[j] for j in run)
            chunks.append(Chunk(f"{p:016x}", doc_id, source, title, section, text, at, at + len(text)))
            own = [pool.words[j] for j in run]
            words.append(Words(head + [w for s in own for w in s], [head + s for s in own]))
            body.append(text)
            at += len(text) + 1
        texts.append({"doc_id": doc_id, "source": source, "text": "\n".join(body), "outline": []})
        infos.append(DocInfo(doc_id, source, "0" * 64, at, len(body), time.time(), title))
    groups = _vectors(pool, flat, ptr, rng) if vectors else []
    return Corpus(chunks, words, groups, texts, infos, pool.dictionary)


def write_corpus(index_dir: Path, corpus: Corpus, dim: int = 384) -> str:
    """Publish the corpus as a snapshot through the real write path (no segmentation: every Words known)."""
    meta = {
        "format_version": layout.FORMAT_VERSION,
        "store": "faiss",
        "model": "multilingual-e5-small",
        "dim": dim,
        "chunking": ChunkSettings().as_dict(),
        "chunks": len(corpus.chunks),
        "created": time.time(),
        "documents": [i.as_dict() for i in corpus.infos],
        "errors": [],
    }
    known = {c.chunk_id: w for c, w in zip(corpus.chunks, corpus.words, strict=True)}
    return write_snapshot(
        index_dir, meta, corpus.chunks, corpus.groups, dim, Segmenter(corpus.dictionary), known, corpus.texts,
        FaissStore(),
    )  # fmt: skip


# --- measuring -----------------------------------------------------------------------------------------


@contextmanager
def cpu(lock: str, exclusive: bool) -> Iterator[None]:
    """Hold the machine's CPU lock: shared for heavy work, exclusive while timing."""
    if not lock:
        yield
        return
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: Sequence[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


def questions(qcache: Path) -> tuple[list[str], np.ndarray]:
    """The dev questions and their vectors (encoded once with the model of /tmp/idx-new, then cached)."""
    asked = [json.loads(line)["q"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not qcache.is_file():
        from policyqa.embed import load_embedder

        embedder = load_embedder(MODEL, None)
        vectors = np.stack([embedder.encode_queries([normalize_query(q)])[0] for q in asked]).astype(np.float32)
        np.savez(qcache, questions=np.array(asked), vectors=vectors)
    data = np.load(qcache)
    if list(data["questions"]) != asked:
        raise SystemExit(f"{qcache} holds other questions; delete it")
    return asked, data["vectors"]


class Given:
    """An Embedder whose question vectors were computed before: search time without the encode."""

    name, dim = "multilingual-e5-small", 384

    def __init__(self, asked: list[str], vectors: np.ndarray) -> None:
        self.table = {normalize_query(q): v for q, v in zip(asked, vectors, strict=True)}

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class Clock:
    """Time spent per part of a search; a part called inside another counts only for the outer one."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.depth = 0

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.depth += 1
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if not self.depth:
                    self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - began

        return timed


class Parts:
    """An object whose named methods are timed under a label each."""

    def __init__(self, inner: Any, clock: Clock, labels: dict[str, str]) -> None:
        self._inner, self._clock, self._labels = inner, clock, labels

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        return self._clock.wrap(self._labels[name], value) if name in self._labels else value


PARTS = ("dense leg", "lexical leg", "identity", "answer sentence", "confidence")


def breakdown(ix: index_mod.Index, embedder: Given, asked: list[str]) -> dict[str, float]:
    """Milliseconds per question in each part of `search`, the rest (fusion, centroids, ranking) by difference."""
    from policyqa.search import ranking as search_mod

    clock = Clock()
    saved = (ix.vectors, ix.lexical, ix.__dict__["identities"], search_mod._answer, search_mod.assess)
    dense = {"nearest": "dense leg", "scores": "dense leg", "closeness": "answer sentence"}
    ix.vectors = Parts(ix.vectors, clock, dense)
    ix.lexical = Parts(ix.lexical, clock, {"top": "lexical leg", "scores": "lexical leg", "idf": "lexical leg"})
    ix.__dict__["identities"] = Parts(saved[2], clock, {"agreement": "identity"})
    search_mod._answer = clock.wrap("answer sentence", search_mod._answer)  # type: ignore[assignment]
    search_mod.assess = clock.wrap("confidence", search_mod.assess)  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        for q in asked:
            search_mod.search(ix, embedder, q, 5)
        total = time.perf_counter() - began
    finally:
        ix.vectors, ix.lexical, ix.__dict__["identities"], search_mod._answer, search_mod.assess = saved
    out = {k: clock.spent.get(k, 0.0) * 1000 / len(asked) for k in PARTS}
    out["fusion, centroids, ranking (the rest)"] = total * 1000 / len(asked) - sum(out.values())
    out["whole search"] = total * 1000 / len(asked)
    return out


def measure(folder: Path, qcache: Path) -> dict[str, Any]:
    """In a fresh process: cold start, RSS, latency, the breakdown and the dense leg's recall."""
    from policyqa.search.ranking import search

    asked, qvecs = questions(qcache)
    embedder = Given(asked, qvecs)
    began = time.perf_counter()
    ix = index_mod.read(folder)
    loaded = time.perf_counter() - began
    search(ix, embedder, asked[0], 5)
    cold = time.perf_counter() - began
    rss_loaded = rss_mib()
    times, rss_200 = [], 0.0
    for n, q in enumerate(asked[1:], 1):
        t = time.perf_counter()
        search(ix, embedder, q, 5)
        times.append((time.perf_counter() - t) * 1000)
        if n == 200:
            rss_200 = rss_mib()
    parts = breakdown(ix, embedder, asked)
    sample = [(ix.segmenter.query_words(normalize_query(q)), normalize_query(q)) for q in asked[:20]]
    t = time.perf_counter()
    for words, text in sample:  # as search asked before issue 14: every document, for every question
        ix.identities.agreement(words, text)
    parts["(identity over every document, as before)"] = (time.perf_counter() - t) * 1000 / len(sample)
    vectors = ix.vectors.vectors  # type: ignore[attr-defined]
    exact = np.argsort(-(qvecs @ vectors.T), axis=1)[:, :50]
    found = [ix.vectors.nearest(q, 50) for q in qvecs]
    r10 = np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)])
    r50 = np.mean([len(set(f) & set(e)) / 50 for f, e in zip(found, exact, strict=True)])
    return {
        "passages": len(ix.chunks),
        "read_s": loaded,
        "cold_s": cold,
        "rss_loaded": rss_loaded,
        "rss_200": rss_200,
        "p50": pct(times, 50),
        "p95": pct(times, 95),
        "parts": parts,
        "recall10": float(r10),
        "recall50": float(r50),
        "dense": type(ix.vectors.dense).__name__,  # type: ignore[attr-defined]
    }


def child(args: list[str], lock: str) -> dict[str, Any]:
    """Run this file again in a fresh process under the exclusive CPU lock; its last line is JSON."""
    with cpu(lock, exclusive=True):
        out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def disk_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1024 / 1024


def generate(n: int, work: Path, lock: str, real: Sequence[Path]) -> dict[str, Any]:
    with cpu(lock, exclusive=False):
        began = time.perf_counter()
        pool = real_pool(real)
        corpus = synthesise(pool, n)
        made = time.perf_counter() - began
        shutil.rmtree(work, ignore_errors=True)
        began = time.perf_counter()
        name = write_corpus(work, corpus)
        wrote = time.perf_counter() - began
    return {
        "pool": len(pool.texts),
        "real_docs": len(pool.titles),
        "stripped": pool.stripped,
        "documents": len(corpus.infos),
        "sentences": sum(len(w.sentences) for w in corpus.words),
        "generate_s": made,
        "write_s": wrote,
        "disk_mib": disk_mib(work / "snapshots" / name),
        "files": {p.name: p.stat().st_size for p in (work / "snapshots" / name).iterdir()},
    }


def report(n: int, made: dict[str, Any], got: dict[str, Any], base: dict[str, Any]) -> str:
    lines = [
        f"### {n:,} passages",
        "",
        f"{made['documents']:,} documents, {made['sentences']:,} sentences, recombined from {made['pool']:,} real "
        f"sentences of {made['real_docs']} documents; generated in {made['generate_s']:.0f} s. Dense index: "
        f"{got['dense']}.",
        "",
        "| | figure | per passage | vs dev set (2,715 passages) |",
        "|---|---|---|---|",
        f"| write (`_write_snapshot`) | {made['write_s']:.1f} s | {made['write_s'] / n * 1e6:.0f} µs | |",
        f"| disk | {made['disk_mib']:,.0f} MiB | {made['disk_mib'] * 1024 * 1024 / n:,.0f} B | |",
        f"| cold start (`index.read` + first search) | {got['cold_s']:.1f} s (read {got['read_s']:.1f} s) | | "
        f"{got['cold_s'] / base['cold_s']:.0f}x |",
        f"| RSS after loading | {got['rss_loaded']:,.0f} MiB | {got['rss_loaded'] * 1024 * 1024 / n:,.0f} B | "
        f"+{got['rss_loaded'] - base['rss_loaded']:,.0f} MiB |",
        f"| RSS after 200 searches | {got['rss_200']:,.0f} MiB | | +{got['rss_200'] - base['rss_200']:,.0f} MiB |",
        f"| search p50 (no encode) | {got['p50']:.1f} ms | | {got['p50'] / base['p50']:.1f}x |",
        f"| search p95 (no encode) | {got['p95']:.1f} ms | | {got['p95'] / base['p95']:.1f}x |",
        f"| dense leg recall@10 / @50 vs exact | {got['recall10']:.3f} / {got['recall50']:.3f} | | |",
        "",
        "| part of a search (mean ms per question) | this corpus | dev set |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v:.2f} | {base['parts'][k]:.2f} |" for k, v in got["parts"].items()]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passages", type=int, default=100_000, help="size of the synthetic corpus, e.g. 100000")
    p.add_argument("--work", type=Path, default=Path("/tmp/policyqa-scale"), help="where its index is written")
    p.add_argument("--real", type=Path, action="append", help="a built index whose sentences are recombined")
    p.add_argument("--qcache", type=Path, default=QCACHE, help="cache of the dev questions' vectors")
    p.add_argument("--lock", default="/tmp/cpu.lock", help="CPU lock file ('' for none)")
    p.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child: measure this index folder
    p.add_argument("--lexical", type=Path, help=argparse.SUPPRESS)  # the child: compare lexical engines here
    p.add_argument("--lexical-only", action="store_true", help="only the lexical comparison (no vectors)")
    p.add_argument("--no-lexical", action="store_true", help="leave out the comparison of lexical engines")
    p.add_argument("--no-libraries", action="store_true", help="compare our own lexical code only (no bm25s, tantivy)")
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.qcache)))
        return
    if args.lexical:
        from lexical_scale import compare

        print(json.dumps(compare(args.lexical, args.qcache, libraries=not args.no_libraries)))
        return
    real = args.real or [r for r in REAL if r.exists()]
    questions(args.qcache)
    work = args.work / str(args.passages)
    if args.lexical_only:
        from lexical_scale import report as lexical_report
        from lexical_scale import write_words

        with cpu(args.lock, exclusive=False):
            write_words(work, synthesise(real_pool(real), args.passages, vectors=False))
        asked = ["--lexical", str(work), "--qcache", str(args.qcache)] + ["--no-libraries"] * args.no_libraries
        print(lexical_report(args.passages, child(asked, args.lock)))
        return
    made = generate(args.passages, work, args.lock, real)
    base = child(["--measure", str(real[0]), "--qcache", str(args.qcache)], args.lock)
    got = child(["--measure", str(work), "--qcache", str(args.qcache)], args.lock)
    print(report(args.passages, made, got, base))
    print(json.dumps({"made": made, "got": got, "base": base}))
    if not args.no_lexical:
        from lexical_scale import report as lexical_report

        snapshot = str(layout.current_snapshot(work))
        print(lexical_report(args.passages, child(["--lexical", snapshot, "--qcache", str(args.qcache)], args.lock)))


if __name__ == "__main__":
    main()
