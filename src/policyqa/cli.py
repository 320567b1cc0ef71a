"""Command-line edge: build | search | serve. Heavy libraries load only inside the commands that need them."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from policyqa.config import Settings
from policyqa.errors import LIST_DOCUMENTS, CorpusError, IndexMissingError, NotFoundError, PolicyQAError, QuestionError
from policyqa.ingest import formats

if TYPE_CHECKING:
    from policyqa.ingest.questions import Target
    from policyqa.search.evaluation import Report

EXIT_USAGE = 2
MAX_K = 50  # as the HTTP API's k


class UsageError(PolicyQAError):
    """A command-line value argparse lets through but the command cannot use (exit 2, as argparse's own)."""


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        corpus_dir=getattr(args, "corpus", None),
        index_dir=getattr(args, "index", None),
        rebuild_for_model=getattr(args, "rebuild_for_model", None) or None,
    )


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from policyqa.engine import Engine
    from policyqa.store import configured

    return Engine.open(
        settings.corpus_dir,
        settings.index_dir,
        settings.model,
        settings.model_dir,
        settings.threads,
        store=configured(settings),
    )


class _Progress:
    """One self-rewriting stderr line: done/total passages embedded and passages per second, or, while a
    scan is parsed, its pages read by OCR and pages per second."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.shown = False
        self.stage = ("passages", 0)

    def __call__(self, done: int, total: int, unit: str = "passages") -> None:
        if not total:  # nothing to embed (an update that only merges segments)
            return
        if (unit, total) != self.stage or (unit == "pages" and done == 0):  # another stage, or another scan
            self.stage, self.began = (unit, total), time.perf_counter()
        rate = done / max(time.perf_counter() - self.began, 1e-6)
        width = 30
        bar = "#" * (width * done // max(total, 1))
        what = "reading scans by OCR" if unit == "pages" else "embedding"
        sys.stderr.write(f"\r{what} [{bar:<{width}}] {done}/{total} {unit}  {rate:.2f} {unit}/s   ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _require_corpus(settings: Settings) -> None:
    from policyqa.ingest.loaders import require_corpus

    require_corpus(settings.corpus_dir)


def _require_index(settings: Settings) -> None:
    from policyqa.snapshot import index

    index.require(settings.index_dir)


def _build(settings: Settings, force: bool = False, show_progress: bool = False) -> int:
    _require_corpus(settings)  # before the model loads, and before the index folder is made
    engine = _engine(settings)
    progress = _Progress() if sys.stderr.isatty() or show_progress else None
    from policyqa.snapshot.refresh import refresh

    try:
        report = refresh(
            settings.corpus_dir,
            settings.index_dir,
            engine.embedder,
            engine.chunking,
            progress,
            force,
            settings.rebuild_for_model,
            settings.limits,
            store=engine.store,
            delta_from=settings.delta_from,
        )
    finally:
        if progress:
            progress.close()
    for note in report.repaired:
        print(f"repaired: {note}", file=sys.stderr)
    for error in report.errors:
        print(f"skipped: {error}", file=sys.stderr)
    state = "updated" if report.changed else "already up to date"
    print(
        f"index {state}: {report.documents} documents, {report.chunks} chunks "
        f"({report.embedded} embedded) in {report.seconds:.1f}s -> {settings.index_dir}"
    )
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    return _build(_settings(args), args.force, args.progress)


def cmd_add(args: argparse.Namespace) -> int:
    from policyqa.ingest import corpus

    settings = _settings(args)
    _require_corpus(settings)  # as build and serve: a mistyped --corpus must not become a new, empty corpus
    files = []
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyQAError(f"cannot read {path}: {exc.strerror}") from exc
        # every file is checked before any is added
        files.append((corpus.check(path.name, data, settings.max_upload_bytes, settings.limits), data))
    for source, data in files:
        stored = corpus.store(settings.corpus_dir, source, data, args.replace)
        verb = "already in the corpus:" if stored.unchanged else "replaced" if stored.replaced else "added"
        print(f"{verb} {stored.source} (doc_id {stored.doc_id}, {stored.size} bytes)")
    return _build(settings, show_progress=args.progress)


def cmd_documents(args: argparse.Namespace) -> int:
    from policyqa.search.filters import day
    from policyqa.snapshot.index import catalogue
    from policyqa.snapshot.versions import listing, today

    settings = _settings(args)
    on = day("on", args.on) or today()
    snapshot, docs = catalogue(settings.index_dir)
    data = listing(snapshot, docs, on)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for d, row in zip(sorted(docs, key=lambda d: d.source), data["documents"], strict=True):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.indexed_at))
        print(f"{d.doc_id}  {d.chunks:>5} passages  {d.size:>9} bytes  {when}  {d.source}")
        m = d.metadata
        facts = [m.title, m.issuer, m.doc_number and f"（{m.doc_number}）", m.date]
        print(f"              {'  '.join(f for f in facts if f)}")
        print(f"              {_status_line(row)}")
    print(f"status judged on {on}")
    return 0


def _status_line(row: dict[str, Any]) -> str:
    """A document's or a result's status as one line: 已被替代 → 9f2c…（现行：…）, 施行/有效期 dates when known."""
    line = str(row["status_label"])
    if row.get("superseded_by"):
        line += f" → {row['superseded_by']}"
        if row.get("current_version") and row["current_version"] != row["superseded_by"]:
            line += f"（现行 {row['current_version']}）"
    stated = row.get("validity") or {}
    if stated.get("effective"):
        line += f"  施行 {stated['effective']}"
    if stated.get("expires"):
        line += f"  有效期至 {stated['expires']}"
    return line


def cmd_remove(args: argparse.Namespace) -> int:
    from policyqa.ingest import corpus

    settings = _settings(args)
    doc_ids = list(dict.fromkeys(args.doc_ids))  # an id given twice is one document, removed once
    for doc_id in doc_ids:
        corpus.find(settings.corpus_dir, doc_id)  # all ids are checked before any file is removed
    for doc_id in doc_ids:
        print(f"removed {corpus.remove(settings.corpus_dir, doc_id)} (doc_id {doc_id})")
    return _build(settings, show_progress=args.progress)


def _question_targets(settings: Settings, wanted: set[str]) -> tuple[str, dict[str, Target]]:
    """The snapshot being served and those of its documents whose file or doc_id is `wanted`, with their text,
    by file: read from its files, without the model."""
    from policyqa.ingest.questions import Target
    from policyqa.snapshot.index import catalogue
    from policyqa.snapshot.layout import candidates, passage_spans, read_text

    name, docs = catalogue(settings.index_dir)
    folder = next(f for f in candidates(settings.index_dir)[0] if f.name == name)
    docs = [d for d in docs if wanted & {d.source, d.doc_id}]
    spans = passage_spans(folder, {d.doc_id for d in docs})
    found = {}
    for d in docs:
        entry = read_text(folder, d.doc_id)
        if entry is not None:
            found[d.source] = Target(d.doc_id, d.source, str(entry["text"]), spans.get(d.doc_id, ()))
    return name, found


def _question_errors(exc: PolicyQAError) -> UsageError:
    """A refused question or an unknown id as a usage error (exit 2), naming this command's list."""
    from policyqa.ingest.questions import LIST_QUESTIONS

    return UsageError(str(exc).replace(LIST_QUESTIONS, "`policyqa questions list`"))


