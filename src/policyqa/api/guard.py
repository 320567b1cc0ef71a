"""What the HTTP edge does for every request before a route sees it: body-size limits, security headers,
and (in the server) a deadline for the request headers. Plain ASGI, so it also covers static files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from policyqa.messages import chinese

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The page loads its own script and style sheet only: no inline script, no other origin.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# /docs and /redoc load Swagger UI and ReDoc from this service (api/docs.py), never from another origin; both
# set inline styles, and ReDoc searches in a worker it makes from a blob.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


# What a multipart upload adds around the file itself (boundaries, part headers, its name), allowed on top of
# POLICYQA_MAX_UPLOAD_BYTES so that a file of exactly the limit gets in; the file itself is checked exactly.
MULTIPART_ALLOWANCE = 64 * 1024


class BodyTooLarge(HTTPException):
    """A request body over the route's limit (raised while the body is read, so it is never held); the message
    names the limit as configured and the setting that raises it."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def _json(status: int, message: str) -> tuple[Message, Message]:
    body = json.dumps({"error": message, "message": chinese(message, status)}, ensure_ascii=False).encode("utf-8")
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


class HttpOnly:
    """An ASGI middleware acting on HTTP requests (`http`); lifespan and other scopes pass through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over the bytes `limit_for(scope)` gives, with the error message it gives beside
    them: by Content-Length at once, or while the body streams in."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], tuple[int, str]]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, refusal = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            for message in _json(413, BodyTooLarge(refusal).detail):
                await send(message)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(refusal)
            return message

        await self.app(scope, limited, send)


class BodyTooSlow(HTTPException):
    """A request body still arriving when its time is up (a trickled body holds a worker for ever)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request body took longer than {seconds:g} s to arrive (POLICYQA_BODY_SECONDS); send it again"
        )


class BodyDeadline(HttpOnly):
    """Give a request's whole body `seconds` to arrive, counted from its headers: past that the route's read
    of it raises BodyTooSlow (408 JSON), however slowly the bytes kept coming."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds

        async def timed() -> Message:
            try:
                return await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BodyTooSlow(self.seconds) from None

        await self.app(scope, timed, send)


# What a plain-text error of Starlette's own (a file's Range answers) says, as the API says it
_PLAIN = {
    400: "the request is malformed ({detail}); for a part of a file send Range: bytes=START-END, or leave it out",
    416: "the requested range is outside the file ({detail}); ask for bytes within it, or leave Range out",
}


class JsonErrors(HttpOnly):
    """Answer as JSON the errors that Starlette writes as plain text before any handler of ours sees them
    (FileResponse's 400 and 416 to a bad Range header): no answer of the service is plain text."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        held: Message | None = None
        text = b""

        async def as_json(message: Message) -> None:
            nonlocal held, text
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                plain = headers.get(b"content-type", b"").startswith(b"text/plain")
                if message["status"] >= 400 and plain:
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                text += message.get("body", b"")
                if not message.get("more_body"):
                    await _rewrite(held, text, send)
                return
            await send(message)

        await self.app(scope, receive, as_json)


async def _rewrite(start: Message, text: bytes, send: Send) -> None:
    status = start["status"]
    kept = [(n, v) for n, v in start.get("headers", []) if n.lower() not in (b"content-type", b"content-length")]
    detail = text.decode("utf-8", "replace").strip()
    size = dict(kept).get(b"content-range", b"").decode().removeprefix("bytes */")
    detail = f"the file is {size} bytes" if status == 416 and size else detail or "no detail"
    template = _PLAIN.get(status, "{detail}")
    new_start, new_body = _json(status, template.format(detail=detail))
    new_start["headers"] = [*kept, *new_start["headers"]]
    await send(new_start)
    await send(new_body)


class SecurityHeaders(HttpOnly):
    """Security headers on every response (routes, errors and static files alike)."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        docs = scope.get("path", "") in ("/docs", "/redoc")
        policy = (DOCS_POLICY if docs else PAGE_POLICY).encode()

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in [(b"content-security-policy", policy), *HEADERS] if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing a connection whose request headers take over `seconds` to arrive
    (slowloris): uvicorn itself only times out idle keep-alive connections."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderDeadline(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline
