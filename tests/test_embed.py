import threading
import time

import numpy as np
import pytest

from policyqa.embed import HashEmbedder, MicroBatcher, load_embedder


def test_micro_batcher_groups_concurrent_callers_and_keeps_order() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        gate.wait(5)  # the first pass is slow, so the others queue up behind it
        return np.array([[float(len(t))] for t in texts])

    batcher = MicroBatcher(encode)
    results: dict[str, float] = {}

    def ask(text: str) -> None:
        results[text] = float(batcher.encode(text)[0])

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    time.sleep(0.2)
    others = [threading.Thread(target=ask, args=("b" * n,)) for n in range(2, 7)]
    for t in others:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in [first, *others]:
        t.join(5)
    assert results == {"a": 1.0, **{"b" * n: float(n) for n in range(2, 7)}}
    assert calls[0] == ["a"] and sorted(calls[1], key=len) == ["b" * n for n in range(2, 7)]


def test_micro_batcher_passes_errors_to_every_caller() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model failed")

    batcher = MicroBatcher(encode)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.encode("x")
    with pytest.raises(RuntimeError):
        batcher.encode("y")  # the worker survives a failure


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    emb = load_embedder("hash:32", None)
    assert isinstance(emb, HashEmbedder) and emb.dim == 32
    a, b = emb.encode_queries(["南京产业集群"]), HashEmbedder(32).encode_passages(["南京产业集群"])
    assert np.allclose(a, b) and np.isclose(np.linalg.norm(a[0]), 1.0)