def cmd_questions_add(args: argparse.Namespace) -> int:
    from policyqa.ingest import questions

    settings = _settings(args)
    _require_corpus(settings)
    _require_index(settings)
    _, targets = _question_targets(settings, {args.doc_id or args.source})
    target = next(iter(targets.values()), None)
    if target is None:
        raise UsageError(f"{args.doc_id or args.source} is not a document of the index; see `policyqa documents`")
    try:
        added = questions.add(settings.corpus_dir, args.question, target, args.contains)
    except (QuestionError, NotFoundError) as exc:
        raise _question_errors(exc) from exc
    print(f"added known question {added.id} to {added.source} (doc_id {target.doc_id})")
    return _build(settings, show_progress=args.progress)


def cmd_questions_list(args: argparse.Namespace) -> int:
    from policyqa.ingest import questions

    settings = _settings(args)
    found = questions.read(settings.corpus_dir)
    try:
        snapshot, targets = _question_targets(settings, {q.source for q in found})
    except IndexMissingError as exc:  # listed all the same, each unmatched until an index holds its document
        print(f"policyqa: warning: {exc}; until then every question reads unmatched", file=sys.stderr)
        snapshot, targets = None, {}
    data = questions.report(found, targets, snapshot)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for row in data["questions"]:
        print(f"{row['id']}  {row['status']:<9}  {row['source']} (doc_id {row['doc_id'] or '-'})  {row['q']}")
        print(f"            contains: {row['contains']}")
    print(f"{len(found)} known questions: {data['attached']} attached, {data['unmatched']} unmatched")
    return 0


