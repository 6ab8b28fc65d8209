"""Helpers for tests that need a real SQLite store to misbehave."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def refuse_completed_record(db: Path, step_name: str) -> None:
    """Make the store refuse, with 'refused by the test', to record ``step_name`` completed (a
    finished step updates its ``running`` row; a cache hit inserts a row)."""
    conn = sqlite3.connect(db)
    for event in ("INSERT", "UPDATE"):
        conn.execute(
            f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON steps "
            f"WHEN NEW.name = '{step_name}' AND NEW.status = 'completed' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    conn.commit()
    conn.close()
