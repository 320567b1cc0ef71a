"""Batch evaluation: a QA file of questions with required substrings -> hit@k, MRR@10, nDCG@10, misses."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from policyqa.errors import PolicyQAError
from policyqa.models import Chunk
from policyqa.search import SearchResult


@dataclass(frozen=True)
class Question:
    q: str
    must: tuple[str, ...]
    source: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.must)


@dataclass(frozen=True)
class Report:
    name: str
    questions: int
    hit1: float
    hit3: float
    hit5: float
    mrr10: float
    ndcg10: float
    misses: tuple[dict[str, object], ...] = field(default_factory=tuple)
    unanswerable: int = 0
    flag_precision: float | None = None  # of the questions flagged "no confident answer", share unanswerable
    flag_recall: float | None = None  # of the unanswerable questions, share flagged
    wrong_flags: tuple[str, ...] = field(default_factory=tuple)  # answerable questions flagged anyway
    missed_flags: tuple[str, ...] = field(default_factory=tuple)  # unanswerable questions answered confidently


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def read_questions(path: Path) -> list[Question]:
    """Lines of `{"q": "...", "must": ["substring", ...], "source": "optional file"}`; empty `must` = no answer."""
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PolicyQAError(f"cannot read {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            questions.append(Question(str(row["q"]), tuple(row.get("must", [])), row.get("source")))
        except (ValueError, KeyError, TypeError) as exc:
            raise PolicyQAError(f'{path}:{number}: expected {{"q": ..., "must": [...]}} ({exc})') from exc
    if not questions:
        raise PolicyQAError(f"{path} holds no questions")
    return questions


def relevant(chunk: Chunk, question: Question) -> bool:
    if question.source and chunk.source != question.source:
        return False
    text = _squash(chunk.text)
    return all(_squash(m) in text for m in question.must)


def evaluate(
    name: str, questions: list[Question], run: Callable[[str], SearchResult], all_chunks: list[Chunk]
) -> Report:
    """Ranks on the answerable questions, the confidence flag on all; `run` returns at least 10 hits."""
    answerable = [q for q in questions if q.answerable]
    h1 = h3 = h5 = mrr = ndcg = 0.0
    misses: list[dict[str, object]] = []
    flagged: dict[str, bool] = {}
    for q in questions:
        result = run(q.q)
        flagged[q.q] = result.confidence is not None and not result.confidence.confident
        if not q.answerable:
            continue
        hits = result.hits[:10]
        flags = [relevant(h.chunk, q) for h in hits]
        first = flags.index(True) + 1 if True in flags else None
        h1 += first == 1
        h3 += first is not None and first <= 3
        h5 += first is not None and first <= 5
        mrr += 1 / first if first else 0.0
        ideal = min(10, sum(relevant(c, q) for c in all_chunks)) or 1
        dcg = sum(1 / math.log2(i + 2) for i, f in enumerate(flags) if f)
        ndcg += dcg / sum(1 / math.log2(i + 2) for i in range(ideal))
        if first != 1:
            misses.append(
                {"q": q.q, "must": list(q.must), "rank": first, "top": hits[0].chunk.text[:80] if hits else ""}
            )
    n = len(answerable) or 1
    unanswerable = [q.q for q in questions if not q.answerable]
    wrong = tuple(q.q for q in answerable if flagged[q.q])
    caught = [q for q in unanswerable if flagged[q]]
    raised = len(caught) + len(wrong)
    return Report(
        name,
        len(answerable),
        h1 / n,
        h3 / n,
        h5 / n,
        mrr / n,
        ndcg / n,
        tuple(misses),
        len(unanswerable),
        len(caught) / raised if raised else None,
        len(caught) / len(unanswerable) if unanswerable else None,
        wrong,
        tuple(q for q in unanswerable if not flagged[q]),
    )
