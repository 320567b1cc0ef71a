"""The no-answer decision: a calibrated logistic model over what one search saw, and the signals it reads.

Fitted by bench/noanswer_fit.py on the development set (350 answerable questions over 64 real documents and
111 unanswerable ones of five kinds: another place or year, a figure the document does not state, a
neighbouring topic, a law not in the corpus, chit-chat), with cross-validation grouped by document; its
coefficients and threshold are in data/noanswer.json. The signals:

- coverage: the share of the question's words the first passage holds, each weighted by how specific it is
  in general Chinese; missing_share: the same weight of the words that no passage holds at all;
- conflict: the first passage's document contradicts a year or place of the question (identity.py);
  match: the share of the question's identifying words in that document's identity;
- dense_top: the best cosine of the dense leg; legs_same_doc: both legs' best passages are in one document;
- qty_miss_passage: a 多少/几/何时 question meets a first passage holding no figure or date of that kind;
- named_absent: the question names a law, regulation or programme that no document's title or opening names;
- chat_hinge_top: how much closer the question is to everyday chit-chat (data/offtopic.txt, our own list)
  than to any passage of the corpus.

The coefficients hold for the encoder they were fitted with (cosines differ between models): for another
encoder, and for questions without Chinese characters, confidence.py keeps its simple rule.
"""

from __future__ import annotations

import json
import math
import re
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from policyqa.embed import Embedder
from policyqa.ingest.segment import normalize, normalize_query
from policyqa.models import Hit
from policyqa.snapshot.index import Index

DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = DATA / "noanswer.json"
OFFTOPIC = DATA / "offtopic.txt"
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Evidence:
    """What one hybrid search saw, beyond its hits: the inputs of the decision."""

    question: str  # as typed, cleaned (clean_query)
    words: tuple[str, ...]  # the question's words (segmenter.query_words)
    qvec: np.ndarray  # the question's vector
    dense: dict[int, float]  # the dense leg's candidates and scores
    lexical: dict[int, float]  # the BM25 leg's candidates and scores
    top: Hit | None  # the first passage
    match: float  # the first passage's document: share of the question's identifying words in its identity
    conflicts: tuple[str, ...]  # ... and the years and places of the question it contradicts


