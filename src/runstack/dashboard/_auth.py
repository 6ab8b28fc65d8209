"""The token gate: with a token set, every route (pages, API, static files) needs it.

A request carries the token as a cookie (set by opening any page with ``?token=...``, which
then redirects to the same page without it, so the token does not stay in the address bar
or history), or as ``Authorization: Bearer <token>`` (scripts). Tokens are compared in
constant time. The cookie is HttpOnly (scripts cannot read it) and SameSite=Strict (other
sites' pages cannot make the browser send it).
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "runstack_dashboard_token"
ENV_TOKEN = "RUNSTACK_DASHBOARD_TOKEN"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _same(given: str | None, token: bytes) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class TokenGate:
    """ASGI middleware answering 401 to any request without the token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [v for k, v in query if k == "token"]
        if given:
            if _same(given[-1], self.token):
                await self._login(scope, [(k, v) for k, v in query if k != "token"], send)
                return
        else:
            auth = headers.get("authorization", "")
            bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            if _same(bearer, self.token) or _same(
                _cookie(headers.get("cookie", ""), COOKIE), self.token
            ):
                await self.app(scope, receive, send)
                return
        await _deny(scope, send)

    async def _login(self, scope: dict[str, Any], rest: list[tuple[str, str]], send: Any) -> None:
        """Set the cookie and send the browser to the same page without the token."""
        location = scope.get("root_path", "") + scope["path"]
        if rest:
            location += "?" + urlencode(rest)
        cookie = f"{COOKIE}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


_MESSAGE = (
    "This dashboard needs its access token. Open the URL that `runstack up` printed (it ends "
    "in ?token=...), or send the header 'Authorization: Bearer <token>'. The token is the "
    f"one given with --token or {ENV_TOKEN}."
)


async def _deny(scope: dict[str, Any], send: Any) -> None:
    if scope["path"].startswith("/api"):
        body, kind = json.dumps({"detail": _MESSAGE}).encode(), b"application/json"
    else:
        body = (
            "<!doctype html><meta charset=utf-8><title>runstack: token needed</title>"
            f"<h1>Token needed</h1><p>{_MESSAGE}</p>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
