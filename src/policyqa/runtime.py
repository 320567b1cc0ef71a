"""The bundled model's ONNX export run by onnxruntime and tokenizers directly: the light encoder (no torch,
transformers or sentence-transformers in the process).

It does what sentence-transformers does with the same folder: the prompt from its config, the same tokenizer
(tokenizer.json through the `tokenizers` package that transformers wraps), truncation to the model's maximum
length, mean pooling over the attention mask and L2 normalisation (tests/test_runtime.py holds it to
cosine >= 0.9999 and the same token ids). Its name and dimension are read from the folder's files, and the
session is opened on the first encode: a build or a start that finds nothing to do never loads the model.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.embed import ModelThread, Spans, pool_sentences
from policyqa.errors import ModelError


@dataclass(frozen=True)
class Tuning:
    """ONNX Runtime's session options and how passages are batched (bench/light.py measures them)."""

    threads: int = 0  # intra-op threads; 0: ONNX Runtime's default (one per core)
    spinning: bool = False  # threads spin after a run; on two cores they steal the search's time (bundle.py)
    arena: bool = True  # keep freed buffers for the next run (faster; holds the largest batch's memory)
    mem_pattern: bool = True  # plan each shape's buffers once
    tokens_per_pass: int = 2048  # padded tokens per forward pass at most (a long passage alone may pass it)
    rows_per_pass: int = 8  # texts per forward pass at most: the fewer, the less padding, the more passes


@dataclass(frozen=True)
class Loaded:
    session: Any  # onnxruntime.InferenceSession
    inputs: frozenset[str]


def _read(path: Path) -> dict[str, Any]:
    try:
        out: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path} ({exc}); delete {path.parent} to export the model again") from exc
    return out


def folder_dim(folder: Path) -> int:
    """The vectors' dimension, from the pooling config (or the transformer's hidden size)."""
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        conf = _read(pooling)
        dim = conf.get("embedding_dimension") or conf.get("word_embedding_dimension")
        if dim:
            return int(dim)
    return int(_read(folder / "config.json")["hidden_size"])


def mean_pooled(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each row's mean token vector over its attention mask, normalised (sentence-transformers' Pooling and
    Normalize)."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(pooled, dtype=np.float32)


def _check_mean_pooling(folder: Path) -> None:
    pooling = folder / "1_Pooling" / "config.json"
    conf = _read(pooling) if pooling.is_file() else {}
    if conf.get("pooling_mode") != "mean" and not conf.get("pooling_mode_mean_tokens"):
        raise ModelError(f"{folder} does not pool by the mean of its tokens; only such a model runs without torch")


