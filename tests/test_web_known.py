"""The page's 有帮助 / 没帮助 marks and operators' known questions, in headless Chromium against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import NOTICE
from .test_web import TOKEN, browser, expect, search  # noqa: F401 (browser: the fixture)

pytestmark = pytest.mark.browser
ASKED = "稳岗补贴怎么申请？"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811
    """A page that answers a prompt with its default text (the question to confirm) and accepts confirms."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    pg = context.new_page()
    pg.on("dialog", lambda d: d.accept(d.default_value) if d.type == "prompt" else d.accept())
    violations: list[str] = []
    pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    context.close()
    assert violations == []


@pytest.fixture
def notice_corpus(corpus: Path) -> Path:
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    return corpus


def fits(page: Any) -> bool:
    """Nothing sticks out sideways at 390 px (wide tables scroll inside their own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_reader_marks_a_result_once_without_a_token(notice_corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(notice_corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    search(page, srv.url, ASKED)
    first = page.locator("#results li.result").first
    assert page.locator("#results button.make-known").count() == 0  # only with an admin token
    first.locator("button.helpful").click()
    expect(first.locator(".ack")).to_have_text("已记录")
    expect(first.locator("button.helpful")).to_be_disabled()
    expect(first.locator("button.unhelpful")).to_be_disabled()
    second = page.locator("#results li.result").nth(1)
    second.locator("button.unhelpful").click()
    expect(second.locator(".ack")).to_have_text("已记录")
    assert fits(page)
    search(page, srv.url, ASKED)  # shown again in this tab: still marked, not sent twice
    expect(page.locator("#results li.result").first.locator("button.helpful")).to_be_disabled()
    lines = (notice_corpus / ".policyqa" / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    marks = [json.loads(line) for line in lines]
    assert [m["helpful"] for m in marks] == [True, False]
    assert marks[0]["q"] == ASKED and marks[0]["snapshot"]


def test_an_operator_makes_known_questions_and_removes_them(notice_corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(notice_corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    search(page, srv.url, ASKED)
    page.locator("#results li.result").first.locator("button.helpful").click()  # a mark to turn into one
    page.click("#admin summary")
    page.fill("#token", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#feedback tbody tr")).to_have_count(1)
    expect(page.locator("#feedback tbody tr").first).to_contain_text("notice.txt")

    # 设为常见问题 on a result: the question confirmed in a prompt, attached to that passage
    search(page, srv.url, "每家企业最高补贴多少？")
    page.locator("#results li.result").first.locator("button.make-known").click()
    expect(page.locator("#results li.result").first.locator("button.make-known")).to_have_text("已设为常见问题")

    # in the panel: the known question, attached; the helpful mark becomes a second one in one click
    page.click("#admin summary")
    rows = page.locator("#questions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".known-status")).to_have_text("已关联")
    page.locator("#feedback tbody tr").first.locator("button.make-known").click()
    expect(rows).to_have_count(2)
    assert fits(page)
    stored = (notice_corpus / ".policyqa" / "questions.jsonl").read_text(encoding="utf-8")
    assert ASKED in stored and "每家企业最高补贴多少？" in stored

    rows.filter(has_text=ASKED).locator("button.delete").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#admin-message")).to_contain_text("已删除常见问题")

    # asked again once an update has attached it: the card says which known question brought the passage up
    card = page.locator("#results li.result").first
    for _ in range(50):
        search(page, srv.url, "每家企业最高补贴多少？")
        if card.locator(".matched-question").count():
            break
        page.wait_for_timeout(200)
    expect(card.locator(".matched-question")).to_have_text("常见问题：每家企业最高补贴多少？")
