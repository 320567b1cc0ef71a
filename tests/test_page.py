"""The page on a phone (390 px) and on a desktop (1280 px), in headless Chromium against one real server for
the module: nothing sticks out sideways, every control can be reached and tapped, the page follows the service
(ready, uploads, deletions), PDF pages, versions of a notice (已被替代 opens the version in force), and
axe-core finds no serious or critical accessibility violation.

With POLICYQA_SCREENSHOTS=DIR set, each width's look is saved there as page-<width>-<step>.png."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import NOTICE, ROOT, SEED, TINY, TINY2, Server
from .test_formats import make_pdf
from .test_web import TOKEN, browser, expect  # noqa: F401 (browser: the fixture)

pytestmark = pytest.mark.browser

PHONE, DESKTOP = 390, 1280
WIDTHS = [PHONE, DESKTOP]
SHANGHAI = timezone(timedelta(hours=8))
DOCS = 7  # measures.txt, notice.txt, the seed, 规划.pdf, sub/datacenter.md, the 2024 and 2025 notices
# two editions of one issuer's notice: the 2025 one replaces the 2024 one (tests/test_versions.py)
MULTIDOC = ROOT / "tests" / "data" / "multidoc"
N2024, N2025 = "notice-2024-青山市科技创新券.txt", "notice-2025-青山市科技创新券.txt"
VERSIONS_Q = "青山市企业用创新券购买检验检测服务，补贴比例是多少？"
CONTROLS = ["#q", "#k", "#search-form button[type=submit]", "#filters summary", "#admin summary", ".example"]
FILTERS = ["#f-doc .choice", "#f-folder", "#f-issuer", "#f-after", "#f-before", "label.check"]
FILTERS += ["label:has(#f-current)", "#f-clear"]
# How much wider the question box is than its example question, in its own font.
PLACEHOLDER_ROOM = """q => {
  const style = getComputedStyle(q), pen = document.createElement("canvas").getContext("2d");
  pen.font = style.font;
  const inner = q.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return inner - pen.measureText(q.placeholder).width;
}"""
ADMIN = ["#token", "#token-form button[type=submit]", "#token-clear", ".file-pick", "#upload-form button", "#rebuild"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("page")
    corpus = root / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "measures.txt").write_text(TINY, encoding="utf-8")
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    (corpus / "sub" / "datacenter.md").write_text(TINY2, encoding="utf-8")
    (corpus / "规划.pdf").write_bytes(make_pdf(3))
    shutil.copy(SEED, corpus / SEED.name)
    for name in (N2024, N2025):
        shutil.copy(MULTIDOC / name, corpus / name)
    srv = Server(corpus, root / "index", {"POLICYQA_MODEL": "hash:64", "POLICYQA_ADMIN_TOKEN": TOKEN})
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def open_page(chromium: Any, width: int, **options: Any) -> Any:
    """A fresh tab `width` px wide: at phone width a touch screen, in Shanghai time, the browser in English
    (so that what is Chinese comes from the page, not from the browser)."""
    phone = width < 600
    context = chromium.new_context(
        viewport={"width": width, "height": 844 if phone else 900},
        has_touch=phone,
        is_mobile=phone,
        locale="en-US",
        timezone_id="Asia/Shanghai",
        **options,
    )
    page = context.new_page()
    page.on("dialog", lambda d: d.accept())
    return page


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:  # noqa: F811
    """open_page(width, **options) for the test; its tabs are closed after it."""
    pages: list[Any] = []

    def make(width: int, **options: Any) -> Any:
        page = open_page(browser, width, **options)
        page.width = width
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.context.close()


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def tab(request: pytest.FixtureRequest, opened: Any) -> Any:
    return opened(request.param)


def fits(page: Any) -> None:
    """Nothing wider than the window: the page never scrolls sideways."""
    wide = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert wide[0] <= wide[1], f"the page is {wide[0]} px wide in a window of {wide[1]} px"


def usable(page: Any, selectors: list[str]) -> None:
    """Each control is shown whole inside the window, big enough to tap on a phone, its text on one line."""
    width = page.viewport_size["width"]
    for selector in selectors:
        control = page.locator(selector).first
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, selector
        if width < 600:
            assert box["height"] >= 40 and box["width"] >= 20, f"{selector} is {box} on a phone"


def shoot(page: Any, step: str) -> None:
    folder = os.environ.get("POLICYQA_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"page-{page.width}-{step}.png"), full_page=True)


def ask(page: Any, q: str) -> None:
    page.fill("#q", q)
    page.click("#search-form button[type=submit]")
    expect(page.locator("#results li.result").first).to_be_visible()


def save_token(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")


@pytest.mark.parametrize("width", [360, PHONE, DESKTOP])
def test_every_control_fits_and_can_be_tapped(site: Server, opened: Any, width: int) -> None:
    tab = opened(width)
    tab.goto(site.url + "/")
    expect(tab.locator("#footer")).to_contain_text(f"已索引 {DOCS} 份文件")
    fits(tab)
    usable(tab, CONTROLS)
    submit = tab.locator("#search-form button[type=submit]").bounding_box()
    assert submit is not None and submit["height"] < 60  # 搜索 on one line, not 搜 over 索
    room = tab.locator("#q").evaluate(PLACEHOLDER_ROOM)
    assert room >= 0, f"the example question is cut ({room:.0f} px)"
    shoot(tab, "start")
    ask(tab, "高淳园的产业引导基金规模多大？")
    shoot(tab, "results")
    fits(tab)
    usable(tab, ["#results button.read", "#results button.cite", "#results button.helpful"])
    tab.click("#filters summary")
    fits(tab)
    usable(tab, FILTERS)
    ask(tab, VERSIONS_Q)  # a replaced version's card: its tag and the way to the version in force
    fits(tab)
    usable(tab, ["#results .current-link"])
    tag = tab.locator("#results .status-tag").first.bounding_box()  # a label, not a control: whole in view
    assert tag is not None and tag["x"] >= 0 and tag["x"] + tag["width"] <= tab.width
    shoot(tab, "versions")
    assert "Ctrl" not in tab.inner_text("#filters") and "⌘" not in tab.inner_text("#filters")
    shoot(tab, "filters")
    tab.click("#admin summary")
    expect(tab.locator("#documents tbody tr")).to_have_count(DOCS)
    fits(tab)
    usable(tab, ADMIN)
    row = tab.locator("#documents tbody tr").first
    usable(tab, ["#documents tbody tr button.delete"])
    # on a phone each document is a card, each value under its column's label; on a desktop a table row
    display = row.evaluate("r => getComputedStyle(r).display")
    assert display == ("block" if tab.width < 600 else "table-row")
    assert row.locator("td.doc-source").get_attribute("data-label") == "文件"
    shoot(tab, "admin")


def test_documents_are_chosen_by_tapping(site: Server, tab: Any) -> None:
    tab.goto(site.url + "/")
    tab.click("#filters summary")
    chips = tab.locator("#f-doc .choice")
    expect(chips).to_have_count(DOCS)
    for title in ("稳岗补贴", "数据中心"):
        chip = chips.filter(has_text=title)
        chip.tap() if tab.width == PHONE else chip.click()
        expect(chip.locator("input")).to_be_checked()
    tab.fill("#q", "补贴")
    tab.click("#search-form button[type=submit]")
    expect(tab.locator("#results li.result").first).to_be_visible()
    sources = set(tab.locator("#results .source").all_inner_texts())
    assert sources and sources <= {"来源：notice.txt", "来源：sub/datacenter.md"}
    expect(tab.locator("#status")).to_contain_text("已按筛选条件限定")
    # 清除筛选 clears them and searches the question again across every document
    tab.click("#f-clear")
    expect(tab.locator("#status")).not_to_contain_text("已按筛选条件限定")
    expect(tab.locator("#f-doc input:checked")).to_have_count(0)
    expect(tab.locator("#results li.result").first).to_be_visible()
    assert len(set(tab.locator("#results .source").all_inner_texts())) > 1
    fits(tab)


def test_dates_are_written_the_chinese_way_whatever_the_browser(site: Server, tab: Any) -> None:
    tab.goto(site.url + "/")
    tab.click("#filters summary")
    assert tab.get_attribute("#f-after", "type") == "text"  # not the browser's mm/dd/yyyy date control
    tab.fill("#f-after", "2020年1月1日")
    tab.fill("#f-before", "2020.12.31")
    ask(tab, "补贴")
    assert set(tab.locator("#results .source").all_inner_texts()) == {"来源：notice.txt"}  # dated 2020-02-10
    tab.fill("#f-before", "明年")
    tab.click("#search-form button[type=submit]")
    expect(tab.locator("#status")).to_contain_text("无法识别")


def test_results_say_how_well_they_match_not_a_raw_score(site: Server, tab: Any) -> None:
    tab.goto(site.url + "/")
    ask(tab, "高淳园的产业引导基金规模多大？")
    scores = tab.locator("#results .score").all_inner_texts()
    assert scores[0] == "匹配度 高" and all(s.startswith("匹配度 ") for s in scores)
    assert "得分" not in tab.inner_text("#results")


def test_the_page_waits_for_the_service_then_fills_itself(site: Server, opened: Any) -> None:
    """Opened while the service starts (its health answers 503 for a while), the page says so, then fills the
    filters and the footer once it is ready, with no reload."""
    page = opened(PHONE)
    starting = json.dumps(
        {"error": "starting", "message": "服务正在启动：正在加载模型和索引，请稍候。", "status": "starting"}
    )
    asked: list[float] = []

    def health(route: Any) -> None:
        asked.append(time.monotonic())
        if len(asked) <= 3:
            route.fulfill(status=503, content_type="application/json", body=starting)
        else:
            route.continue_()

    page.route("**/api/health", health)
    page.goto(site.url + "/")
    expect(page.locator("#footer")).to_contain_text("服务正在启动")
    expect(page.locator("#footer")).to_contain_text(f"已索引 {DOCS} 份文件", timeout=20_000)
    expect(page.locator("#f-doc .choice")).to_have_count(DOCS)
    assert len(asked) >= 4
    footer = page.inner_text("#footer")
    assert "multilingual" not in footer and "hash" not in footer and "最近更新" in footer


def test_pdf_results_name_their_page(site: Server, opened: Any) -> None:
    page = opened(PHONE, permissions=["clipboard-read", "clipboard-write"])
    page.goto(site.url + "/")
    ask(page, "领军人才安家补贴和子女入学")
    card = page.locator("#results li.result", has_text="安家补贴").first
    expect(card.locator(".page-no")).to_have_text("第2页")
    card.locator("button.cite").click()
    expect(card.locator("button.cite")).to_have_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "二、人才支持 › 第2页：" in copied
    card.locator("button.read").click()
    expect(page.locator("#reader")).to_be_visible()
    breaks = page.locator("#reader-text .page-break")
    expect(breaks).to_have_text(["第1页", "第2页", "第3页"])
    expect(page.locator("#reader-meta")).to_contain_text("本段在第2页")
    # the passage sits after the 第2页 rule and before the 第3页 one
    order = page.locator("#reader-text .page-break, #reader-text mark.passage-mark").evaluate_all(
        "nodes => nodes.map(n => n.className)"
    )
    first_mark = order.index("passage-mark")
    assert order[:first_mark] == ["page-break", "page-break"]
    fits(page)
    shoot(page, "pdf-reader")


def test_the_outline_lists_headings_not_a_table_header(site: Server, opened: Any) -> None:
    page = opened(DESKTOP)
    page.goto(site.url + "/")
    ask(page, "南京有几个国家级创新型产业集群？")
    page.locator("#results button.read").first.click()
    outline = page.locator("#reader-outline")
    expect(outline).to_contain_text("南京高新区创新型产业集群概况")
    assert "序号" not in outline.inner_text() and "建设单位" not in outline.inner_text()


def test_the_token_is_checked_when_saved(site: Server, opened: Any) -> None:
    page = opened(PHONE)
    page.goto(site.url + "/")
    page.click("#admin summary")
    save_token(page, "wrong")
    expect(page.locator("#token-state")).to_contain_text("令牌无效")
    assert page.evaluate("sessionStorage.getItem('policyqa-admin-token')") is None
    save_token(page, TOKEN)
    expect(page.locator("#token-state")).to_contain_text("令牌有效")
    assert page.evaluate("sessionStorage.getItem('policyqa-admin-token')") == TOKEN


def test_uploads_and_deletions_refresh_the_lists_and_counts(site: Server, opened: Any) -> None:
    """After an upload the new document is in the filters, the admin list and the footer's count, and after
    its deletion gone from all three, without reloading the page; times are the reader's (Shanghai), not UTC."""
    page = opened(PHONE)
    page.goto(site.url + "/")
    expect(page.locator("#footer")).to_contain_text(f"已索引 {DOCS} 份文件")
    page.click("#admin summary")
    save_token(page, TOKEN)
    expect(page.locator("#token-state")).to_contain_text("令牌有效")
    content = "海洋经济发展规划\n\n一、发展目标\n到2030年，海洋生产总值达到1.5万亿元。\n".encode()
    page.set_input_files("#file", files=[{"name": "海洋规划.txt", "mimeType": "text/plain", "buffer": content}])
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#admin-message")).to_contain_text("已可检索", timeout=60_000)
    expect(page.locator("#footer")).to_contain_text(f"已索引 {DOCS + 1} 份文件")
    expect(page.locator("#f-doc .choice", has_text="海洋经济发展规划")).to_have_count(1)
    row = page.locator("#documents tbody tr", has_text="海洋规划.txt")
    listed = httpx.get(site.url + "/api/documents").json()["documents"]
    when = next(d["indexed_at"] for d in listed if d["source"] == "海洋规划.txt")
    utc = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    expect(row.locator("td.when")).to_have_text(utc.astimezone(SHANGHAI).strftime("%Y/%m/%d %H:%M"))
    row.locator("button.delete").click()
    expect(page.locator("#documents")).not_to_contain_text("海洋规划.txt", timeout=60_000)
    expect(page.locator("#f-doc .choice", has_text="海洋经济发展规划")).to_have_count(0)
    expect(page.locator("#footer")).to_contain_text(f"已索引 {DOCS} 份文件", timeout=60_000)


