"""The built-in flavors: plain dataclasses, so a stack is built without importing pydantic.

Settings already of their fields' types (a saved config) are taken as they are; anything
else (strings from the command line, a hand-edited file) is checked and converted by
pydantic, as third-party flavors are (see ``runstack.stack._flavors.validate_settings``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from runstack._files import make_dirs
from runstack.exceptions import ConfigError
from runstack.stack._flavors import BuiltinFlavor, _path, _store_for, expand_env


@dataclass
class LocalOrchestratorFlavor(BuiltinFlavor):
    """Runs steps one after another in the calling process."""

    def build(self, base_dir: Path) -> Any:
        from runstack.execution import LocalOrchestrator

        return LocalOrchestrator()


@dataclass
class ParallelOrchestratorFlavor(BuiltinFlavor):
    """Runs every step whose inputs are ready at once, in worker processes or threads."""

    max_workers: int | None = None  # default: the CPU count
    mode: str = "process"  # or "thread"

    def build(self, base_dir: Path) -> Any:
        from runstack.execution import ParallelOrchestrator

        if self.mode not in ("process", "thread"):
            raise ConfigError(
                f"mode of the parallel orchestrator is 'process' or 'thread', got {self.mode!r}."
            )
        return ParallelOrchestrator(self.max_workers, self.mode)


@dataclass
class RayOrchestratorFlavor(BuiltinFlavor):
    """Runs each step as a Ray task, as soon as its inputs are ready; needs runstack[ray].

    ``address``: unset = the Ray instance this process started with ``ray.init(...)``, else a
    new local one; ``auto``; ``ray://host:10001``. ``runtime_env`` goes to every step's task.
    ``check_resources``: refuse a step no node could take (turn off on autoscaling clusters).
    """

    EXTRA: ClassVar[str | None] = "ray"
    REQUIRES: ClassVar[tuple[str, ...]] = ("ray",)

    address: str | None = None
    runtime_env: dict[str, Any] | None = None
    check_resources: bool = True

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        # The CLI gives strings: runtime_env='{"working_dir": "."}' (JSON).
        if isinstance(data.get("runtime_env"), str):
            try:
                data = {**data, "runtime_env": json.loads(data["runtime_env"])}
            except ValueError:
                raise ValueError(
                    'runtime_env is a JSON object, e.g. \'{"working_dir": ".", "pip": ["x"]}\''
                ) from None
        return data

    def build(self, base_dir: Path) -> Any:
        # Ray is imported when a run starts, not here: browsing the history of a stack with
        # this orchestrator must work (and stay fast) without Ray.
        from runstack.execution import RayOrchestrator

        return RayOrchestrator(self.address, self.runtime_env, self.check_resources)


@dataclass
class SQLiteFlavor(BuiltinFlavor):
    """An SQLite file; relative paths are relative to the repository's config folder."""

    path: str = "metadata.db"

    def url(self, base_dir: Path) -> str:
        return f"sqlite:///{_path(base_dir, self.path, 'the SQLite metadata store')}"

    def build(self, base_dir: Path) -> Any:
        make_dirs(_path(base_dir, self.path, "the SQLite metadata store").parent)
        return _store_for(self.url(base_dir))


@dataclass
class _ServerFlavor(BuiltinFlavor):
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

    def _expand(self, field: str) -> str | None:
        """The setting with ``$NAME`` / ``${NAME}`` replaced from the environment."""
        value = getattr(self, field)
        if value is None:
            return None
        return expand_env(str(value), field, f"the {type(self).__name__} metadata store")

    def resolved_url(self) -> str:
        """The SQLAlchemy URL, secrets included: for the engine only, never for printing."""
        import sqlalchemy as sa

        if self.url:
            return self._expand("url")  # type: ignore[return-value]
        return sa.URL.create(
            self.DRIVER,
            username=self._expand("username"),
            password=self._expand("password"),
            host=self._expand("host"),
            port=self.port or self.DEFAULT_PORT,
            database=self._expand("database"),
        ).render_as_string(hide_password=False)

    def build(self, base_dir: Path) -> Any:
        return _store_for(self.resolved_url())


