"""Where a snapshot's vectors and BM25 are kept: one module per engine (faiss.py, qdrant.py) behind the
protocols of base.py, chosen by name (POLICYQA_STORE). An engine module defines `connect(url, api_key)`;
adding one is adding its module."""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

from policyqa.errors import StoreError
from policyqa.store.base import Store

if TYPE_CHECKING:
    from policyqa.config import Settings

DEFAULT = "faiss"


def connect(name: str = DEFAULT, url: str = "", api_key: str = "") -> Store:
    """The engine called `name` (the module store/<name>.py); `url` and `api_key` name its server, when it has
    one (without a URL an engine keeps its data in the snapshot folder)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name == "base":
        raise StoreError(f"no store {name!r}; set POLICYQA_STORE to faiss or qdrant")
    try:
        module = importlib.import_module(f"policyqa.store.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"policyqa.store.{name}":
            raise StoreError(f"no store {name!r}; set POLICYQA_STORE to faiss or qdrant") from None
        raise StoreError(f"the {name} store needs the package {exc.name}: pip install it") from exc
    store: Store = module.connect(url, api_key)
    return store


def default_store() -> Store:
    return connect(DEFAULT)


def configured(settings: Settings) -> Store:
    """The store the settings name (POLICYQA_STORE), with its server (POLICYQA_QDRANT_URL, _API_KEY)."""
    return connect(settings.store, settings.qdrant_url, settings.qdrant_api_key)
