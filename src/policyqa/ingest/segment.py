"""The one place that knows Chinese text: normalisation, sentence splitting and jieba word segmentation."""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

# Sentence ends: Chinese and Western terminal punctuation, with any closing quotes or brackets after it.
_SENTENCE_END = re.compile(r"[^。！？!?；;…\n]*(?:[。！？!?；;]+|…+|\n|$)[”’」』）)\"']*")
# Chinese numerals of law and document numbering: 第一千零二十四条 (民法典 runs past a thousand articles).
NUMERALS = "一二三四五六七八九十百千零〇两"
TERMINAL = "。！？!?；;…”’」』"

# Words that carry no meaning for lexical matching (function words and question words).
STOPWORDS = frozenset(
    """的 了 和 与 及 或 在 是 为 对 把 被 将 以 于 由 从 向 等 其 之 也 而
    并 就 都 这 那 有 个 几 多少 哪些 哪 什么 怎么 怎样 如何 吗 呢 吧 啊
    请问 一个 一些 我们 你们 他们 它们 我 你 他 她 它 这个 那个 这些 那些 中
    上 下 里 所 可以 能 会 要 该 哪家 哪个 谁 是否 是不是 多大 多 有没有
    什么样 还 又 给 让 使 通过 进行 目前 the a an of to in and
    or is are was were be by for on at with what
    which how many much who does do did 几个 哪里 为什么
    哪些方面 怎么样 叫""".split()  # noqa: SIM905
)

_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)
# Question words jieba keeps whole (哪一年, 几号, 多少家): they ask, they do not name anything.
_QUESTION = re.compile(r"哪|^几|多少|多大|什么|怎么|为何")


def normalize(text: str) -> str:
    """Form used for matching: NFKC (full-width to half-width), lower case, collapsed spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip()


@functools.cache
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def simplify(text: str) -> str:
    """Traditional to simplified Chinese (OpenCC t2s); text without traditional characters is unchanged."""
    return str(_t2s().convert(text))


def normalize_query(text: str) -> str:
    """A question as it is matched and embedded: NFKC, simplified Chinese, trimmed (case kept for the model)."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", simplify(text)).strip()


def terminated(text: str) -> bool:
    """Whether a text ends with the end of a sentence (。！？； …, or a closing quote after one)."""
    return bool(text) and text.rstrip()[-1] in TERMINAL


def join_pieces(left: str, right: str) -> str:
    """Join two pieces of one sentence: no space between CJK characters, one between Latin words."""
    if left and right and left[-1].isascii() and left[-1].isalnum() and right[0].isascii() and right[0].isalnum():
        return f"{left} {right}"
    return left + right


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences of `text`, covering it without gaps, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    for m in _SENTENCE_END.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


@functools.cache
def _general_dictionary() -> tuple[dict[str, int], int]:
    """jieba's own dictionary, read once per process (it takes ~0.6 s); each Segmenter gets a copy."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return dict(tokenizer.FREQ), int(tokenizer.total)


class Segmenter:
    """A jieba tokenizer of its own (not the global one), optionally with a domain dictionary."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        import jieba

        freq, total = _general_dictionary()
        self._jieba: Any = jieba.Tokenizer()
        self._jieba.FREQ, self._jieba.total, self._jieba.initialized = dict(freq), total, True
        self._lock = threading.Lock()
        self.words = sorted({w for w in words if len(w) >= 2})
        with self._lock:
            self._total = float(self._jieba.total)
            self._general = {w: self._jieba.FREQ.get(w, 0) for w in self.words}
            for word in self.words:
                self._jieba.add_word(word, freq=200000)

    def words_of(self, text: str) -> list[str]:
        """Words for lexical search: search-mode jieba over normalised text, no stopwords or punctuation."""
        with self._lock:
            raw = list(self._jieba.cut_for_search(normalize(text)))
        return [w for w in (t.strip() for t in raw) if w and w not in STOPWORDS and not _PUNCT.match(w)]

    def query_words(self, text: str) -> list[str]:
        """Words of a question: precise-mode jieba (no overlapping fragments such as 京市 or 花台), which
        match the search-mode words the passages were indexed with."""
        with self._lock:
            raw = list(self._jieba.cut(normalize(text)))
        return [
            w
            for w in (t.strip() for t in raw)
            if w and w not in STOPWORDS and not _PUNCT.match(w) and not _QUESTION.search(w)
        ]

    def pieces(self, word: str) -> list[str]:
        """The search-mode words inside `word` (the forms passages were indexed with)."""
        with self._lock:
            return [w for w in self._jieba.cut_for_search(word) if len(w.strip()) >= 2]

    def rarity(self, word: str) -> float:
        """How specific a word is in general Chinese: log(total / frequency) in jieba's own dictionary.

        A word jieba does not know (a name, a number, a foreign word) counts as the rarest."""
        freq = self._general.get(word, self._jieba.FREQ.get(word, 0))
        return math.log(self._total / freq) if freq > 0 else math.log(self._total)

    def cut(self, text: str) -> list[str]:
        """Plain precise-mode words, punctuation kept (for display-side use such as highlighting)."""
        with self._lock:
            return [w for w in self._jieba.cut(text) if w.strip()]


_QUOTED = re.compile(r"《([^》]{2,40})》|“([^”]{2,30})”|「([^」]{2,30})」")
_PIECE_SPLIT = re.compile(r"[\s()（）【】\[\]、，,。；;：:！？!?/|｜]+")
_NUMBERING = re.compile(
    rf"^(第[{NUMERALS}\d]+[章节条]|[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十\d]+[）)]"
    r"|\d+[.．、]|[一二三四五六七八九十]是)"
)


def domain_words(headings: Iterable[str], cells: Iterable[str], texts: Iterable[str]) -> set[str]:
    """Words a policy corpus names itself: table cells, names in 《》 and “”, heading phrases.

    Short names become words as they are. Of longer ones, only the word-aligned suffixes that several
    names share (Chinese names end in their kind: 创新型产业集群, 国家高新园) do, so that a long name never
    swallows the words inside it.
    """
    whole: set[str] = set()
    candidates: set[str] = set()
    for text in texts:
        for m in _QUOTED.finditer(text):
            candidates.add(next(g for g in m.groups() if g))
    for heading in headings:
        candidates.update(_NUMBERING.sub("", p) for p in _PIECE_SPLIT.split(heading))
    for cell in cells:
        candidates.update(_PIECE_SPLIT.split(cell))
    candidates = {normalize(c) for c in candidates}
    candidates = {c for c in candidates if len(c) >= 2 and not re.fullmatch(r"[\d.%\s]+", c)}
    whole = {c for c in candidates if len(c) <= 7}
    base = Segmenter()
    affixes: Counter[str] = Counter()
    for c in candidates:
        cuts = base.cut(c)
        bounds = [sum(len(w) for w in cuts[:i]) for i in range(1, len(cuts))]
        for b in bounds:
            affixes[c[b:]] += 1
    shared = {a for a, count in affixes.items() if count >= 3 and 3 <= len(a) <= 10}
    return {w for w in whole | shared if w not in STOPWORDS}
