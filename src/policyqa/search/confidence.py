"""Whether the first passage is likely to answer at all: the "no confident answer" flag.

Three signals, calibrated on the unanswerable questions of corpus/eval/seed-qa.jsonl and of the dev set of
64 real documents (see the README):

- conflicts: the question names a year or a place that the first passage's document contradicts (a 2027
  question against a notice of 2026, 深圳 or 海珠区 against a Guangzhou 天河区 page, 长征镇 against a
  document that never mentions it; identity.py). On many
  documents this is what most unanswerable questions look like: the near miss of another city or year.
- coverage: the share of the question's words that the first passage contains, each word weighted by how
  specific it is in general Chinese (jieba's dictionary frequencies). A question about 苏州工业园区 or
  个人所得税 names something specific that the passage lacks; a missing generic word (组成, 数量) costs little.
- contrast: how far the first passage's cosine stands above the question's similarity to the corpus as a
  whole (a z-score against a fixed sample of passages). An off-topic question is about as close to every
  passage; an answerable one picks some out.

Questions without Chinese characters cannot be matched word for word against a Chinese corpus, so for them
only the dense signals count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from policyqa.ingest.segment import normalize
from policyqa.models import Hit
from policyqa.snapshot.index import Index

_CJK = re.compile(r"[\u3400-\u9fff]")

# Chosen on corpus/eval/seed-qa.jsonl (22 unanswerable of 89 questions) and the dev set (11 of 361): on
# the seed alone 0.80 was best, but on real collections of many documents laypeople's questions share few
# words with statutes and 0.80 flagged 64 answerable questions of 350; 0.25 flags none of them and keeps
# the seed's precision (`policyqa eval` prints the flag's precision and recall on any QA file).
CONTRAST_WEIGHT = 0.1
THRESHOLD = 0.25  # Chinese questions: confident when coverage + 0.1 * contrast reaches this
FOREIGN_CONTRAST = 2.7  # questions without Chinese: the first passage must stand out this far ...
FOREIGN_COSINE = 0.74  # ... and be at least this close (a weak signal: see the README)


@dataclass(frozen=True)
class Confidence:
    confident: bool
    coverage: float
    contrast: float
    missing: tuple[str, ...]  # words of the question that no passage of the corpus contains
    conflicts: tuple[str, ...] = ()  # years and places of the question that the first document contradicts

    def as_dict(self) -> dict[str, object]:
        return {
            "confident": self.confident,
            "coverage": round(self.coverage, 4),
            "contrast": round(self.contrast, 4),
            "missing": list(self.missing),
            "conflicts": list(self.conflicts),
        }


def contrast(index: Index, qvec: np.ndarray, cosine: float) -> float:
    background = index.vectors.background() @ qvec
    spread = float(background.std())
    return (cosine - float(background.mean())) / spread if spread > 1e-9 else 0.0


def coverage(index: Index, words: list[str], passage: str) -> float:
    haystack = normalize(passage)
    total = found = 0.0
    for word in words:
        weight = index.segmenter.rarity(word)
        total += weight
        if word in haystack:
            found += weight
    return found / total if total else 0.0


def missing(index: Index, words: list[str]) -> tuple[str, ...]:
    """Words found nowhere in the corpus: neither the word nor all of its indexed pieces are known."""
    known = index.lexical.known

    def seen(word: str) -> bool:
        if known(word):
            return True
        pieces = index.segmenter.pieces(word)
        return bool(pieces) and all(known(p) for p in pieces)

    return tuple(dict.fromkeys(w for w in words if _CJK.search(w) and not seen(w)))


def assess(
    index: Index, question: str, words: list[str], qvec: np.ndarray, top: Hit | None, conflicts: tuple[str, ...] = ()
) -> Confidence:
    """Whether `top` is likely to answer; `conflicts` are the question's years and places that its
    document contradicts (identity.py)."""
    if top is None:  # nothing admitted (filters), or an empty corpus: the words may still be in it
        return Confidence(False, 0.0, 0.0, missing(index, words), conflicts)
    cos = top.dense if top.dense is not None else 0.0
    z = contrast(index, qvec, cos)
    cover = coverage(index, words, top.chunk.context)
    if _CJK.search(question):
        ok = cover + CONTRAST_WEIGHT * z >= THRESHOLD and not conflicts
    else:  # a question needs a word: a lone letter or sign (a, ?, 1) is close to anything short
        ok = any(len(w) > 1 for w in words) and z >= FOREIGN_CONTRAST and cos >= FOREIGN_COSINE
    return Confidence(ok, cover, z, missing(index, words), conflicts)