def test_no_serious_accessibility_violations(site: Server, tab: Any) -> None:
    """axe-core, in Chromium, on the page with results, the filters and the admin panel open, then 查看原文."""
    from axe_playwright_python.sync_playwright import Axe

    tab.goto(site.url + "/")
    ask(tab, VERSIONS_Q)  # the cards of both versions, one tagged 已被替代
    expect(tab.locator("#results .status-tag").first).to_be_visible()
    tab.click("#filters summary")
    tab.click("#admin summary")
    expect(tab.locator("#documents tbody tr")).to_have_count(DOCS)
    axe = Axe()
    found = axe.run(tab).response["violations"]
    tab.locator("#results li.result", has_text="已被替代").locator("button.read").first.click()
    expect(tab.locator("#reader-validity")).to_contain_text("已被替代")
    found += axe.run(tab).response["violations"]
    bad = [(v["id"], [n["target"] for n in v["nodes"]]) for v in found if v["impact"] in ("serious", "critical")]
    assert bad == []


def test_a_replaced_version_is_tagged_and_leads_to_the_version_in_force(site: Server, tab: Any) -> None:
    """Both editions answer; the 2024 one's card says 已被替代 and its link opens the 2025 notice at the same
    article, highlighted; 只看现行有效 leaves only documents in force, 清除筛选 brings the old one back."""
    tab.goto(site.url + "/")
    ask(tab, VERSIONS_Q)
    old = tab.locator("#results li.result", has_text="来源：" + N2024).first
    new = tab.locator("#results li.result", has_text="来源：" + N2025).first
    expect(old.locator(".status-tag")).to_have_text("已被替代")
    expect(new.locator(".validity")).to_have_count(0)  # in force: no tag
    old.locator(".current-link").click()
    expect(tab.locator("#reader")).to_be_visible()
    expect(tab.locator("#reader-meta")).to_contain_text("来源：" + N2025)
    expect(tab.locator("#reader-validity")).to_be_hidden()
    mark = tab.locator("#reader-text mark.passage-mark")
    expect(mark).to_contain_text("按服务金额的40%给予补贴")
    article = tab.locator("#reader-text").bounding_box()
    spot = mark.first.bounding_box()
    assert article and spot and article["y"] <= spot["y"] < article["y"] + article["height"]  # scrolled to it
    fits(tab)
    # 查看原文 of the replaced version says so in its head, with the same way on
    tab.click("#reader-close")
    old.locator("button.read").click()
    expect(tab.locator("#reader-validity .status-tag")).to_have_text("已被替代")
    tab.click("#reader-validity .current-link")
    expect(tab.locator("#reader-meta")).to_contain_text("来源：" + N2025)
    tab.click("#reader-close")
    tab.click("#filters summary")
    tab.check("#f-current")
    tab.click("#search-form button[type=submit]")
    expect(tab.locator("#status")).to_contain_text("已按筛选条件限定")
    sources = tab.locator("#results .source").all_inner_texts()
    assert "来源：" + N2025 in sources and "来源：" + N2024 not in sources
    expect(tab.locator("#results .status-tag")).to_have_count(0)
    tab.click("#f-clear")
    expect(tab.locator("#f-current")).not_to_be_checked()
    expect(tab.locator("#results li.result", has_text="来源：" + N2024).first).to_be_visible()