class OnnxEmbedder:
    """An exported sentence-transformers folder (BERT-like, mean pooling, normalised) on ONNX Runtime.

    Every run goes through one ModelThread, as the torch encoder's do: ONNX Runtime's own thread pool does
    not need it (a session may be run from any thread), but the thread keeps questions ahead of an update's
    passages and encodes the questions that queued up while a pass ran in one pass (micro-batching)."""

    def __init__(
        self, folder: Path, file_name: str, name: str, micro_batch: bool = True, tuning: Tuning | None = None
    ) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.folder, self.file = folder, folder / file_name
        if not self.file.is_file():
            raise ModelError(f"{self.file} is missing; delete {folder} to export the model again")
        _check_mean_pooling(folder)
        self.name = name
        self.dim = folder_dim(folder)
        prompts = _read(folder / "config_sentence_transformers.json").get("prompts") or {}
        e5 = "e5" in name.lower()
        self.query_prompt: str = prompts.get("query", "query: " if e5 else "")
        self.passage_prompt: str = prompts.get("passage", prompts.get("document", "passage: " if e5 else ""))
        config = _read(folder / "config.json")
        tokenizer_config = _read(folder / "tokenizer_config.json")
        self.max_length = int(min(tokenizer_config.get("model_max_length", 512), config["max_position_embeddings"]))
        self.pad_token = str(tokenizer_config.get("pad_token", "<pad>"))
        self.tuning = tuning or Tuning()
        self.one_pass = False  # index sentences from their passage's forward pass (see `use_one_pass`)
        self._thread = ModelThread(micro_batch)
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._pad = 0
        self._loaded: Loaded | None = None

    # --- loading, on first use ---

    @property
    def tokenizer(self) -> Any:
        """tokenizer.json through `tokenizers`: the tokenizer transformers' fast tokenizer wraps."""
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tok.no_padding()  # each pass is padded to its own longest text (_run)
                tok.enable_truncation(self.max_length)
                self._pad = tok.token_to_id(self.pad_token) or 0
                self._tokenizer = tok
            return self._tokenizer

    def _session(self) -> Loaded:
        """On the model thread."""
        if self._loaded is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.tuning.spinning else "0")
            options.intra_op_num_threads = self.tuning.threads
            options.enable_cpu_mem_arena = self.tuning.arena
            options.enable_mem_pattern = self.tuning.mem_pattern
            try:
                session = onnxruntime.InferenceSession(str(self.file), options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelError(f"cannot load {self.file} ({exc}); delete {self.folder} to export it again") from exc
            self._loaded = Loaded(session, frozenset(i.name for i in session.get_inputs()))
        return self._loaded

    def warm(self) -> None:
        """Load the tokenizer and the session now, in the background (a service about to answer questions)."""
        self._thread.submit(lambda: (self.tokenizer, self._session()))

    # --- encoding ---

    def _tokens(self, texts: Sequence[str], prompt: str) -> list[Any]:
        encodings: list[Any] = self.tokenizer.encode_batch([prompt + t for t in texts])
        return encodings

    def _run(self, encodings: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """On the model thread: one forward pass; the token vectors and the attention mask."""
        loaded = self._session()
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad, np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = e.attention_mask
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in loaded.inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        tokens: np.ndarray = loaded.session.run(None, feeds)[0]
        return tokens.astype(np.float32, copy=False), mask

    def _pooled(self, encodings: list[Any]) -> np.ndarray:
        """On the model thread: mean over the attention mask, normalised."""
        return mean_pooled(*self._run(encodings))

    def _queries(self, texts: list[str]) -> np.ndarray:
        return self._pooled(self._tokens(texts, self.query_prompt))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if len(texts) == 1:
            return self._thread.question(texts[0], self._queries)[None, :]
        result: np.ndarray = self._thread.call(functools.partial(self._queries, list(texts)))
        return result

    def passes(self, encodings: list[Any]) -> list[list[int]]:
        """The rows of each forward pass: longest first by tokens, so each pass pads little, and as many rows as
        the tuning allows (searches slip in between the passes of a large update)."""
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out: list[list[int]] = []
        for i in order:
            width = len(encodings[out[-1][0]].ids) if out else 0
            rows = len(out[-1]) if out else 0
            if out and rows < self.tuning.rows_per_pass and (rows + 1) * width <= self.tuning.tokens_per_pass:
                out[-1].append(i)
            else:
                out.append([i])
        return out

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        encodings = self._tokens(texts, self.passage_prompt)
        for rows in self.passes(encodings):
            out[rows] = self._thread.call(functools.partial(self._pooled, [encodings[i] for i in rows]))
        return out

    def use_one_pass(self) -> None:
        """Pool sentence vectors from their passage's forward pass when indexing. Its vectors differ from a
        separate encode's, so the name an index records says so."""
        self.one_pass = True
        self.name += "+one-pass"

    def _spans(self, encodings: list[Any], spans: Spans) -> list[tuple[np.ndarray, np.ndarray]]:
        tokens, mask = self._run(encodings)
        width = tokens.shape[1]
        offsets = np.zeros((len(encodings), width, 2), np.int64)
        for row, e in enumerate(encodings):
            offsets[row, : len(e.offsets)] = e.offsets
        passages = mean_pooled(tokens, mask)
        return pool_sentences(tokens, mask.astype(bool), offsets, len(self.passage_prompt), passages, spans)

    def encode_passages_with_spans(self, texts: Sequence[str], spans: Spans) -> tuple[np.ndarray, list[np.ndarray]]:
        """One forward pass per passage gives its vector and its sentences' (longest first)."""
        out = np.zeros((len(texts), self.dim), np.float32)
        sentences: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        encodings = self._tokens(texts, self.passage_prompt)
        for rows in self.passes(encodings):
            part = [encodings[i] for i in rows]
            done = self._thread.call(functools.partial(self._spans, part, [spans[i] for i in rows]))
            for i, (passage, vectors) in zip(rows, done, strict=True):
                out[i], sentences[i] = passage, vectors
        return out, sentences
