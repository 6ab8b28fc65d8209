"""The dashboard's ASGI app: API, pages, static files, error handling and the token gate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from runstack import __version__
from runstack.dashboard._auth import TokenGate
from runstack.dashboard._data import Source
from runstack.exceptions import (
    AmbiguousOutputError,
    ArtifactNotFoundError,
    MaterializerError,
    NotFoundError,
    RunstackError,
    StoreError,
)

log = logging.getLogger("runstack.dashboard")
STATIC = Path(__file__).parent / "static"

# Which HTTP status each runstack error family is; anything else is a bug: a 500 whose body
# says so without a traceback (the traceback goes to the server's log).
_STATUS: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (ArtifactNotFoundError, 404),
    (AmbiguousOutputError, 400),
    (MaterializerError, 409),
    (StoreError, 503),
    (NotImplementedError, 501),
    (RunstackError, 400),
]


def _status_of(e: BaseException) -> int:
    return next((code for kind, code in _STATUS if isinstance(e, kind)), 500)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api")


def error_response(request: Request, status: int, message: str) -> Response:
    if _wants_html(request):
        from runstack.dashboard._pages import error_page

        return error_page(request, status, message)
    return JSONResponse({"detail": message}, status_code=status)


async def _on_error(request: Request, e: Exception) -> Response:
    status = _status_of(e)
    if status == 500:
        log.error("Unexpected error serving %s", request.url.path, exc_info=e)
        message = (
            f"Internal error ({type(e).__name__}) while serving this page; the details are in "
            "the log of the `runstack up` process. Please report it."
        )
    else:
        message = str(e)
    return error_response(request, status, message)


async def _on_invalid(request: Request, e: Exception) -> Response:
    assert isinstance(e, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in e.errors()
    ]
    if _wants_html(request):
        return error_response(request, 422, "Bad request: " + "; ".join(problems))
    # What was sent is not echoed back (FastAPI would include each bad input value).
    detail = [
        {"loc": err.get("loc"), "msg": err.get("msg"), "type": err.get("type")}
        for err in e.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(
    source: Source, *, token: str | None = None, allowed_hosts: list[str] | None = None
) -> Any:
    """The dashboard over ``source``; with ``token``, every route needs it (see ``_auth``);
    with ``allowed_hosts``, requests naming another host are refused (DNS rebinding)."""
    from runstack.dashboard._api import router as api
    from runstack.dashboard._pages import router as pages

    app = FastAPI(
        title="runstack dashboard",
        version=__version__,
        description="Read-only REST API over a runstack stack's recorded history.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN; the dashboard works offline
        redoc_url=None,
    )
    app.state.source = source
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(Exception, _on_error)
    for kind, _code in _STATUS:
        app.add_exception_handler(kind, _on_error)
    app.include_router(api)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(404)
    async def _not_found(request: Request, e: Exception) -> Response:
        return error_response(request, 404, f"Nothing at {request.url.path}.")

    @app.exception_handler(405)
    async def _not_allowed(request: Request, e: Exception) -> Response:
        return error_response(request, 405, "The dashboard is read-only: GET requests only.")

    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    return TokenGate(app, token) if token else app
