"""Flavors: the kinds of stack component, each a validated settings model that builds one.

Built-in flavors are listed by dotted path and imported on use; third parties add their own
under the ``runstack.flavors`` entry-point group, named ``<component_type>.<flavor>``. The
flavor classes are pydantic models (``runstack.stack._flavor_models``), imported only to
validate or build a component: reading the config and listing stacks need no pydantic.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runstack.exceptions import ConfigError

if TYPE_CHECKING:
    from runstack.stack._flavor_models import Flavor

COMPONENT_TYPES = ("orchestrator", "metadata_store", "artifact_store")


def expand_env(value: str, field: str, owner: str) -> str:
    """``value`` with ``$NAME`` / ``${NAME}`` replaced from the environment.

    Settings keep the references as written, so one config file serves several machines and
    holds no secret; they are expanded only when the component is built.
    """

    def env(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in os.environ:
            # Name the variable and the setting, never the value (it may be a password).
            raise ConfigError(
                f"Setting {field!r} of {owner} refers to the environment variable {name}, "
                f"which is not set. Set it (e.g. `export {name}=...`) before running."
            )
        return os.environ[name]

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", env, value)


def _path(base_dir: Path, value: str, owner: str) -> Path:
    """A path setting: ``${VAR}`` and ``~`` expanded, relative to the config folder."""
    return (base_dir / os.path.expanduser(expand_env(value, "path", owner))).resolve()


_stores: dict[tuple[int, str], Any] = {}


def _store_for(url: str) -> Any:
    # One engine per database per process: opening a store checks its schema, so reuse it.
    from runstack.metadata_stores import SQLMetadataStore

    key = (os.getpid(), url)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = SQLMetadataStore(url)
    return store


BUILTIN_FLAVORS: dict[str, dict[str, str]] = {
    "orchestrator": {
        "local": "runstack.stack._flavor_models:LocalOrchestratorFlavor",
        "parallel": "runstack.stack._flavor_models:ParallelOrchestratorFlavor",
        "ray": "runstack.stack._flavor_models:RayOrchestratorFlavor",
    },
    "metadata_store": {
        "sqlite": "runstack.stack._flavor_models:SQLiteFlavor",
        "postgresql": "runstack.stack._flavor_models:PostgreSQLFlavor",
        "mysql": "runstack.stack._flavor_models:MySQLFlavor",
    },
    "artifact_store": {
        "local": "runstack.stack._flavor_models:LocalArtifactStoreFlavor",
        "fsspec": "runstack.stack._flavor_models:FsspecArtifactStoreFlavor",
    },
}


def available_flavors(component_type: str) -> dict[str, str]:
    """Flavor name -> import path, built-ins first, then ``runstack.flavors`` entry points."""
    check_component_type(component_type)
    found = dict(BUILTIN_FLAVORS[component_type])
    from importlib.metadata import entry_points

    for ep in entry_points(group="runstack.flavors"):
        ctype, _, name = ep.name.partition(".")
        if ctype == component_type and name:
            found.setdefault(name, ep.value)
    return found


def _flavor_path(component_type: str, flavor: str) -> str | None:
    # Built-ins first: scanning installed distributions for entry points costs milliseconds,
    # and every pipeline run resolves its stack's flavors.
    check_component_type(component_type)
    return BUILTIN_FLAVORS[component_type].get(flavor) or available_flavors(component_type).get(
        flavor
    )


def check_component_type(component_type: str) -> None:
    if component_type not in COMPONENT_TYPES:
        raise ConfigError(
            f"Unknown component type {component_type!r}; expected one of {list(COMPONENT_TYPES)}."
        )


def flavor_class(component_type: str, flavor: str) -> type[Flavor]:
    path = _flavor_path(component_type, flavor)
    if path is None:
        flavors = available_flavors(component_type)
        raise ConfigError(
            f"Unknown {component_type} flavor {flavor!r}; available: {sorted(flavors)}. See "
            f"their settings with `runstack {component_type.replace('_', '-')} flavors`; "
            "third-party flavors come from the `runstack.flavors` entry-point group."
        )
    from runstack.materializers._base import import_path
    from runstack.stack._flavor_models import Flavor

    try:
        klass = import_path(path)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"Cannot import {component_type} flavor {flavor!r} from {path}: {e}. "
            "Install the package that provides it, or fix its `runstack.flavors` entry point."
        ) from e
    if not (isinstance(klass, type) and issubclass(klass, Flavor)):
        raise ConfigError(f"Flavor {flavor!r} ({path}) is not a runstack Flavor.")
    return klass


def validate_settings(component_type: str, flavor: str, settings: dict[str, Any]) -> Flavor:
    from pydantic import ValidationError

    klass = flavor_class(component_type, flavor)
    try:
        return klass(**settings)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<settings>'}: {err['msg']}"
            for err in e.errors()
        )
        fields = ", ".join(klass.model_fields) or "none"
        raise ConfigError(
            f"Invalid settings for {component_type} flavor {flavor!r}: {problems}. "
            f"Its settings are: {fields}."
        ) from None


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str, what: str) -> None:
    """Names appear in the config file and on the command line: keep them plain."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"Invalid {what} name {name!r}: use letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (at most 64 characters), e.g. 'team-postgres'."
        )


