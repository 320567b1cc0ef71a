"""The light encoder (runtime.py): the bundled ONNX int8 file on onnxruntime and tokenizers, without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from policyqa import bundle
from policyqa.embed import DEFAULT_MODEL, SentenceTransformerEmbedder, load_embedder
from policyqa.runtime import OnnxEmbedder, Tuning

from .conftest import ROOT, SEED, TINY, TINY2

HEAVY = ("torch", "transformers", "sentence_transformers")


def texts() -> list[str]:
    """Three dozen Chinese texts: lines of the seed, a document longer than the model reads, and edge cases."""
    lines = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()][:30]
    return [
        *lines,
        SEED.read_text(encoding="utf-8")[:3000],  # past 512 tokens: truncated
        "  前后有空格的问题？  ",
        "ＡＢＣ全角字符１２３与繁體字",
        "第一条\t为了规范\n数据中心建设",
        "高淳园的产业引导基金规模多大？",
        "a",
    ]


@pytest.fixture(scope="module")
def folder() -> Path:
    return bundle.ensure_backend(bundle.default_cache_root(), "onnx-int8")


@pytest.fixture(scope="module")
def light(folder: Path) -> OnnxEmbedder:
    embedder = load_embedder(DEFAULT_MODEL, bundle.default_cache_root())
    assert isinstance(embedder, OnnxEmbedder)  # the default model runs on the light encoder
    return embedder


@pytest.fixture(scope="module")
def st(folder: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(str(folder), "st", load=bundle.backend_kwargs("onnx-int8"))


@pytest.mark.model
def test_token_ids_are_sentence_transformers_ids(light: OnnxEmbedder, st: SentenceTransformerEmbedder) -> None:
    model = st._model
    for text in texts():
        for prompt in (light.query_prompt, light.passage_prompt):
            want = model.tokenizer(prompt + text, truncation="longest_first", max_length=model.max_seq_length)
            assert light.tokenizer.encode(prompt + text).ids == want["input_ids"], text[:20]
    assert light.max_length == model.max_seq_length == 512


@pytest.mark.model
def test_vectors_are_sentence_transformers_vectors(light: OnnxEmbedder, st: SentenceTransformerEmbedder) -> None:
    """One text a pass (as a question is encoded), and a few questions in one pass (micro-batching): the same
    vectors as sentence-transformers' on the same file, to cosine 0.9999."""
    ours = [light.encode_queries([t])[0] for t in texts()] + [light.encode_passages([t])[0] for t in texts()]
    theirs = [st.encode_queries([t])[0] for t in texts()] + [st.encode_passages([t])[0] for t in texts()]
    cos = (np.stack(ours) * np.stack(theirs)).sum(axis=1)
    assert cos.min() >= 0.9999
    assert np.allclose(np.linalg.norm(np.stack(ours), axis=1), 1.0, atol=1e-5)
    questions = texts()[30:35]
    together = (light.encode_queries(questions) * st.encode_queries(questions)).sum(axis=1)
    assert together.min() >= 0.9999


@pytest.mark.model
def test_passes_go_longest_first_within_the_token_budget(folder: Path) -> None:
    embedder = OnnxEmbedder(folder, "onnx/model_int8.onnx", "m", tuning=Tuning(tokens_per_pass=256))
    encodings = embedder.tokenizer.encode_batch(texts())
    passes = embedder.passes(encodings)
    assert sorted(i for rows in passes for i in rows) == list(range(len(texts())))
    widths = [len(encodings[rows[0]].ids) for rows in passes]
    assert widths == sorted(widths, reverse=True)
    assert all(len(rows) == 1 or len(rows) * widths[n] <= 256 for n, rows in enumerate(passes))
    assert passes[0] == [30] and len(passes) < len(texts())  # the long document alone; short texts together


