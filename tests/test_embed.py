import threading
import time

import numpy as np
import pytest

from policyqa.embed import HashEmbedder, ModelThread, load_embedder


def test_model_thread_batches_waiting_questions_and_keeps_order() -> None:
    calls: list[list[str]] = []
    gate = threading.Event()
    thread_names: set[str] = set()

    class Model:
        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            thread_names.add(threading.current_thread().name)
            gate.wait(5)  # the first pass is slow, so the others queue up behind it
            return np.array([[float(len(t))] for t in texts])

    model = Model()
    worker = ModelThread()
    results: dict[str, float] = {}

    def ask(text: str) -> None:  # a fresh bound method each time, as the embedder passes it
        results[text] = float(worker.question(text, model.encode)[0])

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
    assert thread_names == {"policyqa-model"}  # torch is only ever called from one thread
    assert worker.call(lambda: threading.current_thread().name) == "policyqa-model"


def test_model_thread_without_batching_encodes_one_by_one() -> None:
    calls: list[int] = []
    worker = ModelThread(batch_questions=False)
    out = [worker.question(t, lambda ts: calls.append(len(ts)) or np.ones((len(ts), 1))) for t in "abc"]
    assert len(out) == 3 and calls == [1, 1, 1]


def test_model_thread_passes_errors_to_callers_and_survives() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model failed")

    worker = ModelThread()
    with pytest.raises(RuntimeError, match="model failed"):
        worker.question("x", encode)
    with pytest.raises(ZeroDivisionError):
        worker.call(lambda: 1 / 0)
    assert worker.call(lambda: 42) == 42


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    emb = load_embedder("hash:32", None)
    assert isinstance(emb, HashEmbedder) and emb.dim == 32
    a, b = emb.encode_queries(["南京产业集群"]), HashEmbedder(32).encode_passages(["南京产业集群"])
    assert np.allclose(a, b) and np.isclose(np.linalg.norm(a[0]), 1.0)
