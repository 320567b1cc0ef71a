"""Fit the no-answer decision (src/policyqa/search/noanswer.py) and write src/policyqa/data/noanswer.json.

The features are what the product's own search computes (Confidence.signals), on the dev set: the 350
answerable questions of ../shared/devset/qa.jsonl, its 11 unanswerable ones and our 100 in
corpus/eval/devset-unanswerable.jsonl, over an index of ../shared/devset/docs. L2-penalised logistic
regression (Newton's method from zero: deterministic), 8 folds grouped by document (an answerable question
by its source, an unanswerable one by its nearest document, chit-chat four to a group), the threshold the
lowest whose flags have precision >= 0.90 while flagging <= 4% of answerable questions, chosen inside each
training fold (nested folds) and shipped as the median of those choices. Held-out sets (the seed and the
multi-document set) are scored with the final coefficients, never fitted on.

    python bench/noanswer_fit.py --index /tmp/dev-index [--held corpus/eval/seed-qa.jsonl=/tmp/seed-index ...]

The index is built from ../shared/devset/docs when the folder does not exist. --check compares the
coefficients with the shipped file instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.config import Settings
from policyqa.embed import load_embedder
from policyqa.search.noanswer import MODEL
from policyqa.search.ranking import search
from policyqa.snapshot.index import load

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT.parent / "shared" / "devset"
OURS = ROOT / "corpus" / "eval" / "devset-unanswerable.jsonl"
FEATURES = (
    "coverage",
    "missing_share",
    "conflict",
    "dense_top",
    "legs_same_doc",
    "qty_miss_passage",
    "named_absent",
    "chat_hinge_top",
    "match",
)
ENCODER = "multilingual-e5-small"
L2, K, INNER = 1.0, 8, 5
PRECISION, MAX_FLAGGED = 0.90, 0.04
# The dev set's own 11 unanswerable questions carry no nearest document; its README names them.
GZ_INSURANCE = "gz-广州市2026年度城乡居民基本医疗保险集中参保缴费工作的通告.html"
OLD_NEAR = {
    "深圳市2026年度城乡居民基本医疗保险个人缴费标准是多少？": GZ_INSURANCE,
    "广州市2027年度城乡居民医保个人缴费标准是多少？": GZ_INSURANCE,
    "万里街道办事处2026年的“三公”经费预算是多少？": "gov-上海市普陀区人民政府万里街道办事处2025年部门预算.pdf",
    "上海市普陀区长征镇2025年部门预算收入是多少？": "gov-上海市普陀区人民政府万里街道办事处2025年部门预算.pdf",
    "广州市海珠区2026年来穗人员随迁子女积分入学招生计划有多少个？": "gz-天河区2026年来穗人员随迁子女积分入学指引.html",
    "北京市的老年人坐公交地铁有什么优待政策？": "gz-广州市老年人优待办法(广州市人民政府令第179号).html",
    "杭州市长期护理保险个人缴费费率是多少？": "gz-广州市长期护理保险试行办法(穗医保规字〔2024〕1号).html",
    "发明专利权的保护期限是多少年？": "law-著作权法(2020-11-11).md",
    "疫情期间北京市对暂停举办的展会有什么补贴政策？": "ncp-5efb2c35",
    "普陀区司法局2026年人民调解员的人均补贴标准是多少？": "gov-上海市普陀区司法局2026年部门预算.pdf",
    "申请计算机软件著作权登记需要提交哪些材料？": "law-著作权法(2020-11-11).md",
}


def document_group(name: str) -> str:
    """The fold group of a question: its document, NCPPolicies files by their `ncp-<id>` (the repository keeps
    only that part of their names)."""
    return "doc:" + ("-".join(name.split("-")[:2]) if name.startswith("ncp-") else name)


def harvest(qa: list[Path], index_dir: Path) -> list[dict[str, Any]]:
    """Each question's label, fold group and the decision's features, from the product's search."""
    embedder = load_embedder(ENCODER, Settings.from_env().model_dir)
    index = load(index_dir, embedder)
    rows, chat = [], 0
    for path in qa:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            signals = dict(search(index, embedder, item["q"]).confidence.signals)  # type: ignore[union-attr]
            if not signals:  # no Chinese: the simple rule decides
                continue
            answerable = bool(item["must"])
            if answerable:
                group = document_group(item["source"])
            elif item.get("kind") == "chitchat":
                group, chat = f"chitchat-{chat // 4}", chat + 1
            else:
                group = document_group(item.get("near") or OLD_NEAR.get(item["q"], item["q"]))
            kind = item.get("kind") or ("answerable" if answerable else "the dev set's own")
            rows.append({"q": item["q"], "answerable": answerable, "group": group, "kind": kind, "features": signals})
    return rows


def folds(groups: list[str], k: int) -> np.ndarray:
    """Each group to one of k folds, largest groups first, each to the fold holding fewest questions."""
    size = Counter(groups)
    load_of = [0] * k
    where: dict[str, int] = {}
    for g in sorted(size, key=lambda g: (-size[g], g)):
        f = min(range(k), key=lambda i: (load_of[i], i))
        where[g] = f
        load_of[f] += size[g]
    return np.array([where[g] for g in groups])


def fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression on standardised X by Newton's method; weights on the raw features."""
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd < 1e-9] = 1.0
    Z = np.c_[np.ones(len(X)), (X - mu) / sd]
    w = np.zeros(Z.shape[1])
    pen = np.full(Z.shape[1], L2)
    pen[0] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(Z @ w, -40, 40)))
        H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(H, Z.T @ (p - y) + pen * w)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    raw = w[1:] / sd
    return raw, float(w[0] - (raw * mu).sum())