def test_name_and_dimension_come_from_the_folder_without_loading(tmp_path: Path) -> None:
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model_int8.onnx").write_bytes(b"not a model: never opened")
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"embedding_dimension": 384, "pooling_mode": "mean"}')
    (tmp_path / "config.json").write_text('{"hidden_size": 384, "max_position_embeddings": 512}')
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 512, "pad_token": "<pad>"}')
    prompts = {"prompts": {"query": "query: ", "passage": "passage: "}}
    (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    embedder = OnnxEmbedder(tmp_path, "onnx/model_int8.onnx", "multilingual-e5-small:onnx-int8")
    assert (embedder.name, embedder.dim, embedder.query_prompt) == ("multilingual-e5-small:onnx-int8", 384, "query: ")


def _run(code: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SEARCH_THEN_SERVE = """
import json, sys, time
from policyqa.cli import main
assert main(["search", "稳岗补贴最高多少", "-k", "1", "--json"]) == 0
after_search = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
from fastapi.testclient import TestClient
from policyqa.api import create_app
from policyqa.config import Settings
with TestClient(create_app(Settings.from_env())) as client:
    while client.get("/api/health").status_code != 200:
        time.sleep(0.2)
    for q in ("稳岗补贴最高多少", "数据中心的电能利用效率"):
        answer = client.get("/api/search", params={{"q": q, "k": 1}})
        assert answer.status_code == 200 and answer.json()["results"], answer.text
print(json.dumps([after_search, sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})]))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A tiny corpus indexed with the default model by `policyqa build`, and the environment that names it."""
    tmp = tmp_path_factory.mktemp("light")
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "tiny.txt").write_text(TINY, encoding="utf-8")
    (corpus / "notice.txt").write_text(TINY2, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "POLICYQA_CORPUS_DIR": str(corpus),
        "POLICYQA_INDEX_DIR": str(tmp / "index"),
        "POLICYQA_WATCH_SECONDS": "0",
    }
    env.pop("POLICYQA_MODEL", None)  # the default model
    build = subprocess.run(
        [sys.executable, "-m", "policyqa", "build"], env=env, capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr
    meta = json.loads(next((tmp / "index").glob("snapshots/*/meta.json")).read_text(encoding="utf-8"))
    assert meta["model"] == "multilingual-e5-small:onnx-int8"
    return tmp, env


@pytest.mark.model
def test_search_and_the_service_never_import_torch(built: tuple[Path, dict[str, str]]) -> None:
    tmp, env = built
    printed = _run(SEARCH_THEN_SERVE.format(heavy=set(HEAVY)), tmp, env).splitlines()
    after_search, after_service = json.loads(printed[-1])
    assert after_search == [] and after_service == []


BUILD = """
import json, sys
from policyqa.cli import main
code = main(["build"])
print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in {loaded!r})]))
"""
LOADED = {*HEAVY, "onnxruntime", "tokenizers"}


@pytest.mark.model
def test_a_build_with_nothing_to_do_loads_no_model(built: tuple[Path, dict[str, str]]) -> None:
    tmp, env = built
    printed = _run(BUILD.format(loaded=LOADED), tmp, env).splitlines()
    assert printed[0].startswith("index already up to date")
    assert json.loads(printed[-1]) == [0, []]


@pytest.mark.model
def test_an_index_of_another_model_is_refused_without_loading_the_model(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    env = built[1]
    other = {**env, "POLICYQA_INDEX_DIR": str(tmp_path / "index"), "POLICYQA_MODEL": "hash:64"}
    made = subprocess.run([sys.executable, "-m", "policyqa", "build"], env=other, capture_output=True, timeout=600)
    assert made.returncode == 0, made.stderr
    other.pop("POLICYQA_MODEL")
    done = subprocess.run(
        [sys.executable, "-c", BUILD.format(loaded=LOADED)], env=other, capture_output=True, text=True, timeout=600
    )
    assert "hash-64" in done.stderr and "--rebuild-for-model" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [1, []]  # exit 1, nothing loaded


def test_warming_up_loads_the_model_and_the_chit_chat_list_in_the_background() -> None:
    from policyqa.embed import HashEmbedder
    from policyqa.engine import warm_up
    from policyqa.search.noanswer import offtopic_questions, offtopic_vectors

    class Lazy(HashEmbedder):
        name = "multilingual-e5-small:lazy"  # the encoder the no-answer model was fitted on

        def __init__(self) -> None:
            super().__init__(32)
            self.name = Lazy.name
            self.warmed = threading.Event()
            self.asked: list[int] = []

        def warm(self) -> None:
            self.warmed.set()

        def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
            self.asked.append(len(texts))
            return super().encode_queries(texts)

    embedder = Lazy()
    warm_up(embedder)
    assert embedder.warmed.is_set()
    for thread in threading.enumerate():
        if thread.name == "policyqa-warm":
            thread.join(10)
    assert embedder.asked == [len(offtopic_questions())]
    offtopic_vectors(embedder)  # the first question finds them ready
    assert embedder.asked == [len(offtopic_questions())]
    warm_up(HashEmbedder(32))  # an encoder loaded when made: nothing to do