@dataclass(frozen=True)
class Model:
    features: tuple[str, ...]
    weights: tuple[float, ...]  # on the raw features
    intercept: float
    threshold: float  # flag when P(no passage answers) reaches this
    encoder: str  # the encoder family the model was fitted with: its cosines are what dense_top means

    @classmethod
    def load(cls, path: Path = MODEL) -> Model:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            tuple(data["features"]),
            tuple(float(w) for w in data["weights"]),
            float(data["intercept"]),
            float(data["threshold"]),
            str(data["encoder"]),
        )

    def applies_to(self, embedder: Embedder) -> bool:
        return embedder.name.split(":")[0] == self.encoder

    def probability(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(w * features[f] for f, w in zip(self.features, self.weights, strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


@cache
def default_model() -> Model:
    return Model.load()


def offtopic_questions(path: Path = OFFTOPIC) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


_OFFTOPIC: weakref.WeakKeyDictionary[Embedder, np.ndarray] = weakref.WeakKeyDictionary()


def offtopic_vectors(embedder: Embedder) -> np.ndarray:
    """The chit-chat list embedded as questions are, once per encoder."""
    if embedder not in _OFFTOPIC:
        texts = [normalize_query(q) for q in offtopic_questions()]
        _OFFTOPIC[embedder] = np.asarray(embedder.encode_queries(texts), np.float32)
    return _OFFTOPIC[embedder]


# A law, regulation or programme a question names: 《...》, or words ending in 法/条例/办法/细则.
_NAMED = re.compile(
    r"《([^》]{2,40}?(?:法|条例|办法|规定|细则|意见|通知|决定|计划|措施|指引))》"
    r"|([\u4e00-\u9fff]{2,14}?(?:法|条例|办法|细则))(?=规定|对|中|里|的|是|有|要|怎么|如何|[，。？?、\s]|$)"
)
_NOT_LAW = re.compile(
    r"^(?:方法|办法|想法|做法|说法|看法|用法|立法|司法|执法)$|(?:合法|违法|非法|依法|守法)$|什么|怎么|如何"
)


def named_absent(question: str, index: Index) -> list[str]:
    """Laws, regulations and quoted programmes the question names that no document's identity (title, file
    name, opening lines) names. The identities are read only when the question names one: most do not."""
    names = [(quoted or bare).removeprefix("中华人民共和国") for quoted, bare in _NAMED.findall(normalize(question))]
    names = [name for name in names if name and not _NOT_LAW.search(name)]
    if not names:
        return []
    heads = [identity.text.head for identity in index.identities.docs.values()]
    return [name for name in names if not any(name in h for h in heads)]


_N = r"[一二三四五六七八九十百千万两]"
# What a question asks for -> what a passage must hold to give it; the first kind that matches wins.
_ASKED: tuple[tuple[str, str], ...] = (
    (
        r"多久|多长时间|几天|多少天|几个工作日|多少个工作日|几年|多少年|几个月|多少个月|几小时|多少小时",
        rf"\d+\s*(?:个)?(?:年|月|日|天|工作日|小时|周)|{_N}+(?:个)?(?:年|月|日|天|工作日|小时|周)",
    ),
    (r"多少人|几个人|多少名|多少位", rf"\d+\s*(?:万)?(?:人|名|位)|{_N}+(?:人|名|位)"),
    (
        r"多少个|几个|多少家|几家|多少项|几项|多少条|几条|多少种|几种|多少所|多少场|几场|多少档|几档",
        rf"\d+\s*(?:个|家|项|条|种|所|场|档|批|类)|{_N}+(?:个|家|项|条|种|所|场|档|批|类)",
    ),
    (r"比例|费率|利率|税率|百分之|几成|几倍|打几折", r"%|％|百分之|成|倍|折"),
    (
        r"哪一?年|何时|什么时候|哪天|几月|几号|日期|截止|期限是|时间是",
        r"\d{1,4}年|\d{1,2}月|\d{1,2}日|[一二三四五六七八九十]+月|[年月日]底|之日|当日|次日|次月|即日",
    ),
    (
        r"多少钱|多少元|几元|多少万|金额是多少|交多少|付多少|领多少|补多少|贷多少|奖励多少|资助多少|补贴多少"
        r"|多少利息|多少费用|多少手续费",
        r"元|万|亿|免费|不收费|免收|免除",
    ),
    (r"多少|多大|多高|几", rf"\d|{_N}"),
)
ASKED = tuple((re.compile(asks), re.compile(units)) for asks, units in _ASKED)


def asked_units(question: str) -> re.Pattern[str] | None:
    """What a passage must hold to answer a question asking for a quantity or date; None: it asks for none."""
    return next((units for asks, units in ASKED if asks.search(question)), None)


def _best(scores: dict[int, float]) -> int | None:
    return min(scores, key=lambda i: (-scores[i], i)) if scores else None


def features(
    index: Index, embedder: Embedder, ev: Evidence, coverage: float, missing: tuple[str, ...]
) -> dict[str, float]:
    """The decision's inputs, each a number (see the module's docstring); `coverage` and `missing` are the
    ones confidence.py computes."""
    cjk = [w for w in dict.fromkeys(ev.words) if _CJK.search(w)]
    rarity = {w: index.segmenter.rarity(w) for w in cjk}
    total = sum(rarity.values())
    gone = set(missing)
    dense_best, lexical_best = _best(ev.dense), _best(ev.lexical)
    dense_top = ev.dense[dense_best] if dense_best is not None else 0.0
    same_doc = (
        dense_best is not None
        and lexical_best is not None
        and index.chunks[dense_best].doc_id == index.chunks[lexical_best].doc_id
    )
    units = asked_units(ev.question)
    passage = normalize(ev.top.chunk.text) if ev.top else ""
    chat = float((offtopic_vectors(embedder) @ ev.qvec).max())
    return {
        "coverage": coverage,
        "missing_share": sum(r for w, r in rarity.items() if w in gone) / total if total else 0.0,
        "conflict": float(bool(ev.conflicts)),
        "dense_top": dense_top,
        "legs_same_doc": float(same_doc),
        "qty_miss_passage": float(units is not None and units.search(passage) is None),
        "named_absent": float(bool(named_absent(ev.question, index))),
        "chat_hinge_top": max(0.0, chat - dense_top),
        "match": ev.match,
    }
