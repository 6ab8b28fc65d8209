"""What curating history needs of the metadata store: tags and notes edited after a run.

Neither the runner nor the readers need these; they are the third, small interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._tags import TagError, check_key, check_note, check_tags

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")


class RunCuration(SQLConnection):
    """Edits what people say about runs (tags, notes); never what a run recorded."""

    def set_tags(
        self, run_id: int, tags: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> dict[str, str]:
        """Add or replace ``tags`` and drop the keys in ``remove`` (absent ones are fine), in
        one transaction; returns the run's tags afterwards."""
        tags = check_tags(tags)
        gone = [check_key(k) for k in remove]
        both = sorted(set(gone) & set(tags))
        if both:
            raise TagError(f"Tag(s) {both} are both set and removed; do one or the other.")
        rt = t.run_tags

        def edit(conn: sa.Connection) -> dict[str, str]:
            changed = [*gone, *tags]
            if changed:
                conn.execute(rt.delete().where(rt.c.run_id == run_id, rt.c.key.in_(changed)))
            if tags:
                conn.execute(
                    rt.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
                )
            rows = conn.execute(
                sa.select(rt.c.key, rt.c.value).where(rt.c.run_id == run_id).order_by(rt.c.key)
            )
            return {k: v for k, v in rows}

        return self._transact(edit)

    def set_note(self, run_id: int, note: str | None) -> None:
        """Replace the run's note ("" or None clears it)."""
        update = t.runs.update().where(t.runs.c.id == run_id).values(note=check_note(note))
        self._transact(lambda conn: conn.execute(update))
