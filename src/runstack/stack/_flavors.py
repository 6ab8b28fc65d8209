"""Flavors: the kinds of stack component, each a validated settings model that builds one.

Built-in flavors are listed by dotted path and imported on use; third parties add their own
under the ``runstack.flavors`` entry-point group, named ``<component_type>.<flavor>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from runstack.exceptions import ConfigError
from runstack.materializers._base import import_path

COMPONENT_TYPES = ("orchestrator", "metadata_store", "artifact_store")


class Flavor(BaseModel):
    """Settings of one component; ``build`` makes the component from them."""

    model_config = ConfigDict(extra="forbid")
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    def build(self, base_dir: Path) -> Any:
        raise NotImplementedError


class LocalOrchestratorFlavor(Flavor):
    """Runs steps one after another in the calling process."""

    def build(self, base_dir: Path) -> Any:
        from runstack.execution import LocalOrchestrator

        return LocalOrchestrator()


_stores: dict[tuple[int, str], Any] = {}


def _store_for(url: str) -> Any:
    # One engine per database per process: opening a store checks its schema, so reuse it.
    from runstack.metadata_stores import SQLMetadataStore

    key = (os.getpid(), url)
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = SQLMetadataStore(url)
    return store


class SQLiteFlavor(Flavor):
    """An SQLite file; relative paths are relative to the repository's config folder."""

    path: str = "metadata.db"

    def url(self, base_dir: Path) -> str:
        return f"sqlite:///{(base_dir / os.path.expanduser(self.path)).resolve()}"

    def build(self, base_dir: Path) -> Any:
        return _store_for(self.url(base_dir))


class _ServerFlavor(Flavor):
    """A database server, given as a SQLAlchemy URL or as parts; any part may be ``${ENV}``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)
    DRIVER: ClassVar[str] = ""
    DEFAULT_PORT: ClassVar[int] = 0

    url: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: str = "runstack"

    def resolved_url(self) -> str:
        import sqlalchemy as sa

        if self.url:
            return os.path.expandvars(self.url)
        return sa.URL.create(
            self.DRIVER,
            username=os.path.expandvars(self.username) if self.username else None,
            password=os.path.expandvars(self.password) if self.password else None,
            host=os.path.expandvars(self.host),
            port=self.port or self.DEFAULT_PORT,
            database=os.path.expandvars(self.database),
        ).render_as_string(hide_password=False)

    def build(self, base_dir: Path) -> Any:
        return _store_for(self.resolved_url())


class PostgreSQLFlavor(_ServerFlavor):
    DRIVER: ClassVar[str] = "postgresql+psycopg"
    DEFAULT_PORT: ClassVar[int] = 5432


class MySQLFlavor(_ServerFlavor):
    DRIVER: ClassVar[str] = "mysql+pymysql"
    DEFAULT_PORT: ClassVar[int] = 3306


class LocalArtifactStoreFlavor(Flavor):
    """A folder on this machine; relative paths are relative to the repository's config folder."""

    path: str = "artifacts"

    def build(self, base_dir: Path) -> Any:
        from runstack.artifact_stores import ArtifactStore

        return ArtifactStore(str((base_dir / os.path.expanduser(self.path)).resolve()))


class FsspecArtifactStoreFlavor(Flavor):
    """Any fsspec URL (``s3://bucket/prefix``, ``memory://x``...); needs that fsspec backend."""

    url: str

    def build(self, base_dir: Path) -> Any:
        from runstack.artifact_stores import ArtifactStore

        return ArtifactStore(self.url)


BUILTIN_FLAVORS: dict[str, dict[str, str]] = {
    "orchestrator": {"local": "runstack.stack._flavors:LocalOrchestratorFlavor"},
    "metadata_store": {
        "sqlite": "runstack.stack._flavors:SQLiteFlavor",
        "postgresql": "runstack.stack._flavors:PostgreSQLFlavor",
        "mysql": "runstack.stack._flavors:MySQLFlavor",
    },
    "artifact_store": {
        "local": "runstack.stack._flavors:LocalArtifactStoreFlavor",
        "fsspec": "runstack.stack._flavors:FsspecArtifactStoreFlavor",
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


def check_component_type(component_type: str) -> None:
    if component_type not in COMPONENT_TYPES:
        raise ConfigError(
            f"Unknown component type {component_type!r}; expected one of {list(COMPONENT_TYPES)}."
        )


def flavor_class(component_type: str, flavor: str) -> type[Flavor]:
    flavors = available_flavors(component_type)
    if flavor not in flavors:
        raise ConfigError(
            f"Unknown {component_type} flavor {flavor!r}; available: {sorted(flavors)}."
        )
    klass = import_path(flavors[flavor])
    if not (isinstance(klass, type) and issubclass(klass, Flavor)):
        raise ConfigError(f"Flavor {flavor!r} ({flavors[flavor]}) is not a runstack Flavor.")
    return klass


def validate_settings(component_type: str, flavor: str, settings: dict[str, Any]) -> Flavor:
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
