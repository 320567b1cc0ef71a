"""The API's request and response bodies (pydantic): what /docs shows and what every answer is checked
against. Responses allow extra keys, so a field added to the library's JSON is not silently dropped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyqa.search.confidence import Reason
from policyqa.store import ENGINES

# What pydantic says of a string with a lone surrogate in a field with a length limit (filters), before any
# validator of ours sees it; the API says it as valid_text does.
UNPARSED = "unable to parse raw data as a unicode string"
SURROGATE = "the text holds a lone surrogate (an invalid \\uD800-\\uDFFF escape); send valid Unicode"


def valid_text(text: str) -> str:
    """Text that can be written out again: no lone surrogates (JSON allows "\\ud800"; UTF-8 does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(SURROGATE) from None
    return text


class SearchBody(BaseModel):
    q: str = Field(..., description="The question, 1-500 characters", examples=["南京有几个国家级创新型产业集群？"])
    k: int = Field(5, ge=1, le=50, description="How many passages to return (1-50)")
    doc_id: list[str] = Field(default_factory=list, max_length=100, description="only these documents (doc_id)")
    folder: str | None = Field(None, max_length=500, description="only documents under this corpus folder")
    issuer: str | None = Field(None, max_length=100, description="only documents whose 发文机关 contains this")
    after: str | None = Field(None, max_length=20, description="only documents dated on or after (YYYY-MM-DD)")
    before: str | None = Field(None, max_length=20, description="only documents dated on or before (YYYY-MM-DD)")
    group: bool = Field(False, description="the best passage of each document, with more from it under `more`")
    current_only: bool = Field(False, description="only documents in force (现行有效) on the day `on`")
    on: str | None = Field(None, max_length=20, description="the day documents are judged on (YYYY-MM-DD; today)")

    @field_validator("q")
    @classmethod
    def valid_text(cls, q: str) -> str:
        return valid_text(q)


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(Out):
    status: str = Field(description="ok")
    model: str
    store: str = Field(description=f"where the vectors and BM25 are kept: {' or '.join(ENGINES)}")
    snapshot: str
    documents: int
    chunks: int
    damaged: list[str] = Field(description="snapshots passed over since the start, each with why")


Status = Literal["current", "superseded", "expired", "pending"]


class PassageRef(Out):
    doc_id: str
    chunk_id: str
    section: str
    start: int
    end: int
    page: int


class SearchHit(Out):
    rank: int
    text: str
    score: float
    doc_id: str
    source: str
    title: str
    section: str
    chunk_id: str
    kind: str
    page: int
    start: int
    end: int
    answer_start: int
    answer_end: int
    matched_terms: list[str]
    dense: float | None
    lexical: float | None
    matched_question: str | None = Field(
        None, description="the known question (attached to this passage) the question was matched with; null when none"
    )
    metadata: dict[str, Any] | None = None
    validity: dict[str, Any] | None = Field(None, description="what the document states: see GET /api/documents")
    status: Status | None = Field(None, description="the document's 时效性 on `status_on`")
    status_label: str | None = Field(None, description="the status in Chinese: 现行有效, 已被替代, 已失效, 尚未生效")
    superseded_by: str | None = Field(None, description="已被替代: the doc_id of the newer document replacing it")
    current_version: str | None = Field(None, description="已被替代: the doc_id of the newest version in force")
    current_passage: PassageRef | None = Field(
        None, description="已被替代: the passage of the version in force that matches this one (null: none alike)"
    )
    more: list[SearchHit] | None = Field(None, description="grouped: more passages of the same document")


class ConfidenceOut(Out):
    coverage: float = Field(description="share of the question's words (weighted by rarity) the first passage holds")
    contrast: float = Field(description="how far the first passage stands out from the corpus (a z-score)")
    missing: list[str] = Field(description="words of the question that no document contains")
    conflicts: list[str] = Field(description="years and places of the question that the first document contradicts")
    reason: Reason | None = Field(
        description="why the answer is not confident (null when it is): a conflicting year or place, a law or "
        "document the corpus does not hold, an off-topic question, words no document contains, a figure the nearest "
        "passage lacks, nothing that stands out, filters that leave no document, or an empty index"
    )
    reason_text: str | None = Field(description="the reason as a Chinese sentence for people (null when confident)")
    probability: float | None = Field(
        None, description="the no-answer model's probability that no passage answers (null where it does not decide)"
    )


class SearchResponse(Out):
    query: str
    confident: bool
    confidence: ConfidenceOut
    results: list[SearchHit]
    took_ms: float
    status_on: str | None = Field(None, description="the day the documents' status was judged on (YYYY-MM-DD)")
    grouped: bool | None = None


class Document(Out):
    doc_id: str
    source: str
    title: str
    size: int
    sha256: str
    chunks: int
    indexed_at: str = Field(description="UTC, ISO 8601")
    metadata: dict[str, Any]
    validity: dict[str, Any] = Field(
        description="what the document states: effective, expires (YYYY-MM-DD or ''), repeals and prevails (titles), "
        "prevails_earlier"
    )
    status: Status = Field(description="its 时效性 on `status_on`")
    status_label: str = Field(description="现行有效, 已被替代, 已失效 or 尚未生效")
    superseded_by: str | None = Field(description="已被替代: the doc_id of the newer document replacing it")
    current_version: str | None = Field(description="已被替代: the doc_id of the newest version in force")
    replaces: list[str] = Field(description="the doc_ids of the documents it replaces")
    prevailed_by: list[str] = Field(description="doc_ids of documents saying they prevail where they differ (weaker)")


class Documents(Out):
    documents: list[Document]
    snapshot: str | None
    status_on: str = Field(description="the day each status was judged on (YYYY-MM-DD)")


class OutlineEntry(Out):
    depth: int
    title: str
    start: int


class PassageSpan(Out):
    chunk_id: str
    start: int
    end: int
    section: str
    page: int


class PageStart(Out):
    page: int = Field(description="1-based page of the PDF")
    start: int = Field(description="offset in `text` where the page's text begins")


class DocumentText(Out):
    doc_id: str
    source: str
    title: str
    metadata: dict[str, Any]
    text: str
    outline: list[OutlineEntry]
    passages: list[PassageSpan]
    pages: list[PageStart] = Field(description="where each page starts, for a PDF; empty for other formats")


class Job(Out):
    id: str
    kind: str
    reason: str
    state: str
    large: bool
    cancel: str | None
    created: float
    started: float | None
    finished: float | None
    done: int
    total: int
    unit: str = "passages"  # what done and total count: passages embedded, or pages of a scan read by OCR
    error: str | None
    message: str | None
    report: dict[str, Any] | None
    yielded: int


class Accepted(Out):
    job: Job


class Uploaded(Accepted):
    doc_id: str
    source: str
    size: int
    sha256: str
    replaced: bool
    unchanged: bool = False  # the same bytes were already in the corpus under `source`: nothing written


class Removed(Accepted):
    doc_id: str
    source: str


class IndexStatus(Out):
    state: str
    job: Job | None
    queued: int
    last_error: str | None
    last_message: str | None
    snapshot: str | None
    documents: int
    chunks: int


class QuestionBody(BaseModel):
    q: str = Field(
        ..., max_length=2000, description="The known question, 2-500 characters", examples=["稳岗补贴怎么申请？"]
    )
    doc_id: str | None = Field(None, pattern=r"^[0-9a-f]{12}$", description="its document (or `source`)")
    source: str | None = Field(None, max_length=1000, description="its document's file (or `doc_id`)")
    contains: str | None = Field(
        None, max_length=4000, description="a string of the passage that answers, e.g. its answering sentence"
    )
    chunk_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{16}$", description="instead of doc_id and contains: a passage of a search result"
    )

    @field_validator("q", "contains", "source")
    @classmethod
    def valid_text(cls, text: str | None) -> str | None:
        return None if text is None else valid_text(text)


