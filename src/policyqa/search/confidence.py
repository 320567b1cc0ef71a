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

When the flag is up, `reason_of` says why, as a stable code and a sentence for people (REASONS); any decision
that builds a Confidence gets it, and may set its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from policyqa.embed import Embedder
from policyqa.ingest.segment import normalize
from policyqa.search.noanswer import Evidence, default_model, features, named_absent
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


Reason = Literal[
    "conflict", "not_covered", "off_topic", "missing_words", "no_figure", "no_match", "filtered", "no_results"
]
# The sentence people read for each code; conflict and missing_words also name what was not found.
REASONS: dict[str, str] = {
    "conflict": "问题中的年份或地点与最接近的文档不符",
    "not_covered": "问题提到的法规或文件不在资料库中",
    "off_topic": "这个问题与资料库中的文档无关",
    "missing_words": "问题中的一些词在所有文档中都没有出现",
    "no_figure": "最接近的段落里没有问题所问的数字或日期",
    "no_match": "没有哪一段明显切合这个问题，最接近的段落可能答非所问",
    "filtered": "筛选条件排除了所有文档，可以放宽筛选条件再试",
    "no_results": "索引中没有可检索的段落",
}


@dataclass(frozen=True)
class Confidence:
    confident: bool
    coverage: float
    contrast: float
    missing: tuple[str, ...]  # words of the question that no passage of the corpus contains
    conflicts: tuple[str, ...] = ()  # years and places of the question that the first document contradicts
    reason: Reason | None = None  # why not confident: left out, reason_of decides; None when confident
    reason_text: str | None = None  # the reason as a sentence for people; left out, REASONS[reason]
    probability: float | None = None  # the calibrated model's P(no passage answers); None: the simple rule
    signals: tuple[tuple[str, float], ...] = ()  # what the model read (noanswer.features), for eval and fitting

    def __post_init__(self) -> None:
        if self.confident:
            return
        code, text = (self.reason, self.reason_text or REASONS[self.reason]) if self.reason else reason_of(self)
        object.__setattr__(self, "reason", code)  # frozen: the only way to fill a field after __init__
        object.__setattr__(self, "reason_text", text)

    def as_dict(self) -> dict[str, object]:
        return {
            "confident": self.confident,
            "coverage": round(self.coverage, 4),
            "contrast": round(self.contrast, 4),
            "missing": list(self.missing),
            "conflicts": list(self.conflicts),
            "reason": self.reason,
            "reason_text": self.reason_text,
            "probability": None if self.probability is None else round(self.probability, 4),
        }


# A Confidence for a search that had no passage to judge: an empty index.
NO_RESULTS = Confidence(False, 0.0, 0.0, (), reason="no_results")


def reason_of(confidence: Confidence) -> tuple[Reason, str]:
    """Why a flagged answer is not confident, from the signals a decision sees: a year or place that the first
    document contradicts outweighs words that no document contains, which outweigh a weak match overall."""
    missing = [w for w in confidence.missing if not any(c in w for c in confidence.conflicts)]  # named already
    unseen = [w for w in missing if len(w) > 1]  # a lone 钱 or 做 missing says little next to 红烧肉
    if confidence.conflicts:
        also = f"，文档中也没有出现{_quoted(unseen)}" if unseen else ""
        return "conflict", f"问题中的{_quoted(map(_named, confidence.conflicts))}与最接近的文档不符{also}"
    if missing:
        return "missing_words", f"文档中没有出现{_quoted(unseen or missing)}"
    return "no_match", REASONS["no_match"]


def _quoted(words: Iterable[str]) -> str:
    return "、".join(f"“{w}”" for w in words)


def _named(conflict: str) -> str:
    """A conflicting year reads as one (2027年); places and units are named as they are."""
    return f"{conflict}年" if conflict.isdigit() else conflict


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


def assess(index: Index, embedder: Embedder, ev: Evidence) -> Confidence:
    """Whether the first passage of a search is likely to answer: the calibrated model (noanswer.py) for
    Chinese questions searched with the encoder it was fitted on, the simple rule otherwise."""
    words = list(ev.words)
    if ev.top is None:  # the filters admitted no passage (an empty index has no Confidence): the words may be there
        return Confidence(False, 0.0, 0.0, missing(index, words), ev.conflicts, reason="filtered")
    cos = ev.top.dense if ev.top.dense is not None else 0.0
    z = contrast(index, ev.qvec, cos)
    cover = coverage(index, words, ev.top.chunk.context)
    gone = missing(index, words)
    if not _CJK.search(ev.question):  # a question needs a word: a lone letter or sign is close to anything short
        ok = any(len(w) > 1 for w in words) and z >= FOREIGN_CONTRAST and cos >= FOREIGN_COSINE
        return Confidence(ok, cover, z, gone, ev.conflicts)
    model = default_model()
    if not model.applies_to(embedder):
        return Confidence(cover + CONTRAST_WEIGHT * z >= THRESHOLD and not ev.conflicts, cover, z, gone, ev.conflicts)
    signals = features(index, embedder, ev, cover, gone)  # computed for every Chinese question: the fit reads them
    p = model.probability(signals)
    if p < model.threshold:
        return Confidence(True, cover, z, gone, ev.conflicts, probability=p, signals=tuple(signals.items()))
    code, text = _model_reason(index, ev, signals, gone)
    return Confidence(False, cover, z, gone, ev.conflicts, code, text, p, tuple(signals.items()))


def _model_reason(
    index: Index, ev: Evidence, signals: dict[str, float], gone: tuple[str, ...]
) -> tuple[Reason | None, str | None]:
    """The most specific thing that can be said of a flagged question, in this order: a conflicting year or
    place, a law the corpus does not hold, chit-chat, words no document holds, a figure the passage lacks.
    None leaves it to reason_of (conflicts, missing words, or nothing that stands out)."""
    if ev.conflicts:
        return None, None
    if signals["named_absent"]:
        return "not_covered", f"资料库中没有{_quoted(f'《{n}》' for n in named_absent(ev.question, index))}"
    if signals["chat_hinge_top"] > 0:
        return "off_topic", REASONS["off_topic"]
    if gone:
        return None, None
    if signals["qty_miss_passage"]:
        return "no_figure", REASONS["no_figure"]
    return None, None
