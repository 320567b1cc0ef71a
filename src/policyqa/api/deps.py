"""What routes depend on: the service's typed state, the engine once it serves, and the admin check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from policyqa.api.errors import Denied
from policyqa.config import Settings
from policyqa.engine import Engine
from policyqa.errors import IndexMissingError

if TYPE_CHECKING:
    from policyqa.api.observe import Metrics


@dataclass
class AppState:
    """The service as routes see it: set once by the start thread (engine, or the error that stopped it)."""

    settings: Settings
    engine: Engine | None = None
    error: str | None = None
    metrics: Metrics | None = None  # what /metrics shows (observe.py), made by create_app


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.policyqa
    return state


State = Annotated[AppState, Depends(app_state)]


def started_engine(state: State) -> Engine:
    """The engine, once the service has one (its index may still be building)."""
    if state.engine is None:
        raise IndexMissingError(state.error or "the service is still starting; retry in a few seconds")
    return state.engine


def serving_engine(state: State) -> Engine:
    """The engine serving searches, once its index is loaded."""
    eng = state.engine
    if eng is None or eng.index is None:
        raise IndexMissingError(state.error or "the index is still loading; retry in a few seconds")
    return eng


StartedEngine = Annotated[Engine, Depends(started_engine)]
ServingEngine = Annotated[Engine, Depends(serving_engine)]


def admin(request: Request, state: State) -> None:
    """Dependency of every mutating endpoint: `Authorization: Bearer <POLICYQA_ADMIN_TOKEN>`."""
    token = state.settings.admin_token
    if not token:
        raise Denied(403, "admin endpoints are disabled; set POLICYQA_ADMIN_TOKEN for the service and restart it")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
    if scheme.lower() != "bearer" or not ok:
        raise Denied(401, "missing or wrong admin token; send the header Authorization: Bearer <token>")


Admin = Depends(admin)
