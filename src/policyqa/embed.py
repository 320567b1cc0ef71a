"""Embedders: the protocol, the sentence-transformers implementation, the bundled default, a hashing one."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from policyqa.errors import ModelError

DEFAULT_MODEL = "multilingual-e5-small"
BATCH = 8  # texts per forward pass: the fastest of 4/8/16/32/64 for passages on 2 cores (less padding)


class Embedder(Protocol):
    name: str  # recorded in meta.json; an index built with another name is refused
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; prompts come from the model's config, or `query: `/`passage: ` for e5."""

    def __init__(self, path: str, name: str, threads: int | None = None, micro_batch: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed; run `make run` to install it") from exc
        if threads:
            torch.set_num_threads(threads)
        try:
            self._model: Any = SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise ModelError(
                f"cannot load embedding model {path!r} ({type(exc).__name__}); this machine is offline, so "
                "POLICYQA_MODEL must name a local folder or a model already in the Hugging Face cache"
            ) from exc
        self.name = name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        prompts: dict[str, str] = dict(getattr(self._model, "prompts", {}) or {})
        e5 = "e5" in name.lower()
        self.query_prompt = prompts.get("query", "query: " if e5 else "")
        self.passage_prompt = prompts.get("passage", prompts.get("document", "passage: " if e5 else ""))
        self._lock = threading.Lock()
        self._batcher: MicroBatcher | None = (
            MicroBatcher(lambda batch: self._encode(batch, self.query_prompt, BATCH)) if micro_batch else None
        )

    def _encode(self, texts: Sequence[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:  # torch intra-op threads already use the cores; serialise callers
            vectors = self._model.encode(
                list(texts),
                prompt=prompt or None,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 1 and self._batcher is not None:
            return self._batcher.encode(texts[0])[None, :]
        return self._encode(texts, self.query_prompt, BATCH)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, BATCH)


class _Ask:
    __slots__ = ("error", "lead", "text", "vector", "wake")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Event()


class MicroBatcher:
    """Encodes questions that arrive together in one forward pass.

    Leader/follower: a caller who finds the model idle encodes at once in its own thread (so one client
    pays nothing for batching); callers who arrive while a pass runs queue up, and when the pass ends the
    first of them is woken to encode all of them together. Each caller sleeps on its own event, so a pass
    wakes exactly the callers it answered plus the next leader.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 32) -> None:
        self._encode = encode
        self._max = max_batch
        self._pending: list[_Ask] = []
        self._busy = False
        self._lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        ask = _Ask(text)
        with self._lock:
            if self._busy:
                self._pending.append(ask)
            else:
                self._busy = ask.lead = True
        if not ask.lead:
            ask.wake.wait()
        if ask.lead:
            self._run(ask)
        if ask.error is not None:
            raise ask.error
        assert ask.vector is not None
        return ask.vector

    def _run(self, leader: _Ask) -> None:
        with self._lock:
            batch = [leader, *[a for a in self._pending if a is not leader]][: self._max]
            self._pending = [a for a in self._pending if a not in batch]
        try:
            vectors = self._encode([a.text for a in batch])
            for a, vector in zip(batch, vectors, strict=True):
                a.vector = vector
        except BaseException as exc:  # every caller of this pass gets the failure
            for a in batch:
                a.error = exc
        with self._lock:
            if self._pending:
                self._pending[0].lead = True
                self._pending[0].wake.set()
            else:
                self._busy = False
        for a in batch:
            a.lead = False
            a.wake.set()


class HashEmbedder:
    """Deterministic character n-gram hashing: no model, instant. For tests and smoke checks, not for quality."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, np.float32)
        chars = re.sub(r"\s+", "", text.lower())
        for n in (1, 2, 3):
            for i in range(len(chars) - n + 1):
                h = int.from_bytes(hashlib.blake2b(chars[i : i + n].encode(), digest_size=8).digest(), "little")
                vec[h % self.dim] += (1.0 if (h >> 32) & 1 else -1.0) * n
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    encode_passages = encode_queries


def load_embedder(
    model: str | None, model_dir: Path | None, threads: int | None = None, micro_batch: bool = True
) -> Embedder:
    """The embedder a name selects: the bundled default, `hash` / `hash:DIM`, or a sentence-transformers model."""
    name = (model or DEFAULT_MODEL).strip()
    if name == "hash" or name.startswith("hash:"):
        return HashEmbedder(int(name.split(":")[1]) if ":" in name else 256)
    if name == DEFAULT_MODEL:
        from policyqa.bundle import default_cache_root, ensure_model

        path = ensure_model(model_dir or default_cache_root())
        return SentenceTransformerEmbedder(str(path), DEFAULT_MODEL, threads, micro_batch)
    return SentenceTransformerEmbedder(name, name, threads, micro_batch)