class KnownQuestion(Out):
    id: str
    q: str
    source: str
    contains: str
    added: str = Field(description="UTC, ISO 8601")
    doc_id: str | None = Field(description="its document in the served index (null: not indexed)")
    status: str = Field(description="attached (the index's text holds its string) or unmatched")


class KnownQuestions(Out):
    questions: list[KnownQuestion]
    snapshot: str | None
    attached: int
    unmatched: int


class QuestionAdded(Accepted):
    question: KnownQuestion


class QuestionRemoved(Accepted):
    removed: KnownQuestion


class FeedbackBody(BaseModel):
    q: str = Field(..., min_length=1, max_length=500, description="the question that was searched")
    chunk_id: str = Field(..., pattern=r"^[0-9a-f]{16}$", description="the passage marked")
    doc_id: str = Field(..., pattern=r"^[0-9a-f]{12}$", description="its document")
    helpful: bool = Field(..., strict=True, description="true: 有帮助; false: 没帮助")
    snapshot: str = Field("", max_length=100, description="the snapshot that answered (the page sends it)")

    @field_validator("q")
    @classmethod
    def valid_text(cls, q: str) -> str:
        return valid_text(q)


class FeedbackMark(Out):
    q: str
    chunk_id: str
    doc_id: str
    helpful: bool
    snapshot: str
    time: str = Field(description="UTC, ISO 8601")
    source: str | None = Field(None, description="the passage's file (null: not in the served index any more)")
    passage: str | None = Field(None, description="the passage's first words")


class FeedbackTally(Out):
    chunk_id: str
    doc_id: str
    helpful: int
    unhelpful: int


class FeedbackRecorded(Out):
    recorded: bool


class FeedbackLog(Out):
    marks: list[FeedbackMark] = Field(description="newest first")
    passages: list[FeedbackTally] = Field(description="each marked passage with its counts, most helpful first")
    total: int
