"""The one rule for names the metadata store keeps: pipelines, runs, steps, inputs, outputs,
parameters.

Names are ``VARCHAR(190)`` columns on every backend (so that unique indexes fit MySQL's key
length with utf8mb4); SQLite would store longer ones, PostgreSQL and MySQL refuse them, so the
rule is the same everywhere: at most :data:`MAX_NAME_LENGTH` characters, no NUL character
(PostgreSQL cannot store one in text). It is checked before a run starts, so no work is lost to
a name the store then refuses.
"""

from __future__ import annotations

from runstack.exceptions import DefinitionError

MAX_NAME_LENGTH = 190


def check_name(kind: str, name: object) -> str:
    """``name`` if the store can keep it as a ``kind`` name (e.g. ``"run"``), else an error."""
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"A {kind} name must be a non-empty string, got {name!r}.")
    shown = name if len(name) <= 60 else f"{name[:40]}...{name[-10:]}"
    if len(name) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"The {kind} name {shown!r} is {len(name)} characters long; the metadata store "
            f"keeps names of at most {MAX_NAME_LENGTH} characters (on every backend). Choose "
            "a shorter name."
        )
    if "\x00" in name:
        raise DefinitionError(
            f"The {kind} name {shown!r} contains a NUL character (\\x00), which the metadata "
            "store cannot keep (PostgreSQL refuses it). Remove it from the name."
        )
    return name


def fit_name(prefix: str, suffix: str) -> str:
    """``prefix + suffix``, the prefix shortened so the whole fits :data:`MAX_NAME_LENGTH`
    (for generated names such as ``<pipeline>-<timestamp>``, whose suffix matters most)."""
    return prefix[: max(0, MAX_NAME_LENGTH - len(suffix))] + suffix
