"""HTTP edge: create_app(settings) -> FastAPI. Routers (routes/) parse input, make one library call and
answer with a pydantic model (schemas.py); deps.py hands them the engine; errors.py answers every error."""

from policyqa.api.app import create_app

__all__ = ["create_app"]
