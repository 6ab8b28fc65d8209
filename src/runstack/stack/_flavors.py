"""Flavors: the kinds of stack component, each a validated settings model that builds one.

Built-in flavors are listed by dotted path and imported on use; third parties add their own
under the ``runstack.flavors`` entry-point group, named ``<component_type>.<flavor>``, as
subclasses of ``Flavor``, a pydantic model (``runstack.stack._flavor_models``).

The built-in flavors are dataclasses (``runstack.stack._builtin_flavors``): reading the config,
listing stacks and building the default stack to browse its history import no pydantic.
Settings they are given are checked by pydantic all the same, unless already exactly of their
fields' types (as a saved config is), so both kinds accept and refuse the same settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from runstack.exceptions import ConfigError

COMPONENT_TYPES = ("orchestrator", "metadata_store", "artifact_store")
_Built = TypeVar("_Built", bound="BuiltinFlavor")


class FlavorBase:
    """What every flavor has: the extra it needs, its secret settings, ``build``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The ``runstack[extra]`` that installs what ``build`` imports, for the error hint, and
    # the modules it provides (checked, not imported, by ``missing_extra``).
    EXTRA: ClassVar[str | None] = None
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing_extra(cls) -> str | None:
        """``pip install 'runstack[x]'`` when a module this flavor needs is not installed."""
        import importlib.util

        for module in cls.REQUIRES:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"pip install 'runstack[{cls.EXTRA}]'" if cls.EXTRA else f"install {module}"
        return None

    def build(self, base_dir: Path) -> Any:
        raise NotImplementedError


class BuiltinFlavor(FlavorBase):
    """A built-in flavor: a dataclass of its settings (subclasses are ``@dataclass``)."""

    # How pydantic validates it (TypeAdapter): unknown settings are errors.
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The settings as given turned into field values (e.g. JSON text from the command
        line into a dict); a ``ValueError`` says what is wrong."""
        return data

    @classmethod
    def exact(cls: type[_Built], data: dict[str, Any]) -> _Built | None:
        """The flavor when ``data`` names known fields, every required one, each value
        exactly of its field's type; else None (pydantic then converts or explains)."""
        hints = _field_types(cls)
        if not data.keys() <= hints.keys() or not all(
            _is_exactly(data[name], hints[name]) for name in data
        ):
            return None
        try:
            return cls(**data)
        except TypeError:  # a required field is missing
            return None


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(klass: type[BuiltinFlavor]) -> dict[str, Any]:
    """Field name -> its type (the annotation evaluated), once per class."""
    found = _FIELD_TYPES.get(klass)
    if found is None:
        hints = typing.get_type_hints(klass)
        fields = dataclasses.fields(klass)  # type: ignore[arg-type]
        found = _FIELD_TYPES[klass] = {f.name: hints[f.name] for f in fields}
    return found