def cmd_questions_remove(args: argparse.Namespace) -> int:
    from policyqa.ingest import questions

    settings = _settings(args)
    try:
        gone = questions.remove(settings.corpus_dir, args.ids)
    except NotFoundError as exc:
        raise _question_errors(exc) from exc
    for q in gone:
        print(f"removed known question {q.id} ({q.source}): {q.q}")
    return _build(settings, show_progress=args.progress)


def cmd_search(args: argparse.Namespace) -> int:
    from policyqa.search.filters import make
    from policyqa.search.ranking import clean_query
    from policyqa.search.results import group_size, payload

    settings = _settings(args)
    # mistakes are found before the model loads (seconds)
    if not 1 <= args.k <= MAX_K:  # not argparse's choices=, which lists all fifty in its message
        raise UsageError(f"-k must be between 1 and {MAX_K}")
    clean_query(args.query)
    filters = make(args.doc_id, args.folder, args.issuer, args.after, args.before, args.current, args.on)
    _require_index(settings)
    engine = _engine(settings)
    index = engine.load()
    for note in index.damage:
        print(f"policyqa: warning: {note}; run `policyqa build` to repair", file=sys.stderr)
    result = engine.search(args.query, group_size(args.k) if args.group else args.k, filters=filters)
    data = payload(result, index, args.group, args.k)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    sure = bool(data["confident"])
    if not sure:  # said first, and no passage is then marked as the answer
        print(f"未找到可靠答案：{data['confidence']['reason_text']}\n")
    if not data["results"]:
        print("no passages found")
    for row in data["results"]:
        _print_row(row, f"{row['rank']}.", sure)
        for n, more in enumerate(row.get("more", []), 1):
            _print_row(more, f"   {row['rank']}.{n}", sure)
    return 0


def _print_row(row: dict, label: str, sure: bool = True) -> None:  # type: ignore[type-arg]
    where = " › ".join(str(p) for p in (row["source"], row["section"]) if p)
    text = str(row["text"])
    answer = text[int(row["answer_start"]) : int(row["answer_end"])]
    m = row.get("metadata") or {}
    facts = "  ".join(str(f) for f in (m.get("issuer"), m.get("doc_number"), m.get("date")) if f)
    print(f"{label} [{float(row['score']):.4f}] {where}")
    if facts:
        print(f"   {facts}")
    if row.get("status") and row["status"] != "current":
        print(f"   {_status_line(row)}")
    twin = row.get("current_passage")
    if twin:
        print(f"   现行版本的对应段落: {twin['doc_id']} › {twin['section'] or '（开头）'}")
    if row.get("matched_question"):
        print(f"   常见问题: {row['matched_question']}")
    if sure:
        print(f"   答: {answer}")
    print("   " + text.replace("\n", "\n   ") + "\n")  # every line of the passage under its heading


def cmd_eval(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from policyqa.search.evaluation import by_group, outcome, read_questions, summarise
    from policyqa.search.filters import Filters, day
    from policyqa.search.ranking import SearchOptions

    questions = read_questions(args.qa)
    settings = _settings(args)
    _require_index(settings)
    engine = _engine(settings)
    index = engine.load()
    legs = ["hybrid", "dense", "lexical"] if args.legs else ["hybrid"]
    on = Filters(on=day("on", args.on))
    reports = []
    for mode in legs:
        options = SearchOptions(mode=mode)
        outcomes = [outcome(q, engine.search(q.q, 10, options, on), index.chunks) for q in questions]
        reports.append(summarise(mode, outcomes))
        for field in args.group_by or []:
            reports.extend(by_group(mode, outcomes, field))
    if args.json:
        print(json.dumps([asdict(r) for r in reports], ensure_ascii=False, indent=2))
    else:
        _print_eval(reports, len(questions), index.name)
    overall = reports[0]
    failed = [
        f"{name} {value:.3f} < {floor}"
        for name, value, floor in (("hit@1", overall.hit1, args.min_hit1), ("hit@5", overall.hit5, args.min_hit5))
        if floor is not None and value < floor
    ]
    if failed:
        raise PolicyQAError(f"retrieval below the thresholds on {args.qa}: {', '.join(failed)}")
    return 0


def _pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal columns: a Chinese character takes two (group names such as
    `hybrid/法律` would push the columns after them out of line)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 0)


