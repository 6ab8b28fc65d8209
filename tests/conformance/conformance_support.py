"""What the conformance tests share besides fixtures: the servers and a backend."""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlalchemy as sa

SERVERS = {
    "postgresql": os.environ.get(
        "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("RUNSTACK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
# The same MySQL/MariaDB server through the C driver (a plain mysql:// URL's default when
# installed): backend "mysqlclient" is flavor "mysql" on a ``mysql+mysqldb://`` URL.
SERVERS["mysqlclient"] = (
    sa.make_url(SERVERS["mysql"]).set(drivername="mysql+mysqldb").render_as_string(False)
)
BACKENDS = ["sqlite", "postgresql", "mysql", "mysqlclient"]
#: The flavor each backend registers (the name of the server whose databases it makes).
FLAVORS = {"mysqlclient": "mysql"}


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


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take a store back to an older schema revision, as Alembic's downgrade does (a test
    then checks that opening it upgrades it again)."""
    from alembic import command
    from alembic.config import Config

    from runstack.metadata_stores._migrate import _MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
