"""Lexical search at scale (issue 14, item 4): the blended top 50 (a passage's own BM25 and its best
sentence's, weight 0.6) by today's code, by the kept code, by bm25s and by tantivy fed the same jieba words.

Run by bench/scale_path.py in a child process under the exclusive CPU lock, on the words of its synthetic
corpus: the BM25 arrays of the snapshot (lexical.*, sentences.*, sentence_owner.npy) and the dev
questions' jieba words (query_words of the corpus's dictionary).
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maxscore import Blended, best_per_owner, blend
from policyqa.ingest.segment import Segmenter, normalize_query
from policyqa.store.faiss import ArrayLexical, Owners
from policyqa.store.lexical import BM25, best

DEPTH, SENTENCE = 50, 0.6
Top = Callable[[list[str]], list[tuple[int, float]]]


def write_words(folder: Path, corpus: Any) -> None:
    """Only what lexical search reads, for sizes whose vectors would not fit in memory with the write path."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    BM25.build([w.passage for w in corpus.words]).save(folder)
    BM25.build([s for w in corpus.words for s in w.sentences]).save(folder, "sentences")
    np.save(folder / "sentence_owner.npy", np.array([n for n, w in enumerate(corpus.words) for _ in w.sentences]))
    (folder / "dictionary.txt").write_text("\n".join(corpus.dictionary) + "\n", encoding="utf-8")


# --- (a) today's code, as it was before issue 14 ------------------------------------------------------


def today_scores(bm: BM25, words: Sequence[str]) -> np.ndarray:
    out = np.zeros(bm.size, np.float32)
    avgdl = float(bm.doc_len.mean()) or 1.0
    for word in dict.fromkeys(words):
        t = bm.terms.get(word)
        if t is None:
            continue
        lo, hi = bm.indptr[t], bm.indptr[t + 1]
        docs, tf = bm.indices[lo:hi], bm.tfs[lo:hi]
        norm = tf + bm.k1 * (1 - bm.b + bm.b * bm.doc_len[docs] / avgdl)
        out[docs] += bm.idf(word) * tf * (bm.k1 + 1) / norm
    return out


def today(passages: BM25, sentences: BM25, owner: np.ndarray) -> Top:
    def top(words: list[str]) -> list[tuple[int, float]]:
        own = today_scores(passages, words)
        best_sentence = np.zeros_like(own)
        np.maximum.at(best_sentence, owner, today_scores(sentences, words))
        return best((1 - SENTENCE) * own + SENTENCE * best_sentence, DEPTH)

    return top


def kept(passages: BM25, sentences: BM25, owner: np.ndarray) -> Top:
    lexical = ArrayLexical(passages, sentences, owner, Owners([]))

    def top(words: list[str]) -> list[tuple[int, float]]:
        lexical._last = None  # no help from a repeated question
        return list(lexical.top(words, DEPTH, SENTENCE).items())

    return top


def pruned(passages: BM25, sentences: BM25, owner: np.ndarray) -> Top:
    ranked = Blended(passages, sentences, owner)
    ranked.top(["企业"], DEPTH, SENTENCE)  # the per-term ceilings, computed once per loaded snapshot

    def top(words: list[str]) -> list[tuple[int, float]]:
        return ranked.top(words, DEPTH, SENTENCE)

    return top


# --- (d) bm25s, (e) tantivy ---------------------------------------------------------------------------


def tokens(bm: BM25) -> list[list[int]]:
    """Each document's term ids, each repeated tf times (BM25 needs no order), from the postings."""
    term = np.repeat(np.arange(len(bm.terms), dtype=np.int64), np.diff(bm.indptr))
    order = np.argsort(bm.indices, kind="stable")
    doc, term, tf = bm.indices[order], term[order], bm.tfs[order].astype(np.int64)
    flat = np.repeat(term, tf)
    ends = np.cumsum(np.bincount(np.repeat(doc, tf), minlength=bm.size))
    return [part.tolist() for part in np.split(flat, ends[:-1])]


def with_bm25s(passages: BM25, sentences: BM25, owner: np.ndarray, where: Path) -> Top:
    import bm25s
    from bm25s.tokenization import Tokenized

    engines = []
    for bm, name in ((passages, "passages"), (sentences, "sentences")):
        engine = bm25s.BM25(k1=bm.k1, b=bm.b, method="lucene")
        engine.index(Tokenized(ids=tokens(bm), vocab=dict(bm.terms)), show_progress=False)
        engine.save(str(where / name))
        engines.append(engine)
    k = passages.k1 + 1  # lucene's BM25 leaves out the (k1 + 1) of the numerator

    def top(words: list[str]) -> list[tuple[int, float]]:
        asked = [w for w in dict.fromkeys(words) if w in passages.terms or w in sentences.terms]
        own = k * engines[0].get_scores([w for w in asked if w in passages.terms]).astype(np.float32)
        sent = k * engines[1].get_scores([w for w in asked if w in sentences.terms]).astype(np.float32)
        return best(blend(own, best_per_owner(sent, owner, len(own)), SENTENCE), DEPTH)

    return top