def _print_eval(reports: list[Report], questions: int, index_name: str) -> None:
    print(f"{questions} questions, {reports[0].questions} answerable; index {index_name}")
    print(f"{'run':<24} {'n':>4} {'hit@1':>6} {'hit@3':>6} {'hit@5':>6} {'MRR@10':>7} {'nDCG@10':>8}  flag P/R")
    for r in reports:
        precision = "n/a" if r.flag_precision is None else f"{r.flag_precision:.2f}"
        flag = f"  {precision}/{r.flag_recall:.2f} of {r.unanswerable}" if r.unanswerable else ""
        figures = (
            f"{r.hit1:>6.3f} {r.hit3:>6.3f} {r.hit5:>6.3f} {r.mrr10:>7.3f} {r.ndcg10:>8.3f}"
            if r.questions
            else f"{'-':>6} {'-':>6} {'-':>6} {'-':>7} {'-':>8}"  # a group of unanswerable questions only
        )
        print(f"{_pad(r.name, 24)} {r.questions:>4} {figures}{flag}")
    top = reports[0]
    for miss in top.misses:
        question = " ".join(str(miss["q"]).split())
        print(f"miss (rank {miss['rank']}): {question}  needs {miss['must']}")
    if top.unanswerable:
        precision = "n/a" if top.flag_precision is None else f"{top.flag_precision:.3f}"
        print(
            f"no-confident-answer flag: precision {precision}, recall {top.flag_recall:.3f} "
            f"on {top.unanswerable} unanswerable questions"
        )
        for q in top.wrong_flags:
            print(f"flagged but answerable: {q}")
        for q in top.missed_flags:
            print(f"unanswerable, not flagged: {q}")


def cmd_inspect(args: argparse.Namespace) -> int:
    from policyqa.ingest.bank import corpus_bank
    from policyqa.ingest.inspection import inspect_file, with_questions

    settings = _settings(args)
    path: Path = args.file
    try:
        source = path.resolve().relative_to(settings.corpus_dir.resolve()).as_posix()
    except ValueError:
        source = path.name
    found = with_questions(inspect_file(path, source, limits=settings.limits), corpus_bank(settings.corpus_dir))
    if args.json:
        print(json.dumps(found.as_dict(), ensure_ascii=False, indent=2))
        return 0
    report = found.as_dict()
    print(f"{report['source']}  (doc_id {report['doc_id']})")
    print(f"title: {report['title']}")
    stated = {**dict(report["metadata"]), **dict(report["validity"])}  # type: ignore[call-overload]
    for key, value in stated.items():
        if value and key != "title":
            print(f"{key}: {'、'.join(value) if isinstance(value, list) else value}")
    print(f"body: {report['characters']} characters, {found.coverage:.1%} of them in passages")
    print(f"sections: {len(found.sections)}; passages: {len(found.passages)}")
    if found.document.scanned:
        pages = ", ".join(f"{p.page} ({p.confidence:.2f})" for p in found.document.scanned)
        print(f"read by OCR: {len(found.document.scanned)} pages, mean confidence {found.ocr_confidence:.2f}: {pages}")
    for removal in found.removals:
        examples = " | ".join(e[:40] for e in removal.examples)
        print(f"removed by '{removal.rule}': {removal.count} ({removal.characters} characters), e.g. {examples}")
    for n, p in enumerate(found.passages, 1):
        where = f"[{p.kind}{f', page {p.page}' if p.page else ''}] {p.section}"
        text = p.text.replace("\n", " ")
        print(f"{n:>4}. {where}\n      {text if args.full else text[:120]}")
        for asked in found.questions[n - 1] if found.questions else ():
            print(f"      问: {asked}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from policyqa.api import create_app

    settings = _settings(args)
    _require_corpus(settings)
    from policyqa.api.guard import header_timeout_protocol

    # the service's own lines (one per request, with its id, in place of uvicorn's access log; jobs) on stderr
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("policyqa").addHandler(handler)
    logging.getLogger("policyqa").setLevel(logging.INFO)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        http=header_timeout_protocol(settings.header_seconds),
    )
    return 0


# The object add_subparsers returns: argparse does not name its type in public.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="policyqa",
        description="Ask questions of Chinese policy documents; get ranked, cited passages. Works offline.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _build_command,
        _add_command,
        _remove_command,
        _documents_command,
        _questions_command,
        _search_command,
        _eval_command,
        _inspect_command,
        _serve_command,
    ):
        add(sub)
    return p


