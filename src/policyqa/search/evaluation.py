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
from policyqa.search.ranking import SearchResult


@dataclass(frozen=True)
class Question:
    q: str
    must: tuple[str, ...]
    source: str | None = None
    fields: tuple[tuple[str, str], ...] = ()  # the line's other fields, as text, for --group-by

    def group(self, field: str) -> str:
        """The question's group under `field`: the first word of its value (the first word of `origin`, the
        file-name prefix of `source`: ncp-0a1b.txt -> ncp)."""
        value = self.source if field == "source" else dict(self.fields).get(field)
        if not value:
            return "(none)"
        return re.split(r"[\s\-_/]+", value.strip(), maxsplit=1)[0] or "(none)"

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
            extra = tuple((k, str(v)) for k, v in row.items() if k not in ("q", "must", "source") and v is not None)
            questions.append(Question(str(row["q"]), tuple(row.get("must", [])), row.get("source"), extra))
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
    return summarise(name, [outcome(q, run(q.q), all_chunks) for q in questions])


@dataclass(frozen=True)
class Outcome:
    """What one question got: the rank of the first relevant passage, nDCG@10, whether it was flagged."""

    question: Question
    first: int | None
    ndcg: float
    flagged: bool
    top: str


def outcome(q: Question, result: SearchResult, all_chunks: list[Chunk]) -> Outcome:
    flagged = result.confidence is not None and not result.confidence.confident
    if not q.answerable:
        return Outcome(q, None, 0.0, flagged, "")
    hits = result.hits[:10]
    flags = [relevant(h.chunk, q) for h in hits]
    first = flags.index(True) + 1 if True in flags else None
    ideal = min(10, sum(relevant(c, q) for c in all_chunks)) or 1
    dcg = sum(1 / math.log2(i + 2) for i, f in enumerate(flags) if f)
    ndcg = dcg / sum(1 / math.log2(i + 2) for i in range(ideal))
    return Outcome(q, first, ndcg, flagged, hits[0].chunk.text[:80] if hits else "")


def summarise(name: str, outcomes: list[Outcome]) -> Report:
    answerable = [o for o in outcomes if o.question.answerable]
    n = len(answerable) or 1

    def share(test: Callable[[int], bool]) -> float:
        return sum(1 for o in answerable if o.first is not None and test(o.first)) / n

    misses: tuple[dict[str, object], ...] = tuple(
        {"q": o.question.q, "must": list(o.question.must), "rank": o.first, "top": o.top}
        for o in answerable
        if o.first != 1
    )
    unanswerable = [o for o in outcomes if not o.question.answerable]
    wrong = tuple(o.question.q for o in answerable if o.flagged)
    caught = [o for o in unanswerable if o.flagged]
    raised = len(caught) + len(wrong)
    return Report(
        name,
        len(answerable),
        share(lambda r: r == 1),
        share(lambda r: r <= 3),
        share(lambda r: r <= 5),
        sum(1 / o.first for o in answerable if o.first) / n,
        sum(o.ndcg for o in answerable) / n,
        misses,
        len(unanswerable),
        len(caught) / raised if raised else None,
        len(caught) / len(unanswerable) if unanswerable else None,
        wrong,
        tuple(o.question.q for o in unanswerable if not o.flagged),
    )


def by_group(name: str, outcomes: list[Outcome], field: str) -> list[Report]:
    """One report per group of questions under `field` (see Question.group), named `name/group`."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.question.group(field), []).append(o)
    return [summarise(f"{name}/{g}", groups[g]) for g in sorted(groups)]