# Setting names that hold secrets whatever the flavor says (third-party flavors may forget).
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|api_?key|access_?key|credential", re.IGNORECASE
)
MASK = "********"
# Where a URL may start in free text (a setting, an error message); the URL parser decides
# what its password is.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_ENV_REF = re.compile(r"\$\{?\w+\}?")


def mask_secret_value(value: Any) -> Any:
    """Hide the password of every URL in a string (``scheme://user:pass@host``).

    The userinfo is what the URL parser takes it to be: everything before the *last* ``@``
    of the authority, so a password holding ``@`` or ``:`` is hidden whole. Text that is not
    a URL is returned as it is; ``${ENV}`` references are shown, as they hold no secret.
    """
    if not isinstance(value, str) or "://" not in value:
        return value
    out, pos = [], 0
    for m in _URL_START.finditer(value):
        if m.start() < pos:
            continue
        end = _url_end(value, m.end())
        out.append(value[pos : m.start()])
        out.append(_mask_url(value[m.start() : end]))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _url_end(text: str, start: int) -> int:
    """Where a URL starting in ``text`` ends: at whitespace, or a quote or bracket closing it."""
    end = start
    while end < len(text) and not text[end].isspace() and text[end] not in "'\"<>":
        end += 1
    return end


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    scheme, _, rest = url.partition("://")
    try:
        parts = urlsplit(url)
        userinfo, at, host = parts.netloc.rpartition("@")
        leftover = "@" in host + parts.path + parts.query + parts.fragment
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        at, leftover = "", "@" in rest
    if at and not leftover:
        user, colon, password = userinfo.partition(":")
        if not colon or not password or _ENV_REF.fullmatch(password):
            return url
        return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
    if not leftover:
        return url
    # An '@' the parser left after the authority: a password holding an unencoded '/', '?'
    # or '#' ends the authority early. Err on the side of hiding: the userinfo runs to the
    # last '@' (this may hide a port and path of a URL that has no password at all).
    userinfo, _, host = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not colon or "/" in user or _ENV_REF.fullmatch(password):
        return url
    return f"{scheme}://{user}:{MASK}@{host}"


def masked_settings(component_type: str, flavor: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Settings safe to print: secret fields replaced by a mask, URL passwords hidden.

    ``${ENV}`` references are shown as written, since they hold no secret themselves.
    """
    secret: set[str] = set()
    # An uninstalled flavor cannot say which fields are secret: the name rule below still holds.
    with contextlib.suppress(ConfigError):
        secret.update(flavor_class(component_type, flavor).SECRET_FIELDS)
    return _masked(settings, secret, "")


def _masked(settings: dict[str, Any], secret: set[str], prefix: str) -> dict[str, Any]:
    # Nested settings (an artifact store's storage_options) are masked by the same rules;
    # a flavor names nested secrets by dotted path ("storage_options.key").
    shown: dict[str, Any] = {}
    for key, value in settings.items():
        is_ref = isinstance(value, str) and _ENV_REF.fullmatch(value) is not None
        named = f"{prefix}{key}" in secret or _SECRET_NAME.search(str(key))
        if named and value is not None and not is_ref:
            shown[key] = MASK
        elif isinstance(value, dict):
            shown[key] = _masked(value, secret, f"{prefix}{key}.")
        else:
            shown[key] = mask_secret_value(value)
    return shown


def flavor_fields(klass: type[Flavor]) -> dict[str, str]:
    """Setting name -> a short ``type = default`` description, for help and errors."""
    out: dict[str, str] = {}
    for name, field in klass.model_fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
        annotation = annotation.replace("typing.", "").replace("Optional", "")
        if field.is_required():
            out[name] = f"{annotation} (required)"
        else:
            out[name] = f"{annotation} = {field.default!r}"
    return out