def with_tantivy(passages: BM25, sentences: BM25, owner: np.ndarray, where: Path, wide: int = 10) -> Top:
    """Top `wide` x 50 of the passages and of the sentences, blended over their union (a part not retrieved
    counts 0: tantivy cannot rank by a passage's best sentence)."""
    import tantivy

    searchers = []
    for bm, name in ((passages, "passages"), (sentences, "sentences")):
        schema_builder = tantivy.SchemaBuilder()
        schema_builder.add_text_field("w", tokenizer_name="whitespace", index_option="freq")
        schema_builder.add_integer_field("n", stored=True, fast=True)
        schema = schema_builder.build()
        (where / name).mkdir()
        index = tantivy.Index(schema, path=str(where / name))
        writer = index.writer(heap_size=300_000_000, num_threads=1)
        names = sorted(bm.terms, key=bm.terms.__getitem__)
        for n, ids in enumerate(tokens(bm)):
            writer.add_document(tantivy.Document(w=" ".join(names[i] for i in ids), n=n))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        searchers.append((index.searcher(), schema))

    def ranked(at: int, words: list[str], limit: int) -> list[tuple[float, int]]:
        searcher, schema = searchers[at]
        should = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "w", w)) for w in words]
        q = tantivy.Query.boolean_query(should)
        return [(score, searcher.doc(addr)["n"][0]) for score, addr in searcher.search(q, limit).hits]

    def top(words: list[str]) -> list[tuple[int, float]]:
        asked = list(dict.fromkeys(words))
        if not asked:
            return []
        scores: dict[int, list[float]] = {}
        for score, n in ranked(0, asked, wide * DEPTH):
            scores.setdefault(n, [0.0, 0.0])[0] = score
        for score, n in ranked(1, asked, wide * DEPTH * 4):
            entry = scores.setdefault(int(owner[n]), [0.0, 0.0])
            entry[1] = max(entry[1], score)
        fused = {n: (1 - SENTENCE) * a + SENTENCE * b for n, (a, b) in scores.items()}
        return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:DEPTH]

    return top


# --- the comparison -----------------------------------------------------------------------------------


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1024 / 1024


def timed(top: Top, queries: list[list[str]], truth: list[list[tuple[int, float]]]) -> tuple[list[Any], dict[str, Any]]:
    """One engine's answers to every question, its p50/p95 and its agreement with `truth` (itself if none)."""
    times, results = [], []
    for words in queries:
        t = time.perf_counter()
        results.append(top(words))
        times.append((time.perf_counter() - t) * 1000)
    truth = truth or results
    overlap = [
        len({i for i, _ in r} & {i for i, _ in e}) / len(e) if e else float(not r)
        for r, e in zip(results, truth, strict=True)
    ]
    return results, {
        "p50": float(np.percentile(times, 50)),
        "p95": float(np.percentile(times, 95)),
        "overlap": float(np.mean(overlap)),
        "identical": sum(r == e for r, e in zip(results, truth, strict=True)) / len(truth),
    }


def compare(folder: Path, qcache: Path, libraries: bool = True) -> dict[str, Any]:
    """Per engine: build seconds, RSS growth, index size, p50/p95 of one blended top 50, and agreement with
    today's top 50 (overlap@50; questions whose 50 ids and scores are identical)."""
    from scale_path import questions

    asked, _ = questions(qcache)
    seg = Segmenter((folder / "dictionary.txt").read_text(encoding="utf-8").split())
    queries = [seg.query_words(normalize_query(q)) for q in asked]
    passages, sentences = BM25.load(folder), BM25.load(folder, "sentences")
    owner = np.load(folder / "sentence_owner.npy")
    files = [*folder.glob("lexical.*"), *folder.glob("sentences.*.npy"), *folder.glob("sentences.*npz")]
    files += [folder / "sentences.terms.json", folder / "sentence_owner.npy"]
    ours = sum(f.stat().st_size for f in files) / 1024 / 1024
    scratch = Path(tempfile.mkdtemp(prefix="lexical-scale-"))
    makers: dict[str, Callable[[], Top]] = {
        "(a) today": lambda: today(passages, sentences, owner),
        "(b) term scores once per posting (BM25.scores now)": lambda: kept(passages, sentences, owner),
    }
    makers["(c) max-score top-k over the same postings"] = lambda: pruned(passages, sentences, owner)
    if libraries:
        makers["(d) bm25s 0.3 (numpy backend)"] = lambda: with_bm25s(passages, sentences, owner, scratch)
        makers["(e) tantivy 0.27, top 500/2000 blended"] = lambda: with_tantivy(passages, sentences, owner, scratch)
    rows: dict[str, Any] = {}
    truth: list[list[tuple[int, float]]] = []
    try:
        for name, make in makers.items():
            gc.collect()
            before, began = rss_mib(), time.perf_counter()
            top = make()
            built = time.perf_counter() - began
            top(queries[0])
            grown = rss_mib() - before
            results, row = timed(top, queries, truth)
            truth = truth or results
            library = "bm25s" in name or "tantivy" in name
            rows[name] = {"build_s": built, "rss_mib": grown, "disk_mib": disk_mib(scratch) if library else ours, **row}
            if library:
                shutil.rmtree(scratch)
                scratch.mkdir()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"passages": passages.size, "sentences": sentences.size, "postings": int(passages.indptr[-1]),
            "sentence_postings": int(sentences.indptr[-1]), "words": float(np.mean([len(q) for q in queries])),
            "rows": rows}  # fmt: skip


def report(n: int, got: dict[str, Any]) -> str:
    lines = [
        f"### Lexical top 50 at {n:,} passages",
        "",
        f"{got['sentences']:,} sentences; {got['postings']:,} passage and {got['sentence_postings']:,} sentence "
        f"postings; {len(got['rows'])} engines on the {got['words']:.1f} words of each dev question, one at a time.",
        "",
        "| engine | p50 | p95 | build | RSS growth | index | overlap@50 with today | identical top 50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in got["rows"].items():
        lines.append(
            f"| {name} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['build_s']:.1f} s | {r['rss_mib']:,.0f} MiB | "
            f"{r['disk_mib']:,.0f} MiB | {r['overlap']:.3f} | {r['identical']:.0%} |"
        )
    return "\n".join(lines) + "\n" + json.dumps(got)