def prob(X: np.ndarray, raw: np.ndarray, b: float) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-np.clip(X @ raw + b, -40, 40))))


def choose(p: np.ndarray, y: np.ndarray) -> float:
    """The lowest threshold whose flags have precision >= PRECISION and flag <= MAX_FLAGGED of the answerable."""
    neg = max(int((y == 0).sum()), 1)
    both, rate = [], []
    for t in sorted(set(np.round(p, 12))):
        flag = p >= t
        tp, fp = int((flag & (y == 1)).sum()), int((flag & (y == 0)).sum())
        if fp / neg <= MAX_FLAGGED:
            rate.append(t)
            if (tp / (tp + fp) if tp + fp else 1.0) >= PRECISION:
                both.append(t)
    return float(min(both or rate or [1.0]))


def scores(flag: np.ndarray, y: np.ndarray) -> str:
    tp, fp = int((flag & (y == 1)).sum()), int((flag & (y == 0)).sum())
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    return f"precision {precision:.3f}, recall {tp / max(pos, 1):.3f} of {pos}, answerable flagged {fp}/{neg}"


def crossval(X: np.ndarray, y: np.ndarray, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities, and each question's threshold chosen inside its outer training folds."""
    fold = folds(groups, K)
    oof, nested = np.zeros(len(y)), np.zeros(len(y))
    for k in range(K):
        tr, te = fold != k, fold == k
        raw, b = fit(X[tr], y[tr])
        oof[te] = prob(X[te], raw, b)
        inner = folds([g for g, t in zip(groups, tr, strict=True) if t], INNER)
        p_in = np.zeros(int(tr.sum()))
        for j in range(INNER):
            raw_j, b_j = fit(X[tr][inner != j], y[tr][inner != j])
            p_in[inner == j] = prob(X[tr][inner == j], raw_j, b_j)
        nested[te] = choose(p_in, y[tr])
    return oof, nested


def ensure_index(index: Path, corpus: Path) -> None:
    if not index.exists():
        cmd = [sys.executable, "-m", "policyqa", "build", "--corpus", str(corpus), "--index", str(index)]
        subprocess.run(cmd, check=True, env={**os.environ, "POLICYQA_MODEL": ENCODER})


def dev_rows(index: Path, cache: Path | None) -> list[dict[str, Any]]:
    """The dev questions' labels and features, from the cache when given and present."""
    if cache is not None and cache.exists():
        rows: list[dict[str, Any]] = json.loads(cache.read_text(encoding="utf-8"))
        return rows
    ensure_index(index, DEVSET / "docs")
    rows = harvest([DEVSET / "qa.jsonl", OURS], index)
    if cache is not None:
        cache.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="the dev index (built when missing)")
    ap.add_argument("--held", action="append", default=[], help="QA=INDEX: a held-out set scored, not fitted")
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    ap.add_argument("--rows", type=Path, help="the dev questions' features: read if it exists, else written")
    ap.add_argument("--features", help="comma-separated features to try instead of FEATURES (nothing is written)")
    args = ap.parse_args()
    names = tuple(args.features.split(",")) if args.features else FEATURES
    rows = dev_rows(args.index, args.rows)
    X = np.array([[r["features"][f] for f in names] for r in rows])
    y = np.array([0.0 if r["answerable"] else 1.0 for r in rows])
    oof, nested = crossval(X, y, [r["group"] for r in rows])
    # The threshold each outer fold chose on its own training folds, their median: one pooled choice over
    # the out-of-fold probabilities moves with how the documents happen to fall into folds.
    threshold = float(np.median(nested))
    raw, b = fit(X, y)
    print(f"dev, cross-validated, each fold's own threshold: {scores(oof >= nested, y)}")
    print(f"dev, cross-validated, at the shipped threshold {threshold:.4f}: {scores(oof >= threshold, y)}")
    for kind in sorted({r["kind"] for r in rows if not r["answerable"]}):
        of = np.array([r["kind"] == kind for r in rows])
        print(f"  {kind}: flagged {int((oof[of] >= nested[of]).sum())} of {int(of.sum())} (each fold's threshold)")
    print(f"  the folds' thresholds: {sorted({round(float(t), 4) for t in nested})}")
    for held in args.held:
        qa, index = held.split("=", 1)
        hr = harvest([Path(qa)], Path(index))
        hx = np.array([[r["features"][f] for f in names] for r in hr])
        hy = np.array([0.0 if r["answerable"] else 1.0 for r in hr])
        print(f"{qa} (Chinese questions, held out): {scores(prob(hx, raw, b) >= threshold, hy)}")
    if args.features:
        return
    model = {"encoder": ENCODER, "features": list(FEATURES), "weights": [round(float(w), 10) for w in raw]}
    model |= {"intercept": round(b, 10), "threshold": round(threshold, 10)}
    text = json.dumps(model, indent=1) + "\n"
    if args.check:
        shipped = json.loads(MODEL.read_text(encoding="utf-8"))
        diff = max(abs(a - c) for a, c in zip(shipped["weights"], model["weights"], strict=True))  # type: ignore[arg-type]
        print(f"largest weight difference from the shipped model: {diff:.2e}")
    else:
        MODEL.write_text(text, encoding="utf-8")
        print(f"wrote {MODEL}")


if __name__ == "__main__":
    main()
