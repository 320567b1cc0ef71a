"""Operators' known questions: `<corpus>/.policyqa/questions.jsonl`, each question pointing at the passage that
answers it by a string of its document. Read, added and removed here; the index build re-attaches them by that
string whenever the index is refreshed, and lists those whose string no document holds any more."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from policyqa.errors import NotFoundError, QuestionError
from policyqa.ingest import sidecar
from policyqa.ingest.segment import normalize, split_sentences

FILE = sidecar.QUESTIONS
LIST_QUESTIONS = "GET /api/questions"  # the CLI names its own command instead
MIN_QUESTION, MAX_QUESTION = 2, 500
MIN_CONTAINS, MAX_CONTAINS = 2, 2000  # a sentence or a passage of the document


@dataclass(frozen=True)
class Question:
    """One line of the file, as the index build reads it."""

    id: str
    q: str
    source: str  # the document's file, relative to the corpus folder
    contains: str  # a string of the passage, e.g. its answering sentence
    added: str  # UTC, ISO 8601

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """An indexed document a question may point at: its id, its file and its cleaned text (the index's)."""

    doc_id: str
    source: str
    text: str
    # Each passage's (start, end) in `text`: a build attaches a question to the passages that hold its string,
    # so a string running over two of them attaches to none. () when not known: the whole text is looked at.
    passages: tuple[tuple[int, int], ...] = ()

    def haystacks(self) -> list[str]:
        """The normalised texts a question's string must lie in: each passage's, or the whole text."""
        return [normalize(self.text[a:b]) for a, b in self.passages] or [normalize(self.text)]


def path(corpus_dir: Path) -> Path:
    return sidecar.path(corpus_dir, FILE)


def question_id(q: str, source: str) -> str:
    """Stable: the same question of the same document has the same id, in any corpus and at any time."""
    return hashlib.sha1(f"{source}\x1f{normalize(q)}".encode()).hexdigest()[:10]


def read(corpus_dir: Path) -> list[Question]:
    """The operators' questions, in the order they were added (lines without the fields are passed over)."""
    return read_from(sidecar.read_rows(path(corpus_dir)))


def holds(text: str, contains: str) -> bool:
    """Whether `text` holds `contains` once both are normalised (NFKC, case, runs of white space)."""
    wanted = normalize(contains)
    return bool(wanted) and wanted in normalize(text)


def checked(q: str, target: Target, contains: str) -> Question:
    """The question as it would be stored, or QuestionError naming the field that is wrong."""
    q, contains = " ".join(q.split()), contains.strip()
    if not MIN_QUESTION <= len(q) <= MAX_QUESTION:
        rule = f"{MIN_QUESTION}-{MAX_QUESTION} characters after trimming"
        raise QuestionError("q", rule, f"the question is {len(q)} characters long; write {rule}")
    if not MIN_CONTAINS <= len(contains) <= MAX_CONTAINS:
        rule = f"{MIN_CONTAINS}-{MAX_CONTAINS} characters of the document"
        raise QuestionError("contains", rule, f"contains is {len(contains)} characters long; give {rule}")
    if not holds(target.text, contains):
        raise QuestionError(
            "contains",
            "a string of the document's text",
            f"{target.source} does not contain {contains[:40]!r}; copy a sentence of the passage that answers",
        )
    wanted = normalize(contains)
    if not any(wanted in h for h in target.haystacks()):
        raise QuestionError(
            "contains",
            "a string of one passage of the document",
            f"{contains[:40]!r} runs over two passages of {target.source}; give a string inside one passage, "
            "e.g. the sentence that answers",
        )
    added = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Question(question_id(q, target.source), q, target.source, contains, added)


def add(corpus_dir: Path, q: str, target: Target, contains: str) -> Question:
    """Check the question and append it to the file (rewritten atomically, under its lock). The same question
    (after normalisation) of the same document is refused: QuestionError with status 409."""
    question = checked(q, target, contains)
    file = path(corpus_dir)
    with sidecar.locked(file):
        rows = sidecar.read_rows(file)
        if any(r.get("id") == question.id for r in rows):
            message = f"the question is already a known question of {target.source} (id {question.id})"
            raise QuestionError("q", "not already a known question of the document", message, 409)
        sidecar.rewrite(file, map(sidecar.line, [*rows, question.as_dict()]))
    return question


def remove(corpus_dir: Path, ids: list[str]) -> list[Question]:
    """Remove the questions with these ids; all are checked first (NotFoundError names those not there)."""
    wanted = list(dict.fromkeys(ids))
    file = path(corpus_dir)
    with sidecar.locked(file):
        rows = sidecar.read_rows(file)
        present = {str(r.get("id")) for r in rows}
        missing = [i for i in wanted if i not in present]
        if missing:
            raise NotFoundError(f"no known question with id {', '.join(missing)}; list them with {LIST_QUESTIONS}")
        sidecar.rewrite(file, [sidecar.line(r) for r in rows if r.get("id") not in wanted])
    gone = set(wanted)
    return [q for q in read_from(rows) if q.id in gone]


def read_from(rows: list[dict[str, object]]) -> list[Question]:
    """The rows that are questions (a line edited by hand without the fields is passed over)."""
    return [
        Question(str(r["id"]), str(r["q"]), str(r["source"]), str(r["contains"]), str(r.get("added", "")))
        for r in rows
        if all(f in r for f in ("id", "q", "source", "contains"))
    ]


def listed(found: list[Question], targets: dict[str, Target]) -> list[dict[str, str | None]]:
    """Each question with its document in the index (`targets`: source -> Target, null when not indexed) and
    its status: attached when a passage of that document in the index still holds its string (what a refresh
    attaches), else unmatched."""
    rows: list[dict[str, str | None]] = []
    normal: dict[str, list[str]] = {}  # each document's passages normalised once, however many questions it has
    for question in found:
        target = targets.get(question.source)
        if target is not None and question.source not in normal:
            normal[question.source] = target.haystacks()
        wanted = normalize(question.contains)
        matched = target is not None and bool(wanted) and any(wanted in h for h in normal[question.source])
        status = "attached" if matched else "unmatched"
        rows.append({**question.as_dict(), "doc_id": target.doc_id if target else None, "status": status})
    return rows


def report(found: list[Question], targets: dict[str, Target], snapshot: str | None) -> dict[str, Any]:
    """The questions as the API and `policyqa questions list --json` show them: each with its document and
    status, the snapshot that says so, and how many are attached and unmatched."""
    rows = listed(found, targets)
    attached = sum(r["status"] == "attached" for r in rows)
    return {"questions": rows, "snapshot": snapshot, "attached": attached, "unmatched": len(rows) - attached}


def answering(q: str, passage: str) -> str:
    """The sentence of `passage` that shares most two-character pieces with the question (the one a search
    would mark as the answer, near enough), else the passage itself: what a question made from a search
    result points at."""
    wanted = {q[i : i + 2] for i in range(len(q) - 1)}
    best, score = passage.strip(), 0
    for start, end in split_sentences(passage):
        sentence = passage[start:end]
        shared = len(wanted & {sentence[i : i + 2] for i in range(len(sentence) - 1)})
        if shared > score and len(sentence) >= MIN_CONTAINS:
            best, score = sentence, shared
    return best[:MAX_CONTAINS]
