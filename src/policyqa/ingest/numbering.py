"""The numbering of Chinese laws and official documents: the style a line opens with (第X编 章 节 条, 一、
（一） 1. （1） ① 其一), by which headings and list items are told from body text."""

from __future__ import annotations

import re

from policyqa.ingest.segment import NUMERALS

_CN = NUMERALS
STYLES: list[tuple[str, re.Pattern[str]]] = [
    ("volume", re.compile(rf"^第[{_CN}\d]+(分)?编")),
    ("chapter", re.compile(rf"^第[{_CN}\d]+章")),
    ("part", re.compile(rf"^第[{_CN}\d]+节")),
    ("article", re.compile(rf"^第[{_CN}\d]+条")),
    ("cn", re.compile(rf"^[{_CN}]+[、．.](?!\d)")),
    ("cn_paren", re.compile(rf"^[（(][{_CN}]+[）)]")),
    ("num", re.compile(r"^\d{1,2}[.．、](?!\d)")),
    ("num_paren", re.compile(r"^[（(]\d{1,2}[）)]")),
    ("circled", re.compile(r"^[①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳]")),
    ("ordinal", re.compile(r"^(其[一二三四五六七八九十]|[一二三四五六七八九十]是)")),
]


def heading_style(text: str) -> str | None:
    for style, pattern in STYLES:
        if pattern.match(text):
            return style
    return None


def is_numbered(text: str) -> bool:
    return heading_style(text) is not None
