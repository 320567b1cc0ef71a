"""What known questions add to a search: the statute wording of the BM25 query (search/wording.py), and the
vote of the known questions nearest the question for the passages they are attached to.

The vote (measured on ../shared/devset, issue 25): BM25 of the question's words over the known questions,
divided by the best; the K best vote with softmax weights exp((s - s_best) / tau), a question attached to m
passages giving each 1/m of its vote; times a gate on the best cosine between the question and a known
question, clip((best - c0) / (c1 - c0), 0, 1), since a softmax hands out its whole mass also when no known
question is near (policy notices: best cosine ~0.88; legal questions ~0.93 with e5-small int8). A dense
vote cost first places on questions whose article no known question cites: off by default.

An operator's question is a stronger signal: its passages gain `operator` times clip((cos - c0) / (c1 - c0))
of its cosine with the question, so the same question asked again brings them first. Questions of the same
shape about another park or programme are as close to it (cosine 0.90-0.92) as a paraphrase, so the gain
also needs the question's specific words: the idf-weighted share of them that the known question or the
passage holds, clip((share - s0) / (s1 - s0)); 六合园建设哪个产业集群？ does not borrow the answer of a known
question about 鼓楼园's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policyqa.ingest.bank import OPERATOR_ORIGIN
from policyqa.ingest.segment import normalize
from policyqa.search import wording
from policyqa.snapshot.index import Index
from policyqa.store.base import Scope


@dataclass(frozen=True)
class KnownParams:
    lexical: float = 0.2  # weight of the BM25 leg's vote (0: off)
    dense: float = 0.0  # weight of the dense leg's vote
    operator: float = 1.0  # weight of an operator's question, by its closeness to the question
    k: int = 10  # known questions that vote, per leg
    tau_dense: float = 0.02  # softmax temperature, cosine units
    tau_lexical: float = 0.1  # softmax temperature, BM25 / best BM25 units
    gate: tuple[float, float] = (0.89, 0.92)  # best known-question cosine: no vote below c0, whole above c1
    operator_gate: tuple[float, float] = (0.87, 0.95)  # an operator's question: nothing below c0, whole above c1
    operator_words: tuple[float, float] = (0.6, 0.9)  # ... and of the question's words it or the passage holds
    extra: int = 10  # passages of this many top voters per leg join the candidates


@dataclass(frozen=True)
class Votes:
    scores: dict[int, float]  # passage row -> what the known questions add to its fused score
    candidates: list[int]  # passages to add to the candidates
    matched: dict[int, str]  # passage row -> the known question that gave it most

    def add(self, fused: dict[int, float]) -> dict[int, float]:
        """Fused scores plus the votes of the passages among them."""
        return {i: v + self.scores.get(i, 0.0) for i, v in fused.items()} if self.scores else fused


NONE = Votes({}, [], {})


def terms(index: Index, words: list[str], weight: float) -> list[str] | dict[str, float]:
    """The BM25 query: the question's words and, at `weight`, the statute words the wording table gives for
    them (only words some passage holds)."""
    expanded = wording.expand(words, wording.shipped(), weight, index.lexical.known)
    return expanded if len(expanded) > len(set(words)) else words  # plain words: the same scores, kept for _hits


def _clip(x: float, gate: tuple[float, float]) -> float:
    c0, c1 = gate
    return min(1.0, max(0.0, (x - c0) / (c1 - c0))) if c1 > c0 else 1.0


def _vote(
    sims: np.ndarray, tau: float, params: KnownParams, rows: Sequence[Sequence[int]]
) -> tuple[dict[int, float], list[int], dict[int, tuple[float, int]]]:
    """Softmax votes of the k best-scoring known questions; the passages of the first `extra` of them; and for
    each passage the voter that gave it most."""
    order = np.argsort(-sims, kind="stable")[: params.k]
    e = np.exp((sims[order] - sims[order[0]]) / tau)
    e /= e.sum()
    got: dict[int, float] = {}
    best: dict[int, tuple[float, int]] = {}
    for j, share in zip(order.tolist(), e.tolist(), strict=True):
        for p in rows[j]:
            got[p] = got.get(p, 0.0) + share / len(rows[j])
            if p not in best or share > best[p][0]:
                best[p] = (share, j)
    return got, [p for j in order[: params.extra].tolist() for p in rows[j]], best


def votes(index: Index, qvec: np.ndarray, words: list[str], params: KnownParams, scope: Scope | None) -> Votes:
    """What the known questions of `index` add for one question (NONE when it has none, or none is near)."""
    known = index.known
    if not known.known or not (params.lexical or params.dense or params.operator):
        return NONE
    rows = [[r for r in rs if scope is None or scope.admits(index.chunks[r].doc_id)] for rs in known.rows]
    cos = known.vectors @ qvec
    scores: dict[int, float] = {}
    extra: list[int] = []
    matched: dict[int, tuple[float, int]] = {}
    gate = _clip(float(cos.max()), params.gate)
    legs = [(params.dense, cos.astype(np.float64), params.tau_dense)] if params.dense else []
    bm25 = known.lexical.scores(words)
    if params.lexical and float(bm25.max()) > 0:
        legs.append((params.lexical, bm25.astype(np.float64) / float(bm25.max()), params.tau_lexical))
    for weight, sims, tau in legs if gate else []:
        got, cands, best = _vote(sims, tau, params, rows)
        for p, v in got.items():
            scores[p] = scores.get(p, 0.0) + weight * gate * v
        extra += cands
        for p, (share, j) in best.items():
            if p not in matched or share * weight > matched[p][0]:
                matched[p] = (share * weight, j)
    _operators(index, words, rows, cos, params, (scores, extra, matched))
    if not scores:
        return NONE
    return Votes(scores, list(dict.fromkeys(extra)), {p: known.known[j].q for p, (_, j) in matched.items()})


def _operators(
    index: Index,
    words: list[str],
    rows: Sequence[Sequence[int]],
    cos: np.ndarray,
    params: KnownParams,
    out: tuple[dict[int, float], list[int], dict[int, tuple[float, int]]],
) -> None:
    """An operator's question near the question adds to its passages, and they join the candidates."""
    if not params.operator:
        return
    scores, extra, matched = out
    weights = {w: index.lexical.idf(w) for w in dict.fromkeys(words)}
    total = sum(weights.values())
    for j, k in enumerate(index.known.known):
        near = _clip(float(cos[j]), params.operator_gate) if k.origin == OPERATOR_ORIGIN else 0.0
        if not near or not rows[j]:
            continue
        asked = normalize(k.q)
        for p in rows[j]:
            held = asked + "\n" + normalize(index.chunks[p].context)
            share = sum(v for w, v in weights.items() if w in held) / total if total else 1.0
            gain = params.operator * near * _clip(share, params.operator_words)
            if not gain:
                continue
            scores[p] = scores.get(p, 0.0) + gain
            if p not in matched or gain >= matched[p][0]:
                matched[p] = (gain, j)
            extra.append(p)
