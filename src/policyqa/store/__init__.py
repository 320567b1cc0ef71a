"""Where a snapshot's vectors and BM25 are kept: one module per engine (faiss.py, qdrant.py) behind the
protocols of base.py, chosen by name (POLICYQA_STORE).

Adding an engine is adding its module and its name to ENGINES. The module defines `connect(url, api_key)`
returning a base.Store; a base.SegmentStore too when a snapshot may be a list of segments (then an update
writes only what changed; otherwise every update writes a whole snapshot). It may use the shared helpers
(base.py, lexical.py, vectors.py) and its own, never another engine's module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from policyqa.errors import StoreError
from policyqa.store.base import Store

if TYPE_CHECKING:
    from policyqa.config import Settings

ENGINES = ("faiss", "qdrant")  # each the module store/<name>.py
DEFAULT = "faiss"


def connect(name: str = DEFAULT, url: str = "", api_key: str = "") -> Store:
    """The engine called `name` (the module store/<name>.py); `url` and `api_key` name its server, when it has
    one (without a URL an engine keeps its data in the snapshot folder)."""
    if name not in ENGINES:
        raise StoreError(f"no store {name!r}; set POLICYQA_STORE to {_names()}")
    try:
        module = importlib.import_module(f"policyqa.store.{name}")
    except ModuleNotFoundError as exc:
        raise StoreError(f"the {name} store needs the package {exc.name}: pip install it") from exc
    store: Store = module.connect(url, api_key)
    return store


def _names() -> str:
    return " or ".join([", ".join(ENGINES[:-1]), ENGINES[-1]] if len(ENGINES) > 1 else ENGINES)


def default_store() -> Store:
    return connect(DEFAULT)


def configured(settings: Settings) -> Store:
    """The store the settings name (POLICYQA_STORE), with its server (POLICYQA_STORE_URL, _API_KEY)."""
    return connect(settings.store, settings.store_url, settings.store_api_key)
