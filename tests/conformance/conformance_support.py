"""What the conformance tests share besides fixtures: the servers and a backend."""

from __future__ import annotations

import os
from dataclasses import dataclass

SERVERS = {
    "postgresql": os.environ.get(
        "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("RUNSTACK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
BACKENDS = ["sqlite", "postgresql", "mysql"]


@dataclass
class Backend:
    """One database for one test: its flavor, the settings to register it, and its URL."""

    flavor: str
    url: str

    @property
    def settings(self) -> dict[str, str]:
        if self.flavor == "sqlite":
            return {"path": self.url.removeprefix("sqlite:///")}
        return {"url": self.url}
