"""Brings a database to the schema this runstack expects, and refuses newer ones."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runstack.exceptions import SchemaVersionError, StoreError
from runstack.metadata_stores._lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
else:
    sa = LazyModule("sqlalchemy")

# The schema revision this runstack writes: the latest migration under ``migrations/versions``
# (``_schema.py`` holds the tables; a test checks the two agree).
SCHEMA_REVISION = "0010"

_MIGRATIONS = Path(__file__).parent / "migrations"


def known_revisions() -> list[str]:
    """Revision ids shipped with this runstack, oldest first (read from the file names)."""
    return sorted(p.name.split("_", 1)[0] for p in (_MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _too_new(revision: str, url_for_messages: str) -> SchemaVersionError:
    return SchemaVersionError(
        f"The metadata store at {url_for_messages} has schema revision {revision!r}, newer "
        f"than this runstack understands (latest {SCHEMA_REVISION!r}). Upgrade runstack "
        "(pip install -U runstack) to use it; nothing in the store was changed."
    )


def ensure_schema(engine: sa.Engine, url_for_messages: str) -> None:
    """Create or upgrade the schema; cheap when it is already current (no Alembic import)."""
    with engine.connect() as conn:
        revision = current_revision(conn)
        conn.rollback()
    if revision == SCHEMA_REVISION:
        return
    if revision is not None and revision not in known_revisions():
        raise _too_new(revision, url_for_messages)
    upgrade(engine, url_for_messages=url_for_messages)


def upgrade(engine: sa.Engine, revision: str = "head", *, url_for_messages: str = "") -> None:
    """Migrate to ``revision`` under a lock, so processes opening a new store at once agree."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    target = SCHEMA_REVISION if revision == "head" else revision
    with engine.connect() as conn:
        conn = conn.execution_options(runstack_write=True)  # SQLite: BEGIN IMMEDIATE locks
        dialect = conn.dialect.name
        if dialect in ("mysql", "mariadb"):
            # MySQL commits DDL implicitly, so the lock is a session lock, released below even
            # when the migration fails (the pooled connection would otherwise keep it).
            got = conn.execute(sa.text("SELECT GET_LOCK('runstack_migrate', 300)")).scalar()
            conn.commit()
            if got != 1:
                raise StoreError(
                    f"Timed out waiting for another process to migrate {url_for_messages}; "
                    "if none is running, retry."
                )
        try:
            with conn.begin():
                if dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7271830)"))
                found = current_revision(conn)
                if found is not None and found not in known_revisions():
                    raise _too_new(found, url_for_messages)
                if found != target:
                    cfg.attributes["connection"] = conn
                    if found is not None:
                        print(
                            f"runstack: upgrading the metadata store at {url_for_messages} from "
                            f"schema revision {found} to {target}; if this is interrupted, "
                            "opening the store again finishes it.",
                            file=sys.stderr,
                            flush=True,
                        )
                    try:
                        command.upgrade(cfg, revision)
                    except sa.exc.DBAPIError as e:
                        raise StoreError(
                            f"Upgrading the metadata store at {url_for_messages} from schema "
                            f"revision {found or '(none)'} to {target} failed: {e.orig}. Nothing "
                            "recorded was lost, and every migration step may be run again: "
                            "open the store again to retry. If it fails the same way, report "
                            "this message."
                        ) from e
        finally:
            if dialect in ("mysql", "mariadb"):
                conn.execute(sa.text("SELECT RELEASE_LOCK('runstack_migrate')"))
                conn.commit()
