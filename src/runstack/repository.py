"""``Repository``: where runstack finds its config, stacks and recorded history.

A repository is a ``.runstack`` folder made by ``runstack init``; ``Repository()`` uses the
nearest one walking up from the working directory. Without one, a global default repository
in the user's data directory is used (created on first use), so scripts run without ``init``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runstack.exceptions import ConfigError, PipelineNotFoundError, did_you_mean
from runstack.post_execution import PipelineView
from runstack.stack import COMPONENT_TYPES, ComponentConfig, RepositoryConfig, Stack, StackConfig
from runstack.stack._config import CONFIG_FILE, load_config, save_config
from runstack.stack._flavors import check_component_type, validate_settings

REPO_DIR = ".runstack"
ENV_REPOSITORY = "RUNSTACK_REPOSITORY"


def global_config_dir() -> Path:
    """The default repository used when no ``.runstack`` folder is found."""
    import platformdirs

    return Path(platformdirs.user_data_dir("runstack", appauthor=False))


def find_config_dir(start: Path | None = None) -> Path | None:
    """The nearest ``.runstack`` folder at or above ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / REPO_DIR
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


class Repository:
    """Entry point to stacks and history.

    ``Repository()`` finds the repository (``$RUNSTACK_REPOSITORY``, else the nearest
    ``.runstack`` folder, else the global default); ``Repository(path)`` opens the one at
    ``path`` (a project folder or its ``.runstack`` folder).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None and os.environ.get(ENV_REPOSITORY):
            path = os.environ[ENV_REPOSITORY]
        if path is not None:
            p = Path(path).expanduser().resolve()
            config_dir = p if p.name == REPO_DIR or (p / CONFIG_FILE).is_file() else p / REPO_DIR
            if not (config_dir / CONFIG_FILE).is_file():
                raise ConfigError(
                    f"No runstack repository at {p}. Create one with `runstack init` in that "
                    "folder, or Repository.init(path)."
                )
        else:
            found = find_config_dir()
            if found is None:
                found = global_config_dir()
                if not (found / CONFIG_FILE).is_file():
                    save_config(found / CONFIG_FILE, RepositoryConfig.default())
            config_dir = found
        self.config_dir = config_dir
        self.config_path = config_dir / CONFIG_FILE
        self._config = load_config(self.config_path)

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Repository:
        """Create a repository with the default local stack in ``path`` (idempotent)."""
        config_dir = Path(path).expanduser().resolve() / REPO_DIR
        if not (config_dir / CONFIG_FILE).is_file():
            save_config(config_dir / CONFIG_FILE, RepositoryConfig.default())
            (config_dir / ".gitignore").write_text("*\n")
        return cls(config_dir)

    @property
    def root(self) -> Path:
        """The folder holding ``.runstack`` (or the global data folder)."""
        return self.config_dir.parent if self.config_dir.name == REPO_DIR else self.config_dir

    @property
    def config(self) -> RepositoryConfig:
        return self._config.model_copy(deep=True)

    def _save(self, config: RepositoryConfig) -> None:
        save_config(self.config_path, config)
        self._config = config

    # -- stacks --------------------------------------------------------------------------

    @property
    def active_stack_key(self) -> str:
        return self._config.active_stack

    @property
    def active_stack(self) -> Stack:
        return self.get_stack(self.active_stack_key)

    @property
    def stacks(self) -> dict[str, StackConfig]:
        return dict(self._config.stacks)

    def get_stack(self, key: str) -> Stack:
        if key not in self._config.stacks:
            raise ConfigError(
                f"No stack named {key!r} in {self.config_path}. "
                + did_you_mean(key, list(self._config.stacks), "stacks")
            )
        sc = self._config.stacks[key]
        return Stack(
            key,
            orchestrator=self._build("orchestrator", sc.orchestrator),
            metadata_store=self._build("metadata_store", sc.metadata_store),
            artifact_store=self._build("artifact_store", sc.artifact_store),
        )

    def _build(self, component_type: str, name: str) -> Any:
        component = self.get_component(component_type, name)
        return validate_settings(component_type, component.flavor, component.settings).build(
            self.config_dir
        )

    def register_stack(
        self,
        key: str,
        *,
        orchestrator: str,
        metadata_store: str,
        artifact_store: str,
        activate: bool = False,
    ) -> None:
        config = self.config
        if key in config.stacks:
            raise ConfigError(
                f"A stack named {key!r} already exists; delete it first or pick another name."
            )
        for ctype, name in (
            ("orchestrator", orchestrator),
            ("metadata_store", metadata_store),
            ("artifact_store", artifact_store),
        ):
            self.get_component(ctype, name)
        config.stacks[key] = StackConfig(
            orchestrator=orchestrator, metadata_store=metadata_store, artifact_store=artifact_store
        )
        if activate:
            config.active_stack = key
        self._save(config)

    def set_active_stack(self, key: str) -> None:
        if key not in self._config.stacks:
            raise ConfigError(
                f"No stack named {key!r}. " + did_you_mean(key, list(self._config.stacks), "stacks")
            )
        config = self.config
        config.active_stack = key
        self._save(config)

    def delete_stack(self, key: str) -> None:
        if key not in self._config.stacks:
            raise ConfigError(
                f"No stack named {key!r}. " + did_you_mean(key, list(self._config.stacks), "stacks")
            )
        if key == self._config.active_stack:
            raise ConfigError(
                f"Stack {key!r} is active; activate another one first "
                "(`runstack stack set NAME`), then delete it."
            )
        config = self.config
        del config.stacks[key]
        self._save(config)

    # -- components ----------------------------------------------------------------------

    def get_component(self, component_type: str, name: str) -> ComponentConfig:
        check_component_type(component_type)
        found = self._config.components.get(component_type, {})
        if name not in found:
            raise ConfigError(
                f"No {component_type} named {name!r}. "
                + did_you_mean(name, list(found), f"{component_type}s")
            )
        return found[name]

    def list_components(self, component_type: str) -> dict[str, ComponentConfig]:
        check_component_type(component_type)
        return dict(self._config.components.get(component_type, {}))

    def register_component(
        self, component_type: str, name: str, flavor: str, settings: dict[str, Any] | None = None
    ) -> None:
        check_component_type(component_type)
        settings = settings or {}
        validate_settings(component_type, flavor, settings)
        config = self.config
        if name in config.components[component_type]:
            raise ConfigError(f"A {component_type} named {name!r} already exists.")
        config.components[component_type][name] = ComponentConfig(flavor=flavor, settings=settings)
        self._save(config)

    def delete_component(self, component_type: str, name: str) -> None:
        self.get_component(component_type, name)
        users = [k for k, s in self._config.stacks.items() if getattr(s, component_type) == name]
        if users:
            raise ConfigError(
                f"{component_type} {name!r} is used by stack(s) {users}; delete those first."
            )
        config = self.config
        del config.components[component_type][name]
        self._save(config)

    # -- history -------------------------------------------------------------------------

    def _stack_keys(self, stack_key: str | None) -> list[str]:
        if stack_key is not None:
            if stack_key not in self._config.stacks:
                raise ConfigError(
                    f"No stack named {stack_key!r}. "
                    + did_you_mean(stack_key, list(self._config.stacks), "stacks")
                )
            return [stack_key]
        # Every distinct metadata store once, the active stack's first.
        keys = [
            self.active_stack_key,
            *(k for k in self._config.stacks if k != self.active_stack_key),
        ]
        seen: set[str] = set()
        unique = []
        for k in keys:
            store = self._config.stacks[k].metadata_store
            if store not in seen:
                seen.add(store)
                unique.append(k)
        return unique

    def get_pipelines(self, stack_key: str | None = None) -> list[PipelineView]:
        """Pipelines with at least one run, oldest first run first (of all stacks by default)."""
        found: list[PipelineView] = []
        for key in self._stack_keys(stack_key):
            found.extend(self.get_stack(key).history.get_pipelines())
        found.sort(key=lambda p: p.created_at)
        return found

    def get_pipeline(
        self,
        pipeline_name: str | None = None,
        stack_key: str | None = None,
        *,
        name: str | None = None,
    ) -> PipelineView:
        """A pipeline by name, from the given stack or from the first stack that ran it."""
        pipeline_name = pipeline_name if pipeline_name is not None else name
        if pipeline_name is None:
            raise TypeError("get_pipeline() needs a pipeline name, e.g. get_pipeline('training').")
        known: list[str] = []
        for key in self._stack_keys(stack_key):
            history = self.get_stack(key).history
            try:
                return history.get_pipeline(pipeline_name)
            except PipelineNotFoundError:
                known.extend(p.name for p in history.get_pipelines())
        raise PipelineNotFoundError(
            f"No pipeline named {pipeline_name!r} has run"
            + (f" on stack {stack_key!r}. " if stack_key else ". ")
            + did_you_mean(pipeline_name, known, "pipelines")
        )

    def __repr__(self) -> str:
        return f"Repository({str(self.config_dir)!r})"


__all__ = ["COMPONENT_TYPES", "Repository"]
