"""Rebuild every learned file from the shipped training data, deterministically: `python -m policyqa.learn`
(or `make learn`) reads data/stard-train.jsonl and writes data/stard-bank.jsonl (its questions with the
articles that answer them) and data/wording.json (the everyday-to-statute word table). Needs no model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from policyqa.ingest.bank import DATA, stard_bank
from policyqa.ingest.segment import Segmenter, normalize_query
from policyqa.search.wording import train

TRAIN = DATA / "stard-train.jsonl"


def read_rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bank_lines(rows: list[dict[str, object]]) -> str:
    """stard-bank.jsonl: one {"q", "law", "article"} line per question and article it cites."""
    lines = (json.dumps({"q": k.q, "law": k.law, "article": k.article}, ensure_ascii=False) for k in stard_bank(rows))
    return "".join(f"{line}\n" for line in lines)


def wording_table(rows: list[dict[str, object]]) -> str:
    """wording.json: IBM Model 1 over (question words, words of the articles it cites), jieba's words as a
    question is cut (10 EM iterations, question words of >= 2 questions, 8 statute words a row, t >= 0.02)."""
    segmenter = Segmenter()
    pairs = [
        (
            segmenter.query_words(normalize_query(str(r["q"]))),
            [w for a in r["articles"] for w in segmenter.query_words(normalize_query(a["text"]))],  # type: ignore[attr-defined]
        )
        for r in rows
    ]
    return train(pairs, iterations=10, min_count=2, keep=8, floor=0.02).dumps()


def learned(train_file: Path = TRAIN) -> dict[str, str]:
    """Each learned file's name and text, as the training data gives them."""
    rows = read_rows(train_file)
    return {"stard-bank.jsonl": bank_lines(rows), "wording.json": wording_table(rows)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m policyqa.learn",
        description="Rebuild the learned files from the shipped training data. Example: python -m policyqa.learn",
    )
    parser.add_argument("--train", type=Path, default=TRAIN, help="training questions (default: the shipped ones)")
    parser.add_argument("--out", type=Path, default=DATA, help="folder to write into (default: the package's data)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in learned(args.train).items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(text.encode('utf-8'))} bytes")


if __name__ == "__main__":
    main()
