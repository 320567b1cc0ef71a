"""How far can the ranking go with the signals the search computes? A learned ranker over them, as a bound.

For each answerable question, the candidates are the union of both legs' top `--depth` passages (what the
search fuses). Each candidate gets 18 features: the current fused score; the dense cosines of the passage and
of its best sentence, raw and scaled; BM25 of the passage and of its best sentence, scaled; the document's
agreement with the question and whether it contradicts a year or place; the closeness of the document's
centroid; both legs' ranks; length; the share of the question's idf mass in the passage and in its breadcrumb;
the best fused score among the candidates of the same document and that document's share of the candidates;
and the best fused score of the passage's neighbours. A linear ranker (listwise softmax loss, L2) is fitted
in three ways and scored per group of questions (first word of `origin`):

- on the very questions it is scored on (an upper bound for any reweighting of these signals);
- in folds by source document (questions of a document are never in both sides);
- leaving each group out (fitted on the others).

    python bench/ranking_ceiling.py --qa ../shared/devset/qa.jsonl --index /tmp/dev-index

The index must be built from the QA file's corpus (`policyqa build --corpus ../shared/devset/docs --index
/tmp/dev-index`). Not part of `make bench`: it needs the dev set beside the repository.
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policyqa.config import Settings
from policyqa.embed import Embedder, load_embedder
from policyqa.ingest.segment import normalize, normalize_query
from policyqa.search.evaluation import Question, read_questions, relevant
from policyqa.search.ranking import SearchOptions
from policyqa.snapshot.index import Index, load

GROUPS_FIELD = "origin"


@dataclass(frozen=True)
class Candidates:
    question: Question
    features: np.ndarray  # candidates x features
    labels: np.ndarray  # which candidates hold the answer


def _scaled(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.ones_like(a)


def _by_max(a: np.ndarray) -> np.ndarray:
    top = float(a.max())
    return a / top if top > 0 else np.zeros_like(a)


def candidates(index: Index, embedder: Embedder, question: Question, depth: int) -> Candidates:
    """The question's candidates and their features, computed with the index's own scoring."""
    opts = SearchOptions()
    text = normalize_query(question.q)
    qvec = embedder.encode_queries([text])[0]
    words = index.segmenter.query_words(text)
    lexical = index.lexical.top(words, depth, opts.sentence, None)
    ids = list(dict.fromkeys(index.vectors.nearest(qvec, depth, None) + list(lexical)))
    dense = index.vectors.scores(qvec, ids, opts.sentence)
    dense_rank = {i: r for r, i in enumerate(sorted(dense, key=lambda i: -dense[i]))}
    lexical_rank = {i: r for r, i in enumerate(lexical)}
    own_d, best_d = index.vectors.scores(qvec, ids, 0.0), index.vectors.scores(qvec, ids, 1.0)
    own_l, best_l = index.lexical.scores(words, ids, 0.0), index.lexical.scores(words, ids, 1.0)
    agree = index.identities.agreement(words, text, (index.chunks[i].doc_id for i in ids))
    _, centres, owner = index.centroids
    near = centres @ qvec
    weights = {w: index.lexical.idf(w) for w in words}
    total = sum(weights.values()) or 1.0

    def column(values: Callable[[int], float]) -> np.ndarray:
        return np.array([values(i) for i in ids], float)

    od, bd = column(own_d.__getitem__), column(best_d.__getitem__)
    ol, bl = column(own_l.__getitem__), column(best_l.__getitem__)
    match = column(lambda i: agree[index.chunks[i].doc_id].match)
    conflict = column(lambda i: float(bool(agree[index.chunks[i].doc_id].conflicts)))
    topic = _scaled(column(lambda i: float(near[owner[i]])))
    # The search's own fusion of the same numbers (search.weighted plus the document and topic terms).
    fused = (
        opts.alpha * _scaled((1 - opts.sentence) * od + opts.sentence * bd)
        + (1 - opts.alpha) * _by_max((1 - opts.sentence) * ol + opts.sentence * bl)
        + opts.document * (match - conflict)
        + opts.topic * topic
    )
    docs = [index.chunks[i].doc_id for i in ids]
    best_of: dict[str, float] = {}
    for d, s in zip(docs, fused, strict=True):
        best_of[d] = max(best_of.get(d, -9.0), float(s))
    at = dict(zip(ids, fused, strict=True))

    def covered(text_of: Callable[[int], str]) -> np.ndarray:
        return column(lambda i: sum(weights[w] for w in set(words) if w in normalize(text_of(i))) / total)

    features = np.stack(
        [
            fused,
            _scaled(od),
            _scaled(bd),
            _by_max(ol),
            _by_max(bl),
            match,
            conflict,
            topic,
            od,
            bd,
            column(lambda i: 1 / (10 + dense_rank.get(i, 999))),
            column(lambda i: 1 / (10 + lexical_rank.get(i, 999))),
            column(lambda i: np.log1p(len(index.chunks[i].text)) / 6),
            covered(lambda i: index.chunks[i].context),
            covered(lambda i: index.chunks[i].section or ""),
            np.array([best_of[d] for d in docs]),
            np.array([docs.count(d) for d in docs], float) / len(docs),
            column(lambda i: max(at.get(i - 1, 0.0), at.get(i + 1, 0.0))),
        ],
        axis=1,
    )
    labels = np.array([relevant(index.chunks[i], question) for i in ids], bool)
    return Candidates(question, features, labels)


def _loss(w: np.ndarray, data: Sequence[Candidates], l2: float) -> tuple[float, np.ndarray]:
    """Listwise softmax: minus the log of the probability mass on the candidates holding the answer."""
    loss, grad = 0.0, np.zeros_like(w)
    for c in data:
        if not c.labels.any():
            continue
        s = c.features @ w
        e = np.exp(s - s.max())
        p = e / e.sum()
        right = e * c.labels
        loss -= float(np.log(right.sum() / e.sum()))
        grad += c.features.T @ (p - right / right.sum())
    return loss + l2 * float(w @ w), grad + 2 * l2 * w


def fit(data: Sequence[Candidates], l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    start = np.zeros(data[0].features.shape[1])
    start[0] = 1.0  # from the search's own fusion
    return np.asarray(minimize(_loss, start, args=(data, l2), jac=True, method="L-BFGS-B").x)


def hits(data: Sequence[Candidates], rows: Sequence[int], weights: Callable[[int], np.ndarray]) -> tuple[float, float]:
    """hit@1 and hit@5 over the questions `rows`, ranking question n's candidates by `weights(n)`."""
    h1 = h5 = 0
    for n in rows:
        c = data[n]
        order = np.argsort(-(c.features @ weights(n)), kind="stable")
        h1 += bool(c.labels[order[:1]].any())
        h5 += bool(c.labels[order[:5]].any())
    return h1 / len(rows), h5 / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qa", type=Path, required=True, help="questions ({q, must, source, origin} lines)")
    parser.add_argument("--index", type=Path, required=True, help="an index built from the questions' corpus")
    parser.add_argument("--depth", type=int, default=50, help="candidates taken from each leg")
    parser.add_argument("--folds", type=int, default=5, help="folds by source document")
    parser.add_argument("--l2", type=float, default=1.0, help="weight of the L2 penalty")
    args = parser.parse_args()

    settings = Settings.from_env(index_dir=args.index)
    embedder = load_embedder(settings.model, settings.model_dir, settings.threads)
    index = load(args.index, embedder)
    questions = [q for q in read_questions(args.qa) if q.answerable]
    data = [candidates(index, embedder, q, args.depth) for q in questions]
    found = sum(bool(c.labels.any()) for c in data)
    print(f"{len(data)} answerable questions; the right passage is among the candidates for {found}")

    current = np.zeros(data[0].features.shape[1])
    current[0] = 1.0
    fold = [zlib.crc32((c.question.source or "").encode()) % args.folds for c in data]
    by_fold = [fit([c for c, f in zip(data, fold, strict=True) if f != k], args.l2) for k in range(args.folds)]
    groups = sorted({c.question.group(GROUPS_FIELD) for c in data})
    left_out = {g: fit([c for c in data if c.question.group(GROUPS_FIELD) != g], args.l2) for g in groups}
    everything = fit(data, args.l2)
    rankers: list[tuple[str, Callable[[int], np.ndarray]]] = [
        ("current weights", lambda n: current),
        ("linear, fitted on these questions", lambda n: everything),
        (f"linear, {args.folds} folds by document", lambda n: by_fold[fold[n]]),
        ("linear, leaving the group out", lambda n: left_out[data[n].question.group(GROUPS_FIELD)]),
    ]
    print(f"\n| ranker (hit@1 / hit@5) | all ({len(data)}) | " + " | ".join(groups) + " |")
    print("|---" * (len(groups) + 2) + "|")
    for name, weights in rankers:
        cells = []
        for g in [None, *groups]:
            rows = [n for n, c in enumerate(data) if g is None or c.question.group(GROUPS_FIELD) == g]
            h1, h5 = hits(data, rows, weights)
            cells.append(f"{h1:.3f} / {h5:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