def _is_exactly(value: Any, annotation: Any) -> bool:
    """``value`` is of ``annotation`` with no conversion (str, int, bool, None, dict, unions)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_exactly(value, a) for a in typing.get_args(annotation))
    if origin is dict:
        return type(value) is dict and all(type(k) is str for k in value)
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    return type(value) is annotation


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


def is_open_store(store: Any) -> bool:
    """Whether ``store`` is still the one this process uses for its database (not one dropped
    from the table since, and disposed)."""
    return any(open_store is store for open_store in _stores.values())


BUILTIN_FLAVORS: dict[str, dict[str, str]] = {
    "orchestrator": {
        "local": "runstack.stack._builtin_flavors:LocalOrchestratorFlavor",
        "parallel": "runstack.stack._builtin_flavors:ParallelOrchestratorFlavor",
        "ray": "runstack.stack._builtin_flavors:RayOrchestratorFlavor",
    },
    "metadata_store": {
        "sqlite": "runstack.stack._builtin_flavors:SQLiteFlavor",
        "postgresql": "runstack.stack._builtin_flavors:PostgreSQLFlavor",
        "mysql": "runstack.stack._builtin_flavors:MySQLFlavor",
    },
    "artifact_store": {
        "local": "runstack.stack._builtin_flavors:LocalArtifactStoreFlavor",
        "fsspec": "runstack.stack._builtin_flavors:FsspecArtifactStoreFlavor",
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


def flavor_class(component_type: str, flavor: str) -> type[FlavorBase]:
    path = _flavor_path(component_type, flavor)
    if path is None:
        flavors = available_flavors(component_type)
        raise ConfigError(
            f"Unknown {component_type} flavor {flavor!r}; available: {sorted(flavors)}. See "
            f"their settings with `runstack {component_type.replace('_', '-')} flavors`; "
            "third-party flavors come from the `runstack.flavors` entry-point group."
        )
    from runstack.materializers._base import import_path

    try:
        klass = import_path(path)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"Cannot import {component_type} flavor {flavor!r} from {path}: {e}. "
            "Install the package that provides it, or fix its `runstack.flavors` entry point."
        ) from e
    if isinstance(klass, type) and issubclass(klass, BuiltinFlavor):
        return klass
    from runstack.stack._flavor_models import Flavor

    if not (isinstance(klass, type) and issubclass(klass, Flavor)):
        raise ConfigError(f"Flavor {flavor!r} ({path}) is not a runstack Flavor.")
    return klass


def validate_settings(component_type: str, flavor: str, settings: dict[str, Any]) -> FlavorBase:
    """The flavor made from ``settings``, converted and checked; a ``ConfigError`` says what
    is wrong and which settings the flavor has."""
    klass = flavor_class(component_type, flavor)

    def invalid(problems: object) -> ConfigError:
        # Built on an error only: every run validates its orchestrator's settings.
        fields = ", ".join(_settings(klass)) or "none"
        return ConfigError(
            f"Invalid settings for {component_type} flavor {flavor!r}: {problems}. "
            f"Its settings are: {fields}."
        )

    if issubclass(klass, BuiltinFlavor):
        try:
            settings = klass.prepare(dict(settings))
        except ValueError as e:
            raise invalid(e) from None
        found = klass.exact(settings)
        if found is not None:
            return found
    from pydantic import TypeAdapter, ValidationError

    try:
        if issubclass(klass, BuiltinFlavor):
            made: FlavorBase = TypeAdapter(klass).validate_python(settings)
        else:
            made = klass(**settings)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<settings>'}: {err['msg']}"
            for err in e.errors()
        )
        raise invalid(problems) from None
    return made


def settings_to_store(flavor: FlavorBase, given: dict[str, Any]) -> dict[str, Any]:
    """The settings ``given`` as the config file keeps them: converted ("5432" -> 5432), and
    only those given, so the flavor's defaults are not written out."""
    if isinstance(flavor, BuiltinFlavor):
        return {k: getattr(flavor, k) for k in type(flavor).prepare(dict(given))}
    dump: dict[str, Any] = flavor.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
    return dump


def _settings(klass: type[FlavorBase]) -> dict[str, tuple[Any, bool, Any]]:
    """Setting name -> (type, required, default) of a built-in or pydantic flavor."""
    if issubclass(klass, BuiltinFlavor):
        out = {}
        for f in dataclasses.fields(klass):  # type: ignore[arg-type]
            missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out[f.name] = (_field_types(klass)[f.name], missing, default)
        return out
    return {
        name: (field.annotation, field.is_required(), field.default)
        for name, field in klass.model_fields.items()  # type: ignore[attr-defined]
    }


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


def flavor_fields(klass: type[FlavorBase]) -> dict[str, str]:
    """Setting name -> a short ``type = default`` description, for help and errors."""
    out: dict[str, str] = {}
    for name, (annotation, required, default) in _settings(klass).items():
        shown = getattr(annotation, "__name__", None) or str(annotation)
        shown = shown.replace("typing.", "").replace("Optional", "")
        out[name] = f"{shown} (required)" if required else f"{shown} = {default!r}"
    return out
