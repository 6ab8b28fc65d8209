"""What a run tag and a run note may be, checked before anything is written or run.

Tags are ``key -> value`` strings filtered on in the database (an index on key and value), so
both are bounded to fit that index on every backend and limited to characters that survive
shells, URLs and JSON unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from runstack.exceptions import RunstackError

MAX_KEY = 64
MAX_VALUE = 255
MAX_TAGS = 100
MAX_NOTE = 10_000
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")


class TagError(RunstackError, ValueError):
    """A run tag or note that cannot be stored as given."""


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TagError(f"Tag keys are non-empty strings, got {key!r}.")
    if len(key) > MAX_KEY or not _KEY.fullmatch(key):
        raise TagError(
            f"Tag key {key!r} is not allowed: keys are at most {MAX_KEY} characters, start with "
            "a letter or digit and use only letters, digits and _ . : / -, e.g. 'exp' or "
            "'team/vision'."
        )
    return key


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """``tags`` as a plain dict, or a TagError saying which key or value is wrong and why."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TagError(f"tags= takes a dict of strings, e.g. {{'exp': 'lr-sweep'}}; got {tags!r}.")
    if len(tags) > MAX_TAGS:
        raise TagError(f"A run has at most {MAX_TAGS} tags; {len(tags)} were given.")
    checked = {}
    for key, value in tags.items():
        check_key(key)
        if not isinstance(value, str):
            raise TagError(
                f"Tag {key!r} has the value {value!r}; tag values are strings, e.g. "
                f"{{{key!r}: {str(value)!r}}}."
            )
        if not value or len(value) > MAX_VALUE or not value.isprintable():
            raise TagError(
                f"Tag {key!r} has a value that is empty, longer than {MAX_VALUE} characters or "
                "holds control characters (newlines, tabs); give a short one-line value "
                "(to drop a tag, remove it)."
            )
        checked[key] = value
    return checked


def check_note(note: Any) -> str | None:
    """A run's note: any text up to MAX_NOTE characters; "" or None clears it."""
    if note is None or note == "":
        return None
    if not isinstance(note, str):
        raise TagError(f"A run note is text, got {type(note).__name__} {note!r}.")
    if len(note) > MAX_NOTE:
        raise TagError(f"A run note has at most {MAX_NOTE} characters; this one has {len(note)}.")
    return note


def parse_tag_args(pairs: Iterable[str]) -> dict[str, str]:
    """``key=value`` command-line arguments -> checked tags."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise TagError(f"Tags are given as key=value, got {pair!r}; e.g. exp=lr-sweep.")
        if key in tags:
            raise TagError(f"Tag {key!r} is given twice.")
        tags[key] = value
    return check_tags(tags)
