"""``runstack up``: binding, the URL it prints, Ctrl-C, and the token on non-loopback binds."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it too)
import pytest
from dashboard_support import client_for

from runstack.dashboard._auth import COOKIE, ENV_TOKEN
from runstack.dashboard._serve import choose_token, is_loopback
from runstack.exceptions import ConfigError
from runstack.repository import Repository

TOKEN = "a-test-token-that-is-long-enough"
ROUTES = [
    "/",
    "/pipelines/train_pipeline",
    "/runs/r-1",
    "/api/pipelines",
    "/api/runs/r-1",
    "/api/openapi.json",
    "/static/app.js",
    "/static/style.css",
    "/no/such/page",
]


def test_loopback_serves_without_a_token_and_stops_on_ctrl_c(serve: Any) -> None:
    server = serve()
    assert server.url.startswith("http://127.0.0.1:") and "token" not in server.url
    assert "read-only" in server.lines[0]
    r = httpx.get(server.base + "/api/pipelines")
    assert r.status_code == 200 and r.json()[0]["name"] == "train_pipeline"
    assert "train_pipeline" in httpx.get(server.base + "/").text
    # A request naming another host (a rebinding attack's page) is refused.
    rebound = httpx.get(server.base + "/api/pipelines", headers={"Host": "evil.example"})
    assert rebound.status_code == 400 and "train_pipeline" not in rebound.text
    port = server.base.rsplit(":", 1)[1]
    assert httpx.get(f"http://localhost:{port}/api/pipelines").status_code == 200
    code, out = server.stop()
    assert code == 0, out
    assert "Dashboard stopped." in out and "Traceback" not in out


def test_any_other_bind_needs_the_generated_token_on_every_route(serve: Any) -> None:
    server = serve("--host", "0.0.0.0")
    assert "?token=" in server.url, server.lines
    token = server.url.split("?token=")[1]
    assert sum(token in line for line in server.lines) == 1  # printed once
    for route in ROUTES:
        r = httpx.get(server.base + route)  # via 127.0.0.1 to a 0.0.0.0 bind
        assert r.status_code == 401, route
        assert token not in r.text
    wrong = httpx.get(server.base + "/api/pipelines", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = httpx.get(server.base + "/api/pipelines", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    with httpx.Client() as browser:  # the printed URL logs in: a cookie, then no token in URLs
        login = browser.get(server.url, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert browser.get(server.base + "/runs/r-1").status_code == 200
    assert server.stop()[0] == 0


def test_a_given_token_is_used_and_not_printed(serve: Any) -> None:
    server = serve("--host", "0.0.0.0", env={ENV_TOKEN: TOKEN})
    assert not any(TOKEN in line for line in server.lines)
    assert httpx.get(server.base + "/api/pipelines").status_code == 401
    r = httpx.get(server.base + "/api/pipelines", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    server.stop()


def test_a_taken_port_says_so(serve: Any, sqlite_repo: Repository) -> None:
    import subprocess
    import sys

    server = serve()
    port = server.base.rsplit(":", 1)[1]
    taken = subprocess.run(
        [sys.executable, "-m", "runstack.cli", "up", "--port", port],
        cwd=sqlite_repo.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert taken.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in taken.stderr and "--port" in taken.stderr
    server.stop()


def test_token_cookie_login_in_process(sqlite_repo: Repository) -> None:
    client, source = client_for(sqlite_repo, token=TOKEN)
    assert client.get("/api/runs/r-1").status_code == 401
    assert client.get(f"/runs/r-1?token={TOKEN[:-1]}x").status_code == 401
    login = client.get(f"/runs/r-1?step=train&token={TOKEN}", follow_redirects=False)
    assert login.status_code == 303
    assert login.headers["location"] == "/runs/r-1?step=train"
    client.cookies.set(COOKIE, TOKEN)
    assert client.get("/api/runs/r-1").status_code == 200
    client.cookies.clear()
    client.cookies.set(COOKIE, TOKEN + "x")
    assert client.get("/api/runs/r-1").status_code == 401
    source.store.dispose()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("myhost.example", False),
    ],
)
def test_which_binds_need_a_token(
    host: str, loopback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    assert is_loopback(host) is loopback
    token, generated = choose_token(host, None)
    assert (token is None) is loopback and generated is not loopback
    with pytest.raises(ConfigError, match="at least 16 characters"):
        choose_token(host, "short")
