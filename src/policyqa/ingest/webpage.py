"""Saved web pages -> units: the main content found by text density, page chrome removed by named rules.

Government pages wrap one article in navigation, share and print links, QR codes, sticky copies of the
title, related-news lists and footers; some carry an empty or decoy `<article>`/`<main>`. The main
content is the element with the most text that is not chrome, narrowed to the deepest element that still
holds nearly all of it; the title and the attribute lines above it (date, source, 发文字号) are kept.
Everything left out is recorded under the rule that removed it, so nothing disappears silently.
"""

from __future__ import annotations

import re
from typing import Any

from policyqa.models import Unit

# Tags that never hold body text.
_SKIP_TAGS = frozenset(
    ["script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button", "select", "input"]
)
_CHROME_TAGS = {"nav": "navigation", "header": "navigation", "aside": "navigation", "footer": "footer"}
# class/id words of page chrome, each with the rule that removes it
_CHROME_HINTS: list[tuple[str, re.Pattern[str]]] = [
    (
        "navigation",
        re.compile(
            r"(^|[-_ ])(nav|navbar|menu|breadcrumb|crumbs?|sidebar|side|search|slide|modal|gotop|top-?bar|"
            r"related|xgxw|login|position|location|skip)([-_ \d]|$)",
            re.I,
        ),
    ),
    (
        "share and print links",
        re.compile(r"(^|[-_ ])(share|print|ewm|qrcode|qr|toolbar|tools?|btns?|fontsize)([-_ ]|$)", re.I),
    ),
    ("footer", re.compile(r"(^|[-_ ])(footer|foot|copyright|bottom)([-_ ]|$)", re.I)),
]
_CONTENT_HINT = re.compile(r"content|article|detail|zoom|trs|editor|main|text|zw|body|con\b|wenzhang", re.I)
_TITLE_HINT = re.compile(r"(^|[-_ ])(title|tit|bt)([-_ \d]|$)", re.I)
_ATTR_HINT = re.compile(r"(^|[-_ ])(attr|subtitle|info|source|date|meta|wh|fwzh)([-_ \d]|$)", re.I)
# Lines of page furniture that sit inside the content elements too: a line made only of these words.
_FURNITURE = (
    r"分享到[:：]?|分享|打印|关闭|打印本页|关闭窗口|关闭本页|打印页面|返回顶部|扫一扫.*|浏览次数[:：]?\S*|浏览量[:：]?\S*"
    r"|【?字体[:：]?|【?字号[:：]?|[大中小]】?|[×+\-↺]|搜索|取消|分享文章到|收藏|纠错|微信|微博|QQ|QQ空间|新浪微博|微信好友|QQ好友"
)
LINE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("navigation", re.compile(r"^(您当前所在的?位置|当前位置|您的位置|您现在的位置)[:：]")),
    ("share and print links", re.compile(rf"^(?:(?:{_FURNITURE})\s*)+$")),
    ("footer", re.compile(r"(版权所有|主办单位|承办单位|ICP备|网站标识码|公网安备|技术支持[:：]|网站地图|联系我们$)")),
]
_BLOCK = frozenset(
    ["p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "caption", "address", "h1", "h2", "h3", "h4", "h5", "h6"]
)
_CONTAINER = frozenset(["div", "section", "article", "main", "ul", "ol", "dl", "figure", "body", "center", "font"])
NEARLY_ALL = 0.85  # a descendant holding this share of the best element's text is the tighter root
MIN_MAIN = 0.25  # below this share of the page's text, a content element is a decoy: the body is used


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _hints(tag: Any) -> str:
    classes = tag.get("class") or []
    parts = classes if isinstance(classes, list) else [str(classes)]
    return " ".join([*parts, str(tag.get("id", "")), str(tag.get("role", ""))])


def _chrome_rule(tag: Any) -> str | None:
    if tag.name in _SKIP_TAGS:
        return "script"
    if tag.name in _CHROME_TAGS:
        return _CHROME_TAGS[tag.name]
    if tag.get("hidden") is not None or "display:none" in str(tag.get("style", "")).replace(" ", ""):
        return "hidden"
    hints = _hints(tag)
    if tag.name in ("html", "body") or not hints.strip():
        return None
    for rule, pattern in _CHROME_HINTS:
        if pattern.search(hints):
            return rule
    return None


def line_rule(text: str) -> str | None:
    """The rule that removes a line of page furniture, or None for body text."""
    for rule, pattern in LINE_RULES:
        if pattern.search(text):
            return rule
    return None


def _strip_chrome(root: Any, removed: list[Unit]) -> None:
    """Detach chrome elements, recording their text under their rule (scripts and styles are not text)."""
    from bs4.element import Comment, Tag

    for comment in root.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    stack = [c for c in root.children if isinstance(c, Tag)][::-1]
    while stack:
        tag = stack.pop()
        rule = _chrome_rule(tag)
        if rule is None:
            stack.extend([c for c in tag.children if isinstance(c, Tag)][::-1])
            continue
        text = _squash(tag.get_text(" "))
        if text and rule != "script":
            removed.append(Unit(text, "removed", rule=rule))
        tag.extract()


def _text_len(tag: Any) -> int:
    """Characters of text outside links: menus and lists of links are long but not content."""
    from bs4.element import NavigableString

    total = 0
    for node in tag.descendants:
        if type(node) is NavigableString and not any(p.name == "a" for p in node.parents):
            total += len(re.sub(r"\s+", "", str(node)))
    return total


def _main(body: Any) -> Any:
    """The element holding the page's main text: the richest content-like element, narrowed to its deepest
    descendant that still holds nearly all of its text; the body when no such element holds enough."""
    total = _text_len(body) or 1
    candidates = [
        t
        for t in body.find_all(["article", "main", "div", "section", "td"])
        if t.name in ("article", "main") or _CONTENT_HINT.search(_hints(t))
    ]
    sized = [(c, _text_len(c)) for c in candidates]
    sized = [(c, n) for c, n in sized if n > 0]
    if not sized:
        return body
    best, most = max(sized, key=lambda cn: cn[1])
    if most < MIN_MAIN * total:
        return body
    for tag in best.find_all(["article", "main", "div", "section", "td"]):
        if _text_len(tag) >= NEARLY_ALL * most:
            best = tag  # find_all walks depth first: the last one kept is the deepest
    return best


def _title(soup: Any, root: Any) -> tuple[str, list[Any]]:
    """The page title (the <h1>, else the title-like element nearest before the root, else <title> without
    the site name) and the attribute elements between it and the root (date, source, 发文字号)."""
    before = []
    for tag in soup.find_all(["h1", "h2", "div", "p", "span", "td"]):
        if tag is root:
            break
        if root in tag.parents or any(p is tag for p in root.parents):
            continue
        text = _squash(tag.get_text(" "))
        if (tag.name == "h1" or _TITLE_HINT.search(_hints(tag))) and 4 <= len(text) <= 120 and not line_rule(text):
            before.append(tag)
    h1 = [t for t in before if t.name == "h1"]
    title_el = h1[-1] if h1 else (before[-1] if before else None)
    title = _squash(title_el.get_text(" ")) if title_el is not None else ""
    if not title and soup.title is not None:
        title = re.split(r"\s+[-_|｜]\s+|[_|｜]", _squash(soup.title.get_text()))[0]
    attrs: list[Any] = []
    if title_el is not None:
        for tag in title_el.find_all_next(True):
            if tag is root or root in tag.parents:
                break
            if _ATTR_HINT.search(_hints(tag)) and not any(a in tag.parents for a in attrs):
                attrs.append(tag)
    return title, attrs


def _units(root: Any) -> list[Unit]:
    from bs4.element import NavigableString, Tag

    units: list[Unit] = []
    buffer: list[str] = []

    def flush() -> None:
        text = _squash("".join(buffer))
        buffer.clear()
        if text:
            units.append(Unit(text))

    def walk(node: Any) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a comment, doctype or CDATA
                    buffer.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            if child.name == "table":
                flush()
                for tr in child.find_all("tr"):
                    cells = [_squash(c.get_text(" ")) for c in tr.find_all(["th", "td"])]
                    if any(cells):
                        units.append(Unit("\t".join(cells), "row", cells=cells))
                units.append(Unit("", "end"))
            elif child.name in _BLOCK:
                flush()
                text = _squash(child.get_text(" "))
                level = int(child.name[1]) if re.fullmatch(r"h[1-6]", child.name) else 0
                if text:
                    units.append(Unit(text, "heading" if level else "line", level=level))
            elif child.name == "br":
                flush()
            else:
                block = child.name in _CONTAINER
                if block:
                    flush()
                walk(child)
                if block:
                    flush()

    walk(root)
    flush()
    return units


def load_html(data: bytes, name: str) -> list[Unit]:
    """Units of a page: its title, attribute lines and main content; the rest as `removed` units."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    body = soup.body or soup
    removed: list[Unit] = []
    _strip_chrome(body, removed)
    root = _main(body)
    title, attrs = _title(soup, root)
    units: list[Unit] = [Unit(title, "title")] if title else []
    for attr in attrs:
        units.extend(_units(attr))
    units.extend(_units(root))
    if root is not body:
        kept = {id(a) for a in attrs}
        outside = _outside_text(body, root, kept)
        removed.extend(Unit(t, "removed", rule="outside the main content") for t in outside if t != title)
    for unit in units:
        rule = line_rule(unit.text) if unit.kind == "line" and len(unit.text) <= 40 else None
        if rule:
            unit.kind, unit.rule = "removed", rule
    return units + removed


def _outside_text(body: Any, root: Any, kept: set[int]) -> list[str]:
    """Text of the page outside the main content and the kept attribute elements, block by block."""
    from bs4.element import NavigableString

    pieces: list[str] = []
    for node in body.descendants:
        if not isinstance(node, NavigableString) or type(node) is not NavigableString:
            continue
        parents = list(node.parents)
        if root in parents or any(id(p) in kept for p in parents):
            continue
        text = _squash(str(node))
        if text:
            pieces.append(text)
    return pieces