def _folder_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--corpus", type=Path, help="corpus folder (default: corpus, or $POLICYQA_CORPUS_DIR)")
    _index_option(cmd)


def _index_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--index", type=Path, help="index folder (default: index, or $POLICYQA_INDEX_DIR)")


def _progress_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a tty")


def _build_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "build",
        help="build or update the index from the corpus",
        description="Build or update the index. Example: policyqa build --corpus corpus --index index",
    )
    _folder_options(cmd)
    cmd.add_argument("--force", action="store_true", help="re-embed every chunk instead of reusing unchanged ones")
    cmd.add_argument(
        "--rebuild-for-model",
        action="store_true",
        help="rebuild an index made with another model for the configured one (refused without this flag)",
    )
    _progress_option(cmd)
    cmd.set_defaults(func=cmd_build)


def _add_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "add",
        help="add documents to the corpus and update the index",
        description="Copy files into the corpus under safe names (type taken from the content) and update the "
        "index incrementally. Example: policyqa add 通知.pdf 办法.docx",
    )
    cmd.add_argument("files", nargs="+", type=Path, metavar="FILE", help=f"{formats.extensions()} files")
    cmd.add_argument(
        "--replace", action="store_true", help="replace documents of the same name (default: store under a new name)"
    )
    _folder_options(cmd)
    _progress_option(cmd)
    cmd.set_defaults(func=cmd_add)


def _remove_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "remove",
        help="remove documents from the corpus and the index",
        description="Delete documents by doc_id (see `policyqa documents` or GET /api/documents) and update "
        "the index. Example: policyqa remove 231b70be986a",
    )
    cmd.add_argument("doc_ids", nargs="+", metavar="DOC_ID", help="12-hex-digit document id")
    _folder_options(cmd)
    _progress_option(cmd)
    cmd.set_defaults(func=cmd_remove)


def _documents_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "documents",
        help="list the indexed documents with their doc_id",
        description="List the documents of the index. Example: policyqa documents",
    )
    _index_option(cmd)
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.add_argument("--on", metavar="YYYY-MM-DD", help="judge each document's status on this day (default today)")
    cmd.set_defaults(func=cmd_documents)


def _questions_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "questions",
        help="operators' known questions: add, list, remove",
        description="Known questions point at the passage that answers them by a string of its document; they "
        "live in <corpus>/.policyqa/questions.jsonl and are re-attached whenever the index is refreshed. "
        'Example: policyqa questions add "稳岗补贴怎么申请？" --source 通知.txt --contains "稳岗补贴通过网上申请"',
    )
    actions = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="attach a question to a passage and update the index",
        description='Example: policyqa questions add "稳岗补贴怎么申请？" --doc-id 231b70be986a '
        '--contains "稳岗补贴通过网上申请"',
    )
    add.add_argument("question", help="the question as people ask it (2-500 characters)")
    which = add.add_mutually_exclusive_group(required=True)
    which.add_argument("--doc-id", metavar="ID", help="the document (see `policyqa documents`)")
    which.add_argument("--source", metavar="FILE", help="the document's file, relative to the corpus folder")
    add.add_argument("--contains", required=True, metavar="TEXT", help="a string of the passage that answers")
    add.set_defaults(func=cmd_questions_add)
    listing = actions.add_parser(
        "list",
        help="list the known questions, attached or unmatched",
        description="Each known question with its document and whether the index's text still holds its "
        "string (attached) or not (unmatched). Example: policyqa questions list --json",
    )
    listing.add_argument("--json", action="store_true", help="print the same JSON as GET /api/questions")
    listing.set_defaults(func=cmd_questions_list)
    remove = actions.add_parser(
        "remove",
        help="remove known questions and update the index",
        description="Example: policyqa questions remove 3f2a9c01be",
    )
    remove.add_argument("ids", nargs="+", metavar="ID", help="a question's id (see `policyqa questions list`)")
    remove.set_defaults(func=cmd_questions_remove)
    for each in (add, listing, remove):
        _folder_options(each)
    for each in (add, remove):
        _progress_option(each)


