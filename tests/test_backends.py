"""The default encoder: ONNX int8 exported once into the cache, and sentence vectors from one pass per passage."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from policyqa import bundle
from policyqa.embed import DEFAULT_MODEL, load_embedder
from policyqa.errors import ModelError, ModelMismatchError
from policyqa.ingest.chunk import ChunkSettings, chunk_document, sentence_ranges, sentence_texts
from policyqa.ingest.loaders import parse
from policyqa.runtime import OnnxEmbedder
from policyqa.snapshot import index as index_mod
from policyqa.snapshot.refresh import refresh

from .conftest import SEED, TINY


def test_a_failed_export_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fp32 = tmp_path / "multilingual-e5-small-000000000000"
    fp32.mkdir()
    monkeypatch.setattr(bundle, "ensure_model", lambda root, source=None: fp32)

    def half(src: Path, backend: str, tmp: Path) -> None:
        (tmp / "onnx").mkdir()
        (tmp / "onnx" / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt  # killed mid-export

    monkeypatch.setattr(bundle, "_export", half)
    with pytest.raises(KeyboardInterrupt):
        bundle.ensure_backend(tmp_path, "onnx-int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", fp32.name]


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown backend"):
        bundle.ensure_backend(tmp_path, "tpu")


def test_sentence_ranges_point_at_the_sentences_of_embed_text() -> None:
    doc = parse(TINY.encode(), "tiny.txt")
    chunks = [c for c in chunk_document(doc, ChunkSettings()) if sentence_texts(c)]
    assert chunks
    for c in chunks:
        pooled = ["".join(c.embed_text[s:e] for s, e in ranges) for ranges in sentence_ranges(c)]
        assert pooled == sentence_texts(c)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def default() -> OnnxEmbedder:
    embedder = load_embedder(DEFAULT_MODEL, bundle.default_cache_root())
    assert isinstance(embedder, OnnxEmbedder)  # the light encoder (runtime.py, tests/test_runtime.py)
    return embedder


@pytest.mark.model
def test_the_default_is_int8_onnx_and_close_to_fp32(default: OnnxEmbedder) -> None:
    assert default.name == "multilingual-e5-small:onnx-int8"
    fp32 = load_embedder(DEFAULT_MODEL + ":torch", bundle.default_cache_root())
    lines = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()][:40]
    cos = (default.encode_passages(lines) * fp32.encode_passages(lines)).sum(axis=1)
    assert cos.min() >= 0.995 and cos.mean() >= 0.998
    q = (default.encode_queries(lines[:10]) * fp32.encode_queries(lines[:10])).sum(axis=1)
    assert q.min() >= 0.995


@pytest.mark.model
def test_int8_keeps_the_feed_forward_outputs_in_fp32() -> None:
    import onnx

    folder = bundle.ensure_backend(bundle.default_cache_root(), "onnx-int8")
    graph = onnx.load(str(folder / bundle.BACKENDS["onnx-int8"][1]), load_external_data=False).graph
    kept = [n for n in graph.node if n.op_type == "MatMul" and n.name.endswith(bundle.INT8_KEEP_FP32)]
    assert len([n for n in kept if "/attention/" not in n.name]) == 12  # one per layer
    assert sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node) >= 12 * 5


@pytest.mark.model
def test_the_export_is_deterministic_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = bundle.ensure_backend(bundle.default_cache_root(), "onnx-int8")
    again = bundle.ensure_backend(tmp_path, "onnx-int8")  # from nothing: convert, export, quantise
    assert _digests(again) == _digests(cached)
    assert not any(p.name.startswith(".converting-") for p in tmp_path.iterdir())
    stamp = os.stat(again / bundle.BACKENDS["onnx-int8"][1]).st_mtime_ns
    monkeypatch.setattr(bundle, "_export", lambda *a: pytest.fail("exported twice"))
    assert bundle.ensure_backend(tmp_path, "onnx-int8") == again
    assert os.stat(again / bundle.BACKENDS["onnx-int8"][1]).st_mtime_ns == stamp


@pytest.mark.model
def test_one_pass_sentence_vectors_match_a_separate_encode(default: OnnxEmbedder) -> None:
    doc = parse(SEED.read_bytes(), SEED.name)
    chunks = [c for c in chunk_document(doc, ChunkSettings()) if sentence_texts(c)][:12]
    passages, sentences = default.encode_passages_with_spans(
        [c.embed_text for c in chunks], [sentence_ranges(c) for c in chunks]
    )
    assert np.allclose((passages * default.encode_passages([c.embed_text for c in chunks])).sum(axis=1), 1, atol=1e-3)
    alone = default.encode_passages([t for c in chunks for t in sentence_texts(c)])
    pooled = np.concatenate(sentences)
    assert pooled.shape == alone.shape
    cos = (pooled * alone).sum(axis=1)
    assert cos.mean() >= 0.93 and cos.min() >= 0.85
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-4)


@pytest.mark.model
def test_an_index_built_with_one_backend_refuses_another(default: OnnxEmbedder, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.txt").write_text(TINY, encoding="utf-8")
    refresh(corpus, tmp_path / "index", default)  # sentences encoded on their own
    assert index_mod.load(tmp_path / "index", default).meta["model"] == "multilingual-e5-small:onnx-int8"
    fp32 = load_embedder(DEFAULT_MODEL + ":torch", bundle.default_cache_root())
    with pytest.raises(ModelMismatchError, match="onnx-int8"):
        index_mod.load(tmp_path / "index", fp32)
    # an index of fp32 torch, the default before, keeps its bare name and says how to keep serving it
    assert fp32.name == DEFAULT_MODEL
    refresh(corpus, tmp_path / "old", fp32)
    with pytest.raises(ModelMismatchError, match=f"POLICYQA_MODEL={DEFAULT_MODEL}:torch"):
        index_mod.load(tmp_path / "old", default)
