"""Row <-> record mapping for the metadata store's queries."""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from runstack.metadata_stores._engine import json_dumps, json_loads
from runstack.models import ArtifactLink, ArtifactRecord, ExecutionStatus, RunRecord, StepRecord

UTC = timezone.utc
T = TypeVar("T")


def naive(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is None:
        return dt
    return dt.astimezone(UTC).replace(tzinfo=None)


def aware(value: datetime | str | None) -> datetime | None:
    """A stored time as an aware UTC datetime. The record queries take time columns as text
    (``_columns._time``; the SQL text reads them raw): SQLite's text is parsed straight to
    aware here, because parsing it naive and then ``.replace(tzinfo=...)`` cost 1.4 us per
    value, 50,000 values in a 10,000-run scan; server drivers hand back datetimes whatever the
    column's declared type."""
    if isinstance(value, str):
        try:
            return _from_iso(value + "+00:00")
        except ValueError:  # not as SQLAlchemy writes it (an offset already): its parser
            from sqlalchemy.engine.processors import str_to_datetime

            return str_to_datetime(value).replace(tzinfo=UTC)
    return None if value is None else value.replace(tzinfo=UTC)


_from_iso = datetime.fromisoformat


@functools.lru_cache(maxsize=4096)
def _decoded(text: str) -> Any:
    return json_loads(text)


def _json(value: Any) -> Any:
    """A JSON column's value; some drivers (psycopg) decode JSON themselves."""
    return _decoded(value) if isinstance(value, str) else value


# Each record's columns, in the order its decoder (below) reads them, as ``alias.column``
# (r: runs, p: pipelines, s: steps, a: artifacts). The SQL text of the queries run through the
# DB-API (``_fetch``, below) and the Core columns of the cold queries (``_columns.py``) are
# both made from these. Every query using them is in the conformance suite, so a name out of
# step with _schema.py fails a test on every backend.
RUN_NAMES = (
    "r.id", "r.pipeline_id", "p.name", "r.name", "r.status", "r.start_time", "r.end_time",
    "r.error", "r.owner_host", "r.owner_pid", "r.heartbeat_at", "r.owner_ns", "r.note",
)  # fmt: skip
STEP_NAMES = (
    "s.id", "s.run_id", "s.name", "s.entrypoint_name", "s.position", "s.status",
    "s.parameters", "s.cache_key", "s.cached_from_step_id", "s.start_time", "s.end_time",
    "s.error", "s.traceback", "s.parent_step_names", "s.role", "s.cache_components",
    "s.logs_uri", "s.execution",
)  # fmt: skip
# Listings (many steps at once) leave these out, big and rarely read (StepView loads them
# on use).
UNLISTED_STEP_NAMES = frozenset({"s.traceback", "s.cache_components", "s.execution"})
ARTIFACT_NAMES = (
    "a.id", "a.uri", "a.data_type", "a.materializer", "a.producer_step_id", "a.content_hash",
    "a.storage_format", "a.inline_data", "a.files",
)  # fmt: skip

RUN_SQL = f"SELECT {', '.join(RUN_NAMES)} FROM runs r JOIN pipelines p ON p.id = r.pipeline_id"
STEP_SQL = ", ".join(STEP_NAMES)
LISTED_STEP_SQL = ", ".join("NULL" if n in UNLISTED_STEP_NAMES else n for n in STEP_NAMES)
ARTIFACT_SQL = ", ".join(ARTIFACT_NAMES)
# What reading a value kept inline needs of its artifact, in the order ``readable_artifact``
# reads them: a history scan reads one per run, and the other columns (the URI above all)
# were a third of its query's time. Views load the rest when asked (``StepGroup.artifact_of``).
READABLE_ARTIFACT_SQL = "a.id, a.data_type, a.materializer, a.content_hash, a.inline_data"


# Every column of the tables the runner writes, in table order, with how SQLite holds its
# values where that is not as given (integers, text): ":time" as SQLAlchemy's SQLite DATETIME
# text (``sqlite_time``), ":json" as JSON text (``json_dumps``), ":blob" as a BLOB. The SQLite
# writes (``_inserts.py``) are made from these, without SQLAlchemy; ``_schema.py`` declares
# the same tables for SQLAlchemy, and a test checks that the two agree column by column and
# that each encoder stores what SQLAlchemy's bind processor would.
TABLE_COLUMNS = {
    "pipelines": ("id", "name", "created_at:time"),
    "runs": (
        "id", "pipeline_id", "name", "status", "start_time:time", "end_time:time", "error",
        "owner_host", "owner_pid", "heartbeat_at:time", "owner_ns", "note",
    ),
    "steps": (
        "id", "run_id", "name", "entrypoint_name", "position", "role", "status",
        "parameters:json", "parent_step_names:json", "cache_key", "cache_components:json",
        "cached_from_step_id", "start_time:time", "end_time:time", "error", "traceback",
        "logs_uri", "execution:json",
    ),
    "artifacts": (
        "id", "uri", "data_type", "materializer", "producer_step_id", "content_hash",
        "created_at:time", "storage_format", "inline_data:blob", "files:json",
    ),
    "step_inputs": ("step_id", "name", "position", "artifact_id"),
    "step_outputs": ("step_id", "name", "position", "artifact_id"),
    "step_parameters": ("step_id", "name", "run_id", "step_name", "value"),
    "run_tags": ("run_id", "key", "value"),
}  # fmt: skip
# Tables whose "id" the database assigns (an INSERT leaves it out and returns it).
NUMBERED = frozenset(name for name, cols in TABLE_COLUMNS.items() if cols[0] == "id")

_TIME_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def sqlite_time(value: datetime | date | None) -> str | None:
    """A time as an SQLite column holds it: SQLAlchemy's DATETIME text, made of the fields as
    given (like SQLAlchemy, it does not look at tzinfo: callers store ``naive`` UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _TIME_TEXT % (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )
    if isinstance(value, date):
        return _TIME_TEXT % (value.year, value.month, value.day, 0, 0, 0, 0)
    raise TypeError(f"A time column takes a datetime, got {type(value).__name__} {value!r}.")


def _blob(value: Any) -> Any:
    return None if value is None else sqlite3.Binary(value)


# How a value of each kind of column is handed to sqlite3 (None: as it is). A JSON column's
# None is JSON's null, as SQLAlchemy writes it; a column left out of a row is SQL NULL.
SQLITE_ENCODERS: dict[str, Callable[[Any], Any] | None] = {
    "": None,
    "time": sqlite_time,
    "json": json_dumps,
    "blob": _blob,
}


def sqlite_columns(table: str) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """``(column, encoder)`` of each column of ``table``, in order (see ``SQLITE_ENCODERS``)."""
    out = []
    for spec in TABLE_COLUMNS[table]:
        name, _, kind = spec.partition(":")
        out.append((name, SQLITE_ENCODERS[kind]))
    return out


def marks(n: int) -> str:
    """``?, ?, ...``: the placeholders of an IN list of ``n`` values."""
    return ", ".join("?" * n)


def links_sql(table: str, steps: int | None) -> str:
    """The SQL text reading input or output links (by ``table``) with their artifacts
    (``link_record`` reads a row), in step then declared order: of ``steps`` steps given by
    id, or (None) of every step of a pipeline given by pipeline id and step name."""
    sql = (
        f"SELECT l.step_id, l.name, l.position, {ARTIFACT_SQL} FROM {table} l "
        "JOIN artifacts a ON a.id = l.artifact_id"
    )
    if steps is not None:
        sql += f" WHERE l.step_id IN ({marks(steps)})"
    else:
        sql += (
            " JOIN steps s ON s.id = l.step_id JOIN runs r ON r.id = s.run_id"
            " WHERE r.pipeline_id = ? AND s.name = ?"
        )
    return sql + " ORDER BY l.step_id, l.position"


_STATUS = {s.value: s for s in ExecutionStatus}  # ExecutionStatus(value) is slow per row


def _maker(cls: type[T], names: tuple[str, ...] | None = None) -> Callable[..., T]:
    """A function building ``cls`` (a frozen, slotted dataclass without ``__post_init__``)
    from the values of ``names`` in order (default: every field; any other is left unset, an
    AttributeError if read). Equal to ``cls(*values)`` for every field, in a sixth of its
    time: records are built per row of listings of thousands. The frozen class's
    ``__init__`` sets each slot through ``object.__setattr__``; this fills an instance of a
    plain class with the same slots by ordinary attribute writes, then makes it a ``cls``
    (``__class__`` assignment, which Python allows between classes of one layout)."""
    assert not hasattr(cls, "__post_init__")
    fields = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    assert cls.__slots__ == fields  # type: ignore[attr-defined]  # the layouts match
    names = fields if names is None else names
    twin = type(f"_{cls.__name__}Slots", (), {"__slots__": fields})
    lines = [f"def make({', '.join(names)}):", "    self = twin()"]
    lines += [f"    self.{n} = {n}" for n in names] + [
        "    self.__class__ = cls",
        "    return self",
    ]
    scope: dict[str, Any] = {"twin": twin, "cls": cls}
    exec("\n".join(lines), scope)  # names from the dataclass, as dataclasses does it
    return scope["make"]


_run = _maker(RunRecord)
_step = _maker(StepRecord)
_artifact = _maker(ArtifactRecord)


def run_record(row: Any) -> RunRecord:
    # Called per row of listings of thousands of runs: no helper calls but ``aware``.
    return _run(
        row[0],
        row[1],
        row[2],
        row[3],
        _STATUS[row[4]],
        aware(row[5]),
        aware(row[6]),
        row[7],
        row[8],
        row[9],
        aware(row[10]),
        row[11],
        row[12],
    )


def step_record(row: Any, complete: bool = True) -> StepRecord:
    return _step(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        _STATUS[row[5]],
        dict(_json(row[6])),
        row[7],
        row[8],
        aware(row[9]),
        aware(row[10]),
        row[11],
        row[12],
        tuple(_json(row[13])),
        row[14],
        json_loads(row[15]) if type(row[15]) is str else row[15],  # big, rarely shared: no memo
        row[16],
        complete,
        json_loads(row[17]) if type(row[17]) is str else row[17],
    )


def artifact_record(row: Any, offset: int = 0) -> ArtifactRecord:
    # Called per link of scans (20,000 for 10,000 runs): indexes, not a slice of the row.
    o = offset
    inline, files = row[o + 7], row[o + 8]
    # Drivers hand BLOBs back as bytes, memoryview (psycopg) or bytearray: make them bytes.
    return _artifact(
        row[o],
        row[o + 1],
        row[o + 2],
        row[o + 3],
        row[o + 4],
        row[o + 5],
        row[o + 6],
        inline if inline is None or type(inline) is bytes else bytes(inline),
        None if files is None else _json(files),
    )


def link_record(row: Any) -> ArtifactLink:
    return ArtifactLink(row[0], row[1], row[2], artifact_record(row, 3))


# What reading a value kept inline needs (``READABLE_ARTIFACT_SQL``).
_readable = _maker(ArtifactRecord, ("id", "data_type", "materializer", "content_hash", "inline"))


def readable_artifact(row: Any, offset: int = 0) -> ArtifactRecord:
    """The record of a ``READABLE_ARTIFACT_SQL`` row, with only what reading a value kept
    inline needs: the fields it leaves out (``uri``, ``producer_step_id``, ``storage_format``,
    ``files``) are unset, so using one is an AttributeError, never a made-up value. For a view
    that loads the whole record before it uses any of those."""
    o = offset
    inline = row[o + 4]
    return _readable(
        row[o],
        row[o + 1],
        row[o + 2],
        row[o + 3],
        inline if inline is None or type(inline) is bytes else bytes(inline),
    )
