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


def test_questions_go_before_queued_work() -> None:
    order: list[str] = []
    gate = threading.Event()
    worker = ModelThread()
    blocker = threading.Thread(target=worker.call, args=(lambda: gate.wait(5),))
    blocker.start()
    time.sleep(0.1)
    slices = [threading.Thread(target=worker.call, args=(lambda n=n: order.append(f"slice{n}"),)) for n in (1, 2)]
    for t in slices:
        t.start()
    time.sleep(0.1)
    asker = threading.Thread(
        target=worker.question, args=("q", lambda ts: order.append("question") or np.ones((len(ts), 1)))
    )
    asker.start()
    time.sleep(0.1)
    gate.set()
    for t in [blocker, *slices, asker]:
        t.join(5)
    assert order[0] == "question" and sorted(order[1:]) == ["slice1", "slice2"]


def test_passages_come_back_in_their_order() -> None:
    from policyqa.embed import SentenceTransformerEmbedder

    class Fake(SentenceTransformerEmbedder):
        def __init__(self) -> None:  # no model: only the slicing and reordering are under test
            self._thread = ModelThread()
            self.dim = 1
            self.passage_prompt = ""

        def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
            return np.array([[float(len(t))] for t in texts], np.float32)

    texts = ["x" * n for n in (3, 40, 1, 17, 5) * 9]
    out = Fake().encode_passages(texts)
    assert out[:, 0].tolist() == [float(len(t)) for t in texts]


def test_work_is_not_starved_by_a_stream_of_questions() -> None:
    worker = ModelThread()
    stop = threading.Event()

    def slow(texts: list[str]) -> np.ndarray:
        time.sleep(0.01)
        return np.ones((len(texts), 1))

    def asker() -> None:
        while not stop.is_set():
            worker.question("q", slow)

    askers = [threading.Thread(target=asker) for _ in range(4)]
    for t in askers:
        t.start()
    try:
        done = [worker.call(lambda n=n: n) for n in range(5)]  # each waits for at most one batch of questions
    finally:
        stop.set()
        for t in askers:
            t.join(5)
    assert done == [0, 1, 2, 3, 4]
