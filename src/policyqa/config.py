"""Settings: one object, read from POLICYQA_* environment variables and command-line flags at the edges."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from policyqa.ingest.limits import Limits

# Settings renamed when the store became a choice of engines: the old name is still read, with a warning
RENAMED = {"POLICYQA_STORE_URL": "POLICYQA_QDRANT_URL", "POLICYQA_STORE_API_KEY": "POLICYQA_QDRANT_API_KEY"}


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = "multilingual-e5-small"  # the bundled default, `hash`, or a sentence-transformers name/path
    model_dir: Path | None = None  # where the bundled model is converted to (default: XDG cache)
    admin_token: str = ""
    max_upload_bytes: int = 20 * 1024 * 1024
    threads: int | None = None
    micro_batch: bool = True  # encode questions that arrive together in one forward pass
    watch_seconds: float = 5.0  # how often the service looks for files dropped into the corpus (0: never)
    rebuild_for_model: bool = False  # rebuild an index made with another model instead of refusing it
    limits: Limits = field(default_factory=Limits)  # what parsing one untrusted file may cost
    max_body_bytes: int = 16 * 1024  # request bodies other than uploads (search JSON)
    header_seconds: float = 10.0  # a client must send its request headers within this time
    body_seconds: float = 60.0  # and its request body within this time after them (0: no limit)
    store: str = "faiss"  # where vectors and BM25 are kept: faiss (files of the snapshot) or qdrant
    store_url: str = ""  # the store's server or cluster (without one: its data in the snapshot folder)
    store_api_key: str = ""
    delta_from: int = 20_000  # passages: from this size on, an update writes only what changed (snapshot/update.py)
    feedback_lines: int = 5000  # readers' marks kept in <corpus>/.policyqa/feedback.jsonl (the oldest go first)
    feedback_bytes: int = 2 * 1024 * 1024  # and the bytes that file may have
    feedback_per_minute: int = 30  # marks one client may send a minute (429 past it)

    def __post_init__(self) -> None:
        # one limit on a file's size, whether it is uploaded or dropped into the corpus folder
        if self.limits.file_bytes != self.max_upload_bytes:
            object.__setattr__(self, "limits", replace(self.limits, file_bytes=self.max_upload_bytes))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = _renamed(dict(os.environ if env is None else env))
        settings = cls(
            corpus_dir=Path(env.get("POLICYQA_CORPUS_DIR") or cls.corpus_dir),
            index_dir=Path(env.get("POLICYQA_INDEX_DIR") or cls.index_dir),
            model=env.get("POLICYQA_MODEL") or cls.model,
            model_dir=Path(env["POLICYQA_MODEL_DIR"]) if env.get("POLICYQA_MODEL_DIR") else None,
            admin_token=env.get("POLICYQA_ADMIN_TOKEN", ""),
            max_upload_bytes=int(env.get("POLICYQA_MAX_UPLOAD_BYTES") or cls.max_upload_bytes),
            threads=int(env["POLICYQA_THREADS"]) if env.get("POLICYQA_THREADS") else None,
            micro_batch=env.get("POLICYQA_MICRO_BATCH", "1") not in ("0", "false", "no"),
            watch_seconds=float(env.get("POLICYQA_WATCH_SECONDS") or cls.watch_seconds),
            rebuild_for_model=env.get("POLICYQA_REBUILD_FOR_MODEL", "0") not in ("0", "false", "no", ""),
            limits=Limits(
                memory_bytes=int(env.get("POLICYQA_PARSE_MEMORY_BYTES") or Limits.memory_bytes),
                seconds=float(env.get("POLICYQA_PARSE_SECONDS") or Limits.seconds),
                inflated_bytes=int(env.get("POLICYQA_MAX_INFLATED_BYTES") or Limits.inflated_bytes),
                pdf_pages=int(env.get("POLICYQA_MAX_PDF_PAGES") or Limits.pdf_pages),
                html_depth=int(env.get("POLICYQA_MAX_HTML_DEPTH") or Limits.html_depth),
                nodes=int(env.get("POLICYQA_MAX_NODES") or Limits.nodes),
                ocr_pages=int(env.get("POLICYQA_MAX_OCR_PAGES") or Limits.ocr_pages),
                ocr_seconds=float(env.get("POLICYQA_OCR_SECONDS") or Limits.ocr_seconds),
                ocr_memory_bytes=int(env.get("POLICYQA_OCR_MEMORY_BYTES") or Limits.ocr_memory_bytes),
                image_pixels=int(env.get("POLICYQA_MAX_IMAGE_PIXELS") or Limits.image_pixels),
            ),
            max_body_bytes=int(env.get("POLICYQA_MAX_BODY_BYTES") or cls.max_body_bytes),
            header_seconds=float(env.get("POLICYQA_HEADER_SECONDS") or cls.header_seconds),
            body_seconds=float(env.get("POLICYQA_BODY_SECONDS") or cls.body_seconds),
            store=(env.get("POLICYQA_STORE") or cls.store).strip().lower(),
            store_url=env.get("POLICYQA_STORE_URL", ""),
            store_api_key=env.get("POLICYQA_STORE_API_KEY", ""),
            delta_from=int(env.get("POLICYQA_DELTA_FROM") or cls.delta_from),
            feedback_lines=int(env.get("POLICYQA_FEEDBACK_LINES") or cls.feedback_lines),
            feedback_bytes=int(env.get("POLICYQA_FEEDBACK_BYTES") or cls.feedback_bytes),
            feedback_per_minute=int(env.get("POLICYQA_FEEDBACK_PER_MINUTE") or cls.feedback_per_minute),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def _renamed(env: dict[str, str]) -> dict[str, str]:
    """The environment with each renamed setting under its new name: an old name set while the new one is not
    is read, and one line on stderr says which name to use instead."""
    old = {new: former for new, former in RENAMED.items() if env.get(former) and not env.get(new)}
    if old:
        logging.getLogger("policyqa").warning(
            "%s deprecated: set %s instead",
            " and ".join(old.values()) + (" is" if len(old) == 1 else " are"),
            " and ".join(old),
        )
    return env | {new: env[former] for new, former in old.items()}