@dataclass
class PostgreSQLFlavor(_ServerFlavor):
    """A PostgreSQL server (needs ``pip install runstack[postgresql]``)."""

    EXTRA: ClassVar[str | None] = "postgresql"
    REQUIRES: ClassVar[tuple[str, ...]] = ("psycopg",)
    DRIVER: ClassVar[str] = "postgresql+psycopg"
    DEFAULT_PORT: ClassVar[int] = 5432


@dataclass
class MySQLFlavor(_ServerFlavor):
    """A MySQL or MariaDB server (needs ``pip install runstack[mysql]``, or the faster
    ``runstack[mysqlclient]``, used when installed)."""

    EXTRA: ClassVar[str | None] = "mysql"
    REQUIRES: ClassVar[tuple[str, ...]] = ("pymysql",)
    # No driver named: the store's URL gets mysqlclient when installed, else PyMySQL
    # (``metadata_stores._engine.mysql_driver``).
    DRIVER: ClassVar[str] = "mysql"
    DEFAULT_PORT: ClassVar[int] = 3306

    @classmethod
    def missing_extra(cls) -> str | None:
        from runstack.metadata_stores._engine import mysql_driver

        return None if mysql_driver() == "mysqldb" else super().missing_extra()


@dataclass
class LocalArtifactStoreFlavor(BuiltinFlavor):
    """A folder on this machine; relative paths are relative to the repository's config folder."""

    path: str = "artifacts"

    def build(self, base_dir: Path) -> Any:
        from runstack.artifact_stores import ArtifactStore

        return ArtifactStore(str(_path(base_dir, self.path, "the local artifact store")))


@dataclass
class FsspecArtifactStoreFlavor(BuiltinFlavor):
    """Any fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``memory://x``...); needs that
    fsspec backend (``pip install runstack[s3]`` for S3 and MinIO).

    ``storage_options`` go to the filesystem as given (``endpoint_url``, ``key``, ``secret``,
    ``client_kwargs``...); every string in them may be ``${ENV}``, expanded when the store is
    built, and credentials among them are masked when settings are printed.
    """

    # Keys inside storage_options that hold credentials (besides the generic secret-name rule).
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = (
        "storage_options.key",
        "storage_options.secret",
        "storage_options.token",
        "storage_options.password",
        "storage_options.account_key",
        "storage_options.sas_token",
        "storage_options.connection_string",
    )

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        # The CLI gives strings: `storage_options='{"endpoint_url": ...}'` (JSON) or one
        # `storage_options.endpoint_url=...` per option.
        data = dict(data)
        options = data.get("storage_options")
        if isinstance(options, str):
            try:
                options = json.loads(options)
            except ValueError:
                raise ValueError(
                    "storage_options is a JSON object, e.g. "
                    '\'{"endpoint_url": "http://127.0.0.1:9000", "key": "${AWS_KEY}"}\''
                ) from None
        dotted = [k for k in data if isinstance(k, str) and k.startswith("storage_options.")]
        if dotted:
            options = dict(options or {})
            for k in dotted:
                options[k.removeprefix("storage_options.")] = data.pop(k)
        if options is not None:
            data["storage_options"] = options
        return data

    def build(self, base_dir: Path) -> Any:
        from runstack.artifact_stores import ArtifactStore

        owner = "the fsspec artifact store"

        def expand(value: Any, field: str) -> Any:
            if isinstance(value, str):
                return expand_env(value, field, owner)
            if isinstance(value, dict):
                return {k: expand(v, f"{field}.{k}") for k, v in value.items()}
            if isinstance(value, list):
                return [expand(v, field) for v in value]
            return value

        return ArtifactStore(
            expand_env(self.url, "url", owner), expand(self.storage_options, "storage_options")
        )
