"""The page in headless Chromium (Debian's chromium driven by Playwright) against a real server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import NOTICE, SEED

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("POLICYQA_CHROMIUM", "/usr/bin/chromium"))
TOKEN = "browser-token"
HOSTILE = (
    "<b>恶意标题</b><img src=x onerror=\"window.__pwned='img'\">\n\n"
    "一、测试内容\n"
    '网络安全条例规定<script>window.__pwned = "inline"</script>禁止脚本注入，'
    "以及<img src=x onerror=\"window.__pwned='onerror'\">图片事件。\n"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("POLICYQA_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); CI installs it and runs these tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    pg.dialogs = dialogs
    violations: list[str] = []
    pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    context.close()
    assert violations == []  # the page passes its own Content-Security-Policy


def expect(locator: Any) -> Any:
    """Playwright's assertions: they poll without evaluating strings, which the page's CSP forbids."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def search(page: Any, url: str, q: str) -> None:
    page.goto(url + "/")
    page.fill("#q", q)
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results li.result")


def test_search_shows_the_highlighted_answer(corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(corpus)
    search(page, srv.url, "新认定的高新技术企业奖励多少？")
    first = page.locator("#results li.result").first
    assert "20万元" in first.locator("mark.answer").inner_text()
    assert first.locator("mark.term").count() >= 1
    assert "measures.txt" in first.locator(".source").inner_text()
    assert "加大资金支持" in first.locator(".section").inner_text()


def test_no_confident_answer_is_said(corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(corpus)
    search(page, srv.url, "上海地铁票价是多少？")
    status = page.inner_text("#status")
    assert "未找到可靠答案" in status and "上海" in status


@pytest.mark.model
def test_no_reliable_answer_is_said_first_and_nothing_is_highlighted(tmp_path: Path, server_factory, page: Any) -> None:
    """On the bundled corpus with the real model: a question it flags shows the notice and the reason, the
    list as the closest passages and no answering sentence, grouped or not; a confident one keeps its mark."""
    corpus = tmp_path / "bundled"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    srv = server_factory(corpus, wait=False, POLICYQA_MODEL="multilingual-e5-small")
    srv.wait_ready(timeout=900)  # the first build embeds the corpus with the real model
    search(page, srv.url, "北京明天下雨吗？")
    for grouped in (False, True):
        notice = page.locator("#status .notice")
        expect(notice).to_contain_text("未找到可靠答案")
        expect(notice).to_contain_text("北京")  # the reason names the place the document contradicts
        expect(page.locator("#status .list-title")).to_contain_text("最接近的段落")
        assert "条结果" not in page.inner_text("#status")
        assert page.locator("#results li.result").count() >= 1 and page.locator("#results mark.answer").count() == 0
        if not grouped:
            page.click("#filters summary")
            page.check("#f-group")
            page.click("#search-form button[type=submit]")
            expect(page.locator("#status .list-title")).to_contain_text("份文档")

    search(page, srv.url, "高淳园的产业引导基金规模多大？")
    expect(page.locator("#status")).to_contain_text("条结果")
    assert page.locator("#status .notice").count() == 0
    assert "10亿元" in page.locator("#results li.result").first.locator("mark.answer").inner_text()

    # chit-chat that shares a word with the corpus (南京) is not an answer either (issue 26)
    search(page, srv.url, "今天南京的天气怎么样？")
    expect(page.locator("#status .notice")).to_contain_text("未找到可靠答案")
    expect(page.locator("#status .list-title")).to_contain_text("最接近的段落")
    assert page.locator("#results mark.answer").count() == 0


def test_admin_uploads_a_document_and_finds_it(corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    page.goto(srv.url + "/")
    page.click("#admin summary")
    page.wait_for_selector("#documents tbody tr")
    page.fill("#token", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-state")).to_contain_text("令牌有效")
    assert page.evaluate("sessionStorage.getItem('policyqa-admin-token')") == TOKEN
    content = "海洋经济发展规划\n\n一、发展目标\n到2030年，海洋生产总值达到1.5万亿元。\n".encode()
    page.set_input_files("#file", files=[{"name": "海洋规划.txt", "mimeType": "text/plain", "buffer": content}])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#admin-message")).to_contain_text("已可检索", timeout=60_000)
    assert page.locator("#documents td.doc-source", has_text="海洋规划.txt").count() == 1
    page.set_input_files("#file", files=[{"name": "海洋规划.txt", "mimeType": "text/plain", "buffer": content}])
    page.click("#upload-form button[type=submit]")  # the same file again: said so, not added twice
    expect(page.locator("#admin-message")).to_contain_text("未重复添加", timeout=60_000)
    search(page, srv.url, "海洋生产总值目标")
    assert "海洋规划.txt" in page.locator("#results li.result .source").first.inner_text()

    # delete it again from the panel
    page.click("#admin summary")
    row = page.locator("#documents tr", has_text="海洋规划.txt")
    row.locator("button.delete").click()
    expect(page.locator("#documents")).not_to_contain_text("海洋规划.txt", timeout=60_000)
    assert any("海洋规划.txt" in d for d in page.dialogs)


def test_wrong_token_is_reported(corpus: Path, server_factory, page: Any) -> None:
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN)
    page.goto(srv.url + "/")
    page.click("#admin summary")
    page.fill("#token", "wrong")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#token-state")).to_contain_text("令牌无效")
    page.set_input_files("#file", files=[{"name": "a.txt", "mimeType": "text/plain", "buffer": "测试".encode()}])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#admin-message")).to_contain_text("401", timeout=30_000)


def test_markup_in_documents_is_shown_as_text_and_never_runs(corpus: Path, server_factory, page: Any) -> None:
    (corpus / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    srv = server_factory(corpus)
    search(page, srv.url, "网络安全条例禁止脚本注入")
    first = page.locator("#results li.result").first
    text = first.locator(".passage").inner_text()
    assert "<script>" in text and "onerror" in text
    assert page.locator("#results script, #results img").count() == 0
    page.click("#admin summary")
    page.wait_for_selector("#documents tbody tr")
    assert "<img" in page.locator("#documents", has_text="hostile.txt").inner_text()
    assert page.locator("#documents img, #documents script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []


HOSTILE_META = """# <img src=x onerror="window.__pwned='title'">关于补贴的通知

## <img src=x onerror="window.__pwned='heading'">申请条件

恶意补贴条款规定<script>window.__pwned = "text"</script>不得注入。

恶意<img/src=x/onerror=alert(1)>局
2024年1月2日
"""


def test_results_show_metadata_and_open_the_whole_document(corpus: Path, server_factory, page: Any) -> None:
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    srv = server_factory(corpus)
    search(page, srv.url, "稳岗补贴最高多少钱？")
    first = page.locator("#results li.result", has_text="10万元").first
    expect(first.locator(".doc")).to_contain_text("甲人社发〔2020〕3号")
    assert "甲市人力资源局" in first.locator(".doc").inner_text()
    first.locator("button.read").click()
    reader = page.locator("#reader")
    expect(reader).to_be_visible()
    assert page.locator("#results").is_hidden()
    expect(page.locator("#reader-title")).to_have_text("甲市人力资源局关于发放稳岗补贴的通知")
    mark = page.locator("#reader-text mark.passage-mark")
    assert "10万元" in "".join(mark.all_inner_texts())
    expect(mark.first).to_be_in_viewport()
    assert "二、申请方式" in page.locator("#reader-outline").inner_text()
    page.locator("#reader-outline button", has_text="二、申请方式").click()
    expect(page.locator("#reader-text .anchor").nth(1)).to_be_in_viewport()
    href = page.locator("#reader-download").get_attribute("href")
    assert href and href.endswith("/original")
    with page.expect_download() as download:
        page.click("#reader-download")
    assert Path(download.value.path()).read_text(encoding="utf-8") == NOTICE
    page.click("#reader-close")
    expect(page.locator("#results")).to_be_visible()


def test_filters_grouping_and_chinese_errors(corpus: Path, server_factory, page: Any) -> None:
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    srv = server_factory(corpus)
    page.goto(srv.url + "/")
    page.click("#filters summary")
    expect(page.locator("#f-doc .choice")).to_have_count(3)
    assert page.locator("#f-folder option", has_text="sub").count() == 1
    page.fill("#f-issuer", "人力资源局")
    page.fill("#q", "补贴")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results li.result")
    assert {s.inner_text() for s in page.locator("#results .source").all()} == {"来源：notice.txt"}
    expect(page.locator("#status")).to_contain_text("已按筛选条件限定")

    page.fill("#f-issuer", "")
    page.check("#f-group")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results li.result")
    tops = page.locator("#results > li.result > .meta .source").all_inner_texts()
    assert len(tops) == len(set(tops))  # each document once
    expect(page.locator("#status")).to_contain_text("份文档")

    page.fill("#f-issuer", "局" * 101)  # the API refuses it: the page shows its Chinese message
    page.click("#search-form button[type=submit]")
    expect(page.locator("#status")).to_have_text("发文机关最多 100 个字符。")

    page.fill("#f-issuer", "")
    page.fill("#f-after", "2030-01-01")
    page.click("#search-form button[type=submit]")
    expect(page.locator("#status")).to_contain_text("放宽筛选条件")


def test_copy_citation(corpus: Path, server_factory, browser: Any) -> None:
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    srv = server_factory(corpus)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    try:
        search(pg, srv.url, "稳岗补贴最高多少钱？")
        button = pg.locator("#results li.result", has_text="10万元").first.locator("button.cite")
        button.click()
        expect(button).to_have_text("已复制")
        copied = pg.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("甲市人力资源局关于发放稳岗补贴的通知（甲人社发〔2020〕3号） › 一、补贴对象：")
        assert "10万元" in copied
    finally:
        context.close()


def test_markup_in_metadata_outline_and_text_never_runs(corpus: Path, server_factory, page: Any) -> None:
    (corpus / "hostile-meta.md").write_text(HOSTILE_META, encoding="utf-8")
    srv = server_factory(corpus)
    search(page, srv.url, "恶意补贴条款不得注入")
    first = page.locator("#results li.result", has_text="恶意补贴条款").first
    assert "<img" in first.locator(".doc").inner_text()  # the title, as text
    first.locator("button.read").click()
    expect(page.locator("#reader")).to_be_visible()
    assert "<img" in page.locator("#reader-title").inner_text()
    assert "<script>" in page.locator("#reader-text").inner_text()
    assert "onerror" in page.locator("#reader-outline").inner_text()
    assert "onerror=alert(1)>局" in page.locator("#reader-meta").inner_text()
    page.click("#filters summary")
    assert page.locator("#f-doc .choice", has_text="<img").count() == 1
    assert page.locator("#reader img, #reader script, #results img, #results script, #filters img").count() == 0
    page.click("#admin summary")
    page.wait_for_selector("#documents tbody tr")
    assert page.locator("#documents img, #documents script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []


def only_local(page: Any, url: str) -> list[str]:
    """Cut the page off from every origin but `url`; the list fills with what it tried to reach elsewhere."""
    outside: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(url + "/"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return outside


def test_swagger_ui_renders_offline(corpus: Path, server_factory, page: Any) -> None:
    """/docs comes from the service itself: with every other origin cut off it still lists the endpoints (and
    within its CSP, which the fixture checks)."""
    srv = server_factory(corpus)
    outside = only_local(page, srv.url)
    page.goto(srv.url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/search").first).to_be_visible(timeout=30_000)
    assert outside == []


def test_redoc_renders_offline(corpus: Path, server_factory, browser: Any) -> None:
    srv = server_factory(corpus)
    context = browser.new_context()
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    outside = only_local(page, srv.url)
    page.goto(srv.url + "/redoc")
    expect(page.locator("h2", has_text="Ranked passages for a question").first).to_be_visible(timeout=30_000)
    context.close()
    assert outside == []
    # ReDoc always tries its maker's logo (cdn.redoc.ly) and hides it when it fails: the CSP stops it first
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in text for text in blocked), blocked
