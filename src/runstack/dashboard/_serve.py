"""Opening a stack's history read-only and serving the dashboard over HTTP (``runstack up``)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from runstack.dashboard._auth import ENV_TOKEN, new_token
from runstack.dashboard._data import Source
from runstack.exceptions import ConfigError

if TYPE_CHECKING:
    from runstack.repository import Repository

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8237


def open_source(repo: Repository, stack_key: str | None = None) -> Source:
    """The history of ``stack_key`` (default: the active stack), its metadata store opened
    read-only; nothing is created, migrated or marked."""
    from runstack.metadata_stores._read_only import open_read_only
    from runstack.stack._builtin_flavors import SQLiteFlavor
    from runstack.stack._flavors import validate_settings

    key = stack_key or repo.active_stack_key
    config = repo.get_stack_config(key)
    component = repo.get_component("metadata_store", config.metadata_store)
    flavor = validate_settings("metadata_store", component.flavor, component.settings)
    sqlite = isinstance(flavor, SQLiteFlavor)
    url = flavor.url(repo.config_dir) if sqlite else flavor.resolved_url()  # type: ignore[attr-defined]
    store = open_read_only(url)
    artifacts = repo._build("artifact_store", config.artifact_store)
    return Source(store, artifacts, key)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def choose_token(host: str, given: str | None) -> tuple[str | None, bool]:
    """The token to require and whether it was generated here (so is printed once).

    Loopback needs none unless one is given; any other address always needs one."""
    token = given or os.environ.get(ENV_TOKEN) or None
    if token is not None:
        if len(token) < 16:
            raise ConfigError(
                "The dashboard token must be at least 16 characters: a short token can be "
                "guessed. Leave --token out to have one generated."
            )
        return token, False
    if is_loopback(host):
        return None, False
    return new_token(), True


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or an error that says what to do."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"Cannot bind the dashboard to {host!r}: {e.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {e.strerror}. Another program (or another "
            "`runstack up`) may be using the port; choose another with --port."
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = host
    if host in ("0.0.0.0", "::", "[::]"):
        shown = "127.0.0.1"  # all interfaces: this machine's own address works everywhere
    elif ":" in host and not host.startswith("["):
        shown = f"[{host}]"
    return f"http://{shown}:{port}/"


def serve(
    source: Source,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted (Ctrl-C); the URL (with a generated token) is printed once."""
    import uvicorn

    from runstack.dashboard._app import create_app

    token, generated = choose_token(host, token)
    sock = bind(host, port)
    url = url_of(sock, host)
    # A page on another site can point its own host name at 127.0.0.1 (DNS rebinding) and
    # read a loopback dashboard without a token; such requests name that host, not ours.
    loopback_names = ["127.0.0.1", "localhost", "::1", "[::1]", host]
    app = create_app(
        source, token=token, allowed_hosts=loopback_names if is_loopback(host) else None
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    where = "" if is_loopback(host) else f" on {host}; whoever can reach it needs the token"
    echo(f"runstack dashboard for stack {source.stack!r}, read-only{where}:")
    if token is None:
        echo(f"  {url}")
    elif generated:
        echo(f"  {url}?token={token}")
        echo(f"  (a new token; set {ENV_TOKEN} or --token to choose one)")
    else:
        echo(f"  {url}  (open it with ?token=<your token>)")
    echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        with contextlib.suppress(OSError):
            sock.close()
        source.store.dispose()
    echo("Dashboard stopped.")
