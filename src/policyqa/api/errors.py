"""Domain errors as HTTP answers: JSON with `error` (English, for machines and logs), a Chinese `message` for
people, and whatever names the cause (`field`, `rule`). Never plain text, never a bare 500 for a known cause."""

from __future__ import annotations

import errno
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from policyqa.api.schemas import SURROGATE, UNPARSED
from policyqa.errors import (
    CorpusError,
    FilterError,
    IndexMissingError,
    NotFoundError,
    QueryError,
    QuestionError,
    StoreError,
    TooLargeError,
    UploadError,
)
from policyqa.ingest import formats
from policyqa.messages import chinese
from policyqa.search.ranking import MAX_QUERY

log = logging.getLogger("policyqa")


class Denied(Exception):
    """An admin request without the right to make it (403: admin disabled; 401: no or wrong token)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Throttled(Exception):
    """A client past its rate (429); `retry` is the seconds until it may send again."""

    def __init__(self, message: str, retry: int) -> None:
        super().__init__(message)
        self.retry = retry


def error(
    code: int, message: str, headers: dict[str, str] | None = None, zh: str | None = None, **extra: Any
) -> JSONResponse:
    """An error as JSON: `error`, `message` (Chinese) and what names the cause."""
    field = extra.get("field")
    text = zh or chinese(message, code, field if isinstance(field, str) else None)
    return JSONResponse(status_code=code, content={"error": message, "message": text, **extra}, headers=headers)


# What an OSError means to the client: the status, and what to do about it.
_OS_ERRORS = {
    errno.ENOSPC: (507, "free disk space on the server and retry"),
    errno.EDQUOT: (507, "raise the disk quota on the server and retry"),
    errno.EFBIG: (507, "the file is too large for the server's disk"),
    errno.EROFS: (507, "the corpus or index folder is read-only; the operator must make it writable"),
    errno.EIO: (507, "the server's disk failed; the operator must check it"),
    errno.ENAMETOOLONG: (422, "use a shorter file name"),
    errno.EILSEQ: (422, "use a file name in valid UTF-8"),
    errno.EACCES: (403, "the service may not write there; the operator must fix the folder's permissions"),
    errno.EPERM: (403, "the service may not write there; the operator must fix the folder's permissions"),
    errno.ENOENT: (404, "the file or folder is gone; retry, or check the corpus folder"),
}


def os_error_response(exc: OSError) -> tuple[int, str]:
    code, advice = _OS_ERRORS.get(exc.errno or 0, (409, "retry; if it persists, the operator must check the server"))
    name = errno.errorcode.get(exc.errno or 0, "OSError")
    return code, f"{exc.strerror or exc} ({name}); {advice}"


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # FastAPI's, e.g. not UTF-8
        return not_json("it cannot be decoded")
    if exc.status_code == 405 and "Allow" in headers:  # the page's static files: say what they do take
        return _not_allowed(request.method, request.url.path, headers["Allow"])
    return error(exc.status_code, str(exc.detail), headers or None)


def _os(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OSError)
    code, message = os_error_response(exc)
    log.error("%s %s: %s", request.method, request.url.path, message)
    return error(code, message)


def _bug(request: Request, exc: Exception) -> JSONResponse:
    return error(500, f"internal error ({type(exc).__name__}); the server log has the details")


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":  # its loc is ("body", <character offset>): not a field
        offset = first.get("loc", ("body", "?"))[-1]
        return not_json(f"{first.get('ctx', {}).get('error', 'JSON decode error')} at character {offset}")
    if tuple(first.get("loc", ())) == ("body",):  # no body, or JSON that is not an object
        why = "it is empty" if first.get("type") == "missing" else str(first.get("msg", "invalid body"))
        return not_json(why, "a JSON object")
    loc = [str(p) for p in first.get("loc", []) if p not in ("query", "body", "path")]
    field = ".".join(loc) or "body"
    rule = first.get("msg", "invalid value")
    rule = SURROGATE if UNPARSED in rule else rule
    return error(422, f"{field}: {rule}", field=field, rule=rule)


EXAMPLE = '{"q": "南京有几个国家级创新型产业集群？", "k": 5}'


def not_json(why: str, what: str = "valid JSON") -> JSONResponse:
    """A request body that is not the JSON object the endpoint reads: what to send instead (no `field`: the
    body as a whole is wrong)."""
    message = f"the request body is not {what} ({why}); send a JSON object such as {EXAMPLE}"
    return error(422, f"{message} with the header Content-Type: application/json", rule="a JSON object (see /docs)")


def _filter(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FilterError)
    return error(422, str(exc), field=exc.field, rule=exc.rule)


def _query(request: Request, exc: Exception) -> JSONResponse:
    return error(422, str(exc), field="q", rule=f"1-{MAX_QUERY} characters after trimming")


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StoreError):
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return error(503, str(exc), {"Retry-After": "5"} if isinstance(exc, StoreError) else None)


def _question(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QuestionError)
    return error(exc.status, str(exc), field=exc.field, rule=exc.rule)


def _throttled(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Throttled)
    return error(429, str(exc), {"Retry-After": str(exc.retry)}, retry_after=exc.retry)


def _denied(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Denied)
    return error(exc.code, str(exc), {"WWW-Authenticate": "Bearer"} if exc.code == 401 else None)


def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return error(413, f"{exc}; split the document or raise POLICYQA_MAX_UPLOAD_BYTES", field="file")


def _refused(request: Request, exc: Exception) -> JSONResponse:
    return error(422, str(exc), field="file", rule=f"a readable {formats.extensions()} file")


def _gone(request: Request, exc: Exception) -> JSONResponse:
    """The client closed the connection in the middle of its body: no one reads the answer; a line, not a
    traceback, in the log (the request's own line says 400)."""
    log.info("%s %s: the client closed the connection before its body was whole", request.method, request.url.path)
    return error(400, "the client closed the connection before sending the whole body; send it again")


def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return error(404, str(exc))


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PARAM = re.compile(r"\\\{[^}]+\\\}")  # a {parameter} of a path template, once re.escape has run over it


def no_endpoint(paths: dict[str, dict[str, Any]], method: str, path: str) -> JSONResponse:
    """The answer when no route takes `method` on `path`: 405 naming the methods that path takes (in the `Allow`
    header too), or 404 when no path of the API (`paths` of its OpenAPI schema, as /docs shows it) is that one."""
    allowed: set[str] = set()
    for template, operations in paths.items():
        if re.fullmatch(_PARAM.sub("[^/]+", re.escape(template)), path):
            allowed |= {m.upper() for m in operations}
    if not allowed:
        return error(404, f"no endpoint {path}; the API is described at /docs")
    return _not_allowed(method, path, ", ".join(m for m in METHODS if m in allowed))


def _not_allowed(method: str, path: str, allow: str) -> JSONResponse:
    message = f"{method} is not allowed on {path}; allowed methods: {allow} (the API is described at /docs)"
    return error(405, message, {"Allow": allow})


def install(app: FastAPI) -> None:
    """Answer every error as JSON (the more specific exception class wins)."""
    handlers: list[tuple[type[Exception], Any]] = [
        (StarletteHTTPException, _http),
        (OSError, _os),
        (Exception, _bug),
        (RequestValidationError, _invalid),
        (FilterError, _filter),
        (QueryError, _query),
        (IndexMissingError, _unavailable),
        (CorpusError, _unavailable),
        (StoreError, _unavailable),  # the store is down or slow: retry later, the service recovers with it
        (Denied, _denied),
        (TooLargeError, _too_large),
        (UploadError, _refused),
        (NotFoundError, _not_found),
        (QuestionError, _question),
        (Throttled, _throttled),
        (ClientDisconnect, _gone),
    ]
    for kind, handler in handlers:
        app.add_exception_handler(kind, handler)