def _search_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "search",
        help="search the index from the shell",
        description='Search the index. Example: policyqa search "南京有几个国家级创新型产业集群？" -k 3 '
        "--after 2020-01-01 --issuer 人民政府",
    )
    cmd.add_argument("query", help="the question, in Chinese or English")
    cmd.add_argument("-k", type=int, default=5, metavar="N", help=f"passages to show (1-{MAX_K})")
    cmd.add_argument("--json", action="store_true", help="print the same JSON as the HTTP API")
    _index_option(cmd)
    cmd.add_argument("--doc-id", action="append", metavar="DOC_ID", help="only this document (repeatable)")
    cmd.add_argument("--folder", help="only documents under this corpus folder, e.g. 广州")
    cmd.add_argument("--issuer", help="only documents whose 发文机关 contains this, e.g. 医疗保障局")
    cmd.add_argument("--after", metavar="YYYY-MM-DD", help="only documents dated on or after this day")
    cmd.add_argument("--before", metavar="YYYY-MM-DD", help="only documents dated on or before this day")
    cmd.add_argument("--group", action="store_true", help="the best passage of each document, more from it below")
    cmd.add_argument("--current", action="store_true", help="only documents in force (现行有效) on the day")
    cmd.add_argument("--on", metavar="YYYY-MM-DD", help="judge documents in force on this day (default today)")
    cmd.set_defaults(func=cmd_search)


def _eval_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "eval",
        help="measure retrieval on a QA file",
        description="Evaluate retrieval: hit@1/3/5, MRR@10, nDCG@10 and the misses. "
        "Example: policyqa eval ../shared/devset/qa.jsonl --legs --group-by origin --group-by source",
    )
    cmd.add_argument("qa", type=Path, help='JSON lines: {"q": "...", "must": ["substring"], "source": "file"}')
    cmd.add_argument("--json", action="store_true", help="print the reports as JSON")
    cmd.add_argument("--legs", action="store_true", help="also run the dense and the lexical leg alone")
    cmd.add_argument(
        "--group-by",
        action="append",
        metavar="FIELD",
        help="also a row per group of questions: the first word of FIELD (origin: NCPPolicies, STARD ...; "
        "source: its file-name prefix); repeatable",
    )
    cmd.add_argument("--on", metavar="YYYY-MM-DD", help="judge documents in force on this day (default today)")
    cmd.add_argument("--min-hit1", type=float, metavar="X", help="exit 1 when the overall hit@1 is below X")
    cmd.add_argument("--min-hit5", type=float, metavar="X", help="exit 1 when the overall hit@5 is below X")
    _index_option(cmd)
    cmd.set_defaults(func=cmd_eval)


def _inspect_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "inspect",
        help="show what the index would hold for one file, without building",
        description="Show a file as the index would hold it: title, metadata, sections, what each removal rule "
        "took, and the passages. Example: policyqa inspect corpus/通知.pdf --json",
    )
    cmd.add_argument("file", type=Path, metavar="FILE", help=f"a {formats.extensions()} file, in the corpus or not")
    cmd.add_argument("--json", action="store_true", help='print {"source", "title", "removed", "passages", ...}')
    cmd.add_argument("--full", action="store_true", help="print whole passages instead of their first 120 characters")
    cmd.add_argument("--corpus", type=Path, help="corpus folder, for the source path (default: corpus)")
    cmd.set_defaults(func=cmd_inspect)


def _serve_command(sub: Commands) -> None:
    cmd = sub.add_parser(
        "serve",
        help="serve the web page and the HTTP API",
        description="Serve the page and API; builds the index on first start. "
        "Example: policyqa serve --host 127.0.0.1 --port 8000",
    )
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    cmd.add_argument(
        "--rebuild-for-model",
        action="store_true",
        help="rebuild an index made with another model (default: refuse to serve it; $POLICYQA_REBUILD_FOR_MODEL)",
    )
    _folder_options(cmd)
    cmd.set_defaults(func=cmd_serve)


def _say(exc: PolicyQAError) -> None:
    """The error as one line on stderr, naming the CLI's commands where the library names the API's."""
    print(f"policyqa: error: {str(exc).replace(LIST_DOCUMENTS, '`policyqa documents`')}", file=sys.stderr)


def _reader_gone() -> int:
    """stdout's reader stopped early (`policyqa inspect FILE | head -1`): exit without a traceback. stdout
    now writes to devnull, or Python's own flush at exit fails a second time and says so on stderr."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1  # as Python's documentation does on EPIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a reader that went away is found here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except (CorpusError, UsageError) as exc:
        _say(exc)
        return EXIT_USAGE
    except PolicyQAError as exc:
        _say(exc)
        return 1
    except OSError as exc:  # a full disk, a folder that may not be written: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"policyqa: error: {exc.strerror or exc} ({errno.errorcode.get(exc.errno or 0, 'OSError')}){where}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
