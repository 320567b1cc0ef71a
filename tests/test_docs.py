"""The README stays a five-minute read, its links and the docs' links lead somewhere, and every setting has a row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
# What other people and scripts rely on: it must stay visible on the README's first page.
CONTRACT = [
    ".venv/bin/policyqa",
    "make run",
    "make test",
    "policyqa serve --host H --port P [--corpus DIR] [--index DIR]",
    "policyqa build [--corpus DIR] [--index DIR]",
    'policyqa search "问题" [-k N] [--json]',
    "policyqa eval FILE",
    "policyqa inspect FILE --json",
    "GET /api/health",
    "GET /api/search?q=...&k=N",
    "POST /api/search",
    '{"q": "...", "must": ["substring", ...], "source": "optional file"}',
    *(f"`{field}`" for field in ("text", "score", "doc_id", "source", "section")),
]


def prose(path: Path) -> str:
    """The Markdown of a file without its fenced code blocks (a link or heading there is an example)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown file: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", prose(path), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) < 200


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_and_headings(path: Path):
    broken = []
    for target in LINK.findall(prose(path)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken, f"{path.name}: links to nothing: {broken}"


def test_docs_are_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(prose(README))}
    unlinked = [d.name for d in DOCS if d.resolve() not in linked]
    assert DOCS and not unlinked, f"docs the README does not link: {unlinked}"


def test_every_setting_has_a_row_in_the_configuration_table():
    names = set(re.findall(r"\"(POLICYQA_[A-Z0-9_]+)\"", (ROOT / "src/policyqa/config.py").read_text()))
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("| `POLICYQA_"))
    missing = names - set(re.findall(r"POLICYQA_[A-Z0-9_]+", rows))
    assert len(names) > 10 and not missing, f"settings without a row in README's configuration table: {missing}"


def test_the_contract_stays_in_the_readme():
    text = README.read_text(encoding="utf-8")
    gone = [s for s in CONTRACT if s not in text]
    assert not gone, f"README no longer shows: {gone}"


def test_every_no_answer_reason_is_explained_in_the_api_docs():
    from typing import get_args

    from policyqa.search.confidence import Reason

    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert [code for code in get_args(Reason) if f"`{code}`" not in api] == []


def test_the_inspect_json_in_the_cli_docs_names_every_field(tmp_path: Path):
    from policyqa.ingest.inspection import inspect_file

    (tmp_path / "a.txt").write_text("通知\n\n第一条 为规范管理，制定本办法。\n", encoding="utf-8")
    found = inspect_file(tmp_path / "a.txt").as_dict()
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split("## inspect", 1)[1].split("\n## ", 1)[0]
    fields = [*found, *found["passages"][0]]  # type: ignore[index]
    assert [f for f in fields if f'"{f}"' not in docs] == []
