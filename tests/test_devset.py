"""The ingestion invariant over real documents: nothing of a document's body is lost.

Runs over every file of ../shared/devset/docs (64 real notices, laws, web pages and budget PDFs that may
not be copied into this repository) and over the seed. Skipped only where the dev set is absent.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from policyqa.ingest import plaintext
from policyqa.ingest.inspection import Inspection, inspect_file

from .conftest import ROOT, SEED

DEVSET = ROOT.parent / "shared" / "devset"
DOCS = sorted((DEVSET / "docs").glob("*")) if DEVSET.is_dir() else []
pytestmark = pytest.mark.skipif(not DOCS, reason="../shared/devset is not present")


def squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@cache
def inspected(path: Path) -> Inspection:
    return inspect_file(path)


@pytest.mark.parametrize("path", [*DOCS, SEED], ids=lambda p: p.name[:40])
def test_passages_cover_the_body(path: Path) -> None:
    found = inspected(path)
    assert found.coverage >= 0.99, f"{path.name}: {found.coverage:.3f} of the body in passages"
    for p in found.passages:
        assert p.text.strip()
        assert len(p.body) <= 400 or p.kind == "table_row"  # the headings opening a passage come on top


@pytest.mark.parametrize("path", [p for p in [*DOCS, SEED] if p.suffix in (".txt", ".md")], ids=lambda p: p.name[:40])
def test_every_line_of_a_text_file_is_kept_or_removed_by_a_rule(path: Path) -> None:
    """Each line of the raw file (markdown markers aside) is in the cleaned text, which the passages cover
    (above), or is the title, or was removed by a named rule."""
    found = inspected(path)
    kept = squash(f"{found.document.title}\n{found.document.text}")
    removed = {squash(text) for _, text in found.document.removed}
    lost = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for piece in plaintext.unflatten(line.strip()):
            bare = squash(re.sub(r"^#{1,6}\s+", "", piece.strip()))
            if bare and bare not in kept and bare not in removed:
                lost.append(piece)
    assert not lost, f"{len(lost)} lines lost, e.g. {lost[:3]}"


def test_every_must_string_is_in_a_passage_of_its_source() -> None:
    questions = [json.loads(line) for line in (DEVSET / "qa.jsonl").read_text(encoding="utf-8").splitlines()]
    reached: Counter[str] = Counter()
    missing = []
    for q in questions:
        if not q["must"]:
            continue
        passages = inspected(DEVSET / "docs" / q["source"]).passages
        if any(all(squash(m) in squash(p.text) for m in q["must"]) for p in passages):
            reached[q["source"].split("-")[0]] += 1
        else:
            missing.append((q["source"], q["must"]))
    assert not missing, f"{len(missing)} unreachable: {missing[:5]}"
    assert sum(reached.values()) == 350


def test_html_pages_keep_their_title_and_lose_their_chrome() -> None:
    for path in [p for p in DOCS if p.suffix == ".html"]:
        found = inspected(path)
        shown = "\n".join(p.text for p in found.passages)
        assert found.document.title and "首页" not in found.document.title
        for chrome in ("版权所有", "ICP备", "扫一扫在手机打开当前页", "分享到"):
            assert chrome not in shown, f"{path.name}: {chrome} left in the passages"
        assert found.removals, f"{path.name}: nothing removed from a full saved page"
