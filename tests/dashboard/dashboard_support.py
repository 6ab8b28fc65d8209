"""What the dashboard tests share besides fixtures: the servers, an ASGI client, ``runstack up``.

A module of its own (not conftest): test files import from it, and ``conftest`` names a
different module in every test folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from runstack.dashboard import create_app, open_source
from runstack.dashboard._data import Source
from runstack.repository import Repository

POSTGRESQL = os.environ.get(
    "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def client_for(repo: Repository, **kwargs: Any) -> tuple[TestClient, Source]:
    source = open_source(repo)
    return TestClient(create_app(source, **kwargs), raise_server_exceptions=False), source


def db_file(repo: Repository) -> Path:
    return repo.config_dir / "metadata.db"


class Server:
    """``runstack up`` running as a subprocess; ``lines`` is what it printed before serving."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        import subprocess
        import sys

        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runstack.cli", "up", "--port", "0", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise AssertionError(f"runstack up exited: {self.lines}")
        self.url = next(w for line in self.lines for w in line.split() if w.startswith("http"))
        self.base = self.url.split("?")[0].rstrip("/")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; the exit status and what it printed after serving."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out
