"""``Repository``: where runstack finds its config, stacks and recorded history.

A repository is a ``.runstack`` folder made by ``runstack init``; ``Repository()`` uses the
nearest one walking up from the working directory. Without one, a global default repository
in the user's data directory is used (created on first use), so scripts run without ``init``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runstack._files import make_dirs
from runstack.exceptions import (
    ConfigError,
    PipelineNotFoundError,
    RunstackError,
    StoreError,
    did_you_mean,
    expect_name,
)
from runstack.stack import COMPONENT_TYPES, ComponentConfig, RepositoryConfig, Stack, StackConfig
from runstack.stack._config import (
    CONFIG_FILE,
    cached_config,
    check_references,
    load_config,
    save_config,
)
from runstack.stack._flavors import (
    check_component_type,
    check_name,
    is_open_store,
    mask_secret_value,
    settings_to_store,
    validate_settings,
)

if TYPE_CHECKING:
    from runstack.lifecycle._retention import Removal
    from runstack.models import RunRecord
    from runstack.post_execution import History, PipelineView, RunView
    from runstack.post_execution._compare import RunComparison
    from runstack.post_execution._diff import RunDiff

REPO_DIR = ".runstack"
ENV_REPOSITORY = "RUNSTACK_REPOSITORY"

# (pid, config folder, component type, name) -> (the config it was built from, the store).
# Each run's Repository() finds its stores already built while the config is unchanged: they
# hold no per-run state, and their caches (verified files, the engine) are worth keeping.
_BUILT: dict[tuple[int, Path, str, str], tuple[RepositoryConfig, Any]] = {}


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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (advisory; a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: config edits are rare and by hand; go without.
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a settings value (nested mappings and lists included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _component(config: RepositoryConfig, component_type: str, name: str) -> ComponentConfig:
    check_component_type(component_type)
    found = config.components.get(component_type, {})
    if name not in found:
        cli = component_type.replace("_", "-")
        raise ConfigError(
            f"No {component_type} named {name!r}. "
            + did_you_mean(name, list(found), f"{component_type}s")
            + f" Register one with `runstack {cli} register {name} --flavor ...`."
        )
    return found[name]


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
            # Resolved every time (~12 us): a link retargeted since must be followed.
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
        self._config = cached_config(self.config_path)  # shared: never changed in place

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Repository:
        """Create a repository with the default local stack in ``path`` (idempotent)."""
        config_dir = Path(path).expanduser().resolve() / REPO_DIR
        if not (config_dir / CONFIG_FILE).is_file():
            make_dirs(config_dir)  # private: it holds the store, artifacts and logs
            save_config(config_dir / CONFIG_FILE, RepositoryConfig.default())
            (config_dir / ".gitignore").write_text("*\n")
        return cls(config_dir)

    @property
    def root(self) -> Path:
        """The folder holding ``.runstack`` (or the global data folder)."""
        return self.config_dir.parent if self.config_dir.name == REPO_DIR else self.config_dir

    @property
    def config(self) -> RepositoryConfig:
        return self._config.copy()

    def reload(self) -> None:
        """Read the config file again (another process may have changed it)."""
        self._config = load_config(self.config_path)

    @contextlib.contextmanager
    def _edit(self) -> Iterator[RepositoryConfig]:
        """Change the config under a lock, starting from what is on disk now.

        Two ``runstack`` commands changing the config at once then both take effect instead of
        the later one silently undoing the earlier.
        """
        with _file_lock(self.config_dir / ".config.lock"):
            config = load_config(self.config_path)
            yield config
            check_references(config, self.config_path)
            save_config(self.config_path, config)
            self._config = config

    # -- stacks --------------------------------------------------------------------------

    @property
    def active_stack_key(self) -> str:
        """The name of the stack that ``pipeline.run()`` uses."""
        return self._config.active_stack

    @property
    def active_stack(self) -> Stack:
        return self.get_stack(self.active_stack_key)

    @property
    def stacks(self) -> dict[str, StackConfig]:
        """Stack name -> the names of its components."""
        return dict(self._config.stacks)

    def list_stacks(self) -> dict[str, StackConfig]:
        """Stack name -> the names of its components, in the order they were registered."""
        return dict(self._config.stacks)

    def get_stack_config(self, key: str) -> StackConfig:
        if key not in self._config.stacks:
            raise ConfigError(
                f"No stack named {key!r} in {self.config_path}. "
                + did_you_mean(key, list(self._config.stacks), "stacks")
            )
        return self._config.stacks[key]

    def get_stack(self, key: str) -> Stack:
        """The stack with its components built (this opens its metadata store)."""
        sc = self.get_stack_config(key)
        return Stack(
            key,
            orchestrator=self._build("orchestrator", sc.orchestrator),
            metadata_store=self._build("metadata_store", sc.metadata_store),
            artifact_store=self._build("artifact_store", sc.artifact_store),
        )

    def get_history(self, stack_key: str | None = None) -> History:
        """The recorded runs of a stack (default: the active one), to browse.

        Builds only the stack's metadata store and artifact store: browsing never builds the
        orchestrator, so it loads no execution code (launch, progress display...).
        """
        from runstack.post_execution import History

        key = stack_key or self.active_stack_key
        sc = self.get_stack_config(key)
        return History(
            self._build("metadata_store", sc.metadata_store),
            self._build("artifact_store", sc.artifact_store),
            key,
        )

    def _build(self, component_type: str, name: str) -> Any:
        key = (os.getpid(), self.config_dir, component_type, name)
        built = _BUILT.get(key)
        if (
            built is not None
            and built[0] is self._config
            and (component_type != "metadata_store" or is_open_store(built[1]))
        ):
            return built[1]
        component = self.get_component(component_type, name)
        # Orchestrators keep state while they run (a pool), and settings that read the
        # environment (${VAR}, ~) may mean something else next time: those are built afresh.
        reuse = component_type != "orchestrator" and not any(
            "$" in text or "~" in text for text in _strings(component.settings)
        )
        flavor = validate_settings(component_type, component.flavor, component.settings)
        try:
            store = flavor.build(self.config_dir)
            if reuse:
                _BUILT[key] = (self._config, store)
            return store
        except RunstackError:
            raise
        except ImportError as e:
            hint = f"pip install 'runstack[{flavor.EXTRA}]'" if flavor.EXTRA else "install it"
            raise ConfigError(
                f"The {component_type} {name!r} ({component.flavor}) needs the module "
                f"{e.name or e} that is not installed: {hint}."
            ) from e
        except Exception as e:
            raise StoreError(
                f"Cannot open the {component_type} {name!r} ({component.flavor}): "
                f"{type(e).__name__}: {mask_secret_value(str(e))}. Check its settings with "
                f"`runstack {component_type.replace('_', '-')} describe {name}`."
            ) from e

    def register_stack(
        self,
        key: str,
        *,
        orchestrator: str,
        metadata_store: str,
        artifact_store: str,
        activate: bool = False,
    ) -> None:
        """Add a stack made of registered components; ``activate`` also makes it active."""
        check_name(key, "stack")
        with self._edit() as config:
            if key in config.stacks:
                raise ConfigError(
                    f"A stack named {key!r} already exists; delete it first "
                    f"(`runstack stack delete {key}`) or pick another name."
                )
            for ctype, name in (
                ("orchestrator", orchestrator),
                ("metadata_store", metadata_store),
                ("artifact_store", artifact_store),
            ):
                _component(config, ctype, name)
            config.stacks[key] = StackConfig(
                orchestrator=orchestrator,
                metadata_store=metadata_store,
                artifact_store=artifact_store,
            )
            if activate:
                config.active_stack = key

    def set_active_stack(self, key: str) -> None:
        """Make ``key`` the stack that runs use from now on."""
        with self._edit() as config:
            if key not in config.stacks:
                raise ConfigError(
                    f"No stack named {key!r}. " + did_you_mean(key, list(config.stacks), "stacks")
                )
            config.active_stack = key

    def delete_stack(self, key: str) -> None:
        """Remove a stack (not its components, nor the runs recorded with it)."""
        with self._edit() as config:
            if key not in config.stacks:
                raise ConfigError(
                    f"No stack named {key!r}. " + did_you_mean(key, list(config.stacks), "stacks")
                )
            if key == config.active_stack:
                raise ConfigError(
                    f"Stack {key!r} is active; activate another one first "
                    "(`runstack stack set NAME`), then delete it."
                )
            del config.stacks[key]

    # -- components ----------------------------------------------------------------------

    def get_component(self, component_type: str, name: str) -> ComponentConfig:
        """A registered component's flavor and settings (as written, secrets included)."""
        return _component(self._config, component_type, name)

    def list_components(self, component_type: str) -> dict[str, ComponentConfig]:
        check_component_type(component_type)
        return dict(self._config.components.get(component_type, {}))

    def register_component(
        self, component_type: str, name: str, flavor: str, settings: dict[str, Any] | None = None
    ) -> None:
        """Add a component; its settings are checked against the flavor before saving."""
        check_component_type(component_type)
        check_name(name, component_type.replace("_", " "))
        validated = validate_settings(component_type, flavor, dict(settings or {}))
        # Store what was given, converted ("5432" -> 5432), without the flavor's defaults.
        stored = settings_to_store(validated, dict(settings or {}))
        with self._edit() as config:
            if name in config.components[component_type]:
                raise ConfigError(
                    f"A {component_type} named {name!r} already exists; delete it first "
                    f"(`runstack {component_type.replace('_', '-')} delete {name}`) or pick "
                    "another name."
                )
            config.components[component_type][name] = ComponentConfig(
                flavor=flavor, settings=stored
            )

    def delete_component(self, component_type: str, name: str) -> None:
        """Remove a component that no stack uses."""
        with self._edit() as config:
            _component(config, component_type, name)
            users = [k for k, s in config.stacks.items() if getattr(s, component_type) == name]
            if users:
                raise ConfigError(
                    f"{component_type} {name!r} is used by stack(s) {users}; delete those stacks "
                    "first (`runstack stack delete NAME`)."
                )
            del config.components[component_type][name]

    # -- history -------------------------------------------------------------------------

    def history_stack_keys(self, stack_key: str | None = None) -> list[str]:
        """The stacks to read history from, one per distinct metadata store.

        ``[stack_key]`` when given; else the active stack first, then every other stack whose
        metadata store differs from those before it (stacks sharing a store share history).
        """
        if stack_key is not None:
            self.get_stack_config(expect_name(stack_key, "stack_key"))
            return [stack_key]
        keys = [
            self.active_stack_key,
            *(k for k in self._config.stacks if k != self.active_stack_key),
        ]
        seen: list[Any] = []
        unique = []
        for k in keys:
            name = self._config.stacks[k].metadata_store
            component = self._config.components["metadata_store"][name]
            same = (name, component.flavor, component.settings)
            if not any(s[0] == name or s[1:] == same[1:] for s in seen):
                seen.append(same)
                unique.append(k)
        return unique

    def get_pipelines(self, stack_key: str | None = None) -> list[PipelineView]:
        """Pipelines with at least one run, oldest first run first (of all stacks by default).

        One view per pipeline per distinct metadata store, each naming its stack
        (``view.stack_key``): two stacks that both ran ``hello`` give two views.
        """
        found: list[PipelineView] = []
        for key in self.history_stack_keys(stack_key):
            found.extend(self.get_history(key).get_pipelines())
        found.sort(key=lambda p: p.created_at)
        return found

    def get_pipeline(
        self,
        pipeline_name: str | None = None,
        stack_key: str | None = None,
        *,
        name: str | None = None,
    ) -> PipelineView:
        """A pipeline by name, from stack ``stack_key``, or by default from the first stack
        that ran it in :meth:`history_stack_keys` order: the active stack first, then the
        others as listed in the config.

        A pipeline with the same name may have run on several stacks with different
        metadata stores; each keeps its own runs. The view says which stack it was read
        from (``view.stack_key``, also in its repr); pass ``stack_key=`` to choose, and see
        :meth:`get_pipelines` for the pipeline on every stack.
        """
        pipeline_name = pipeline_name if pipeline_name is not None else name
        if pipeline_name is None:
            raise TypeError("get_pipeline() needs a pipeline name, e.g. get_pipeline('training').")
        pipeline_name = expect_name(pipeline_name, "get_pipeline()'s pipeline name")
        known: list[str] = []
        for key in self.history_stack_keys(stack_key):
            history = self.get_history(key)
            try:
                return history.get_pipeline(pipeline_name)
            except PipelineNotFoundError:
                known.extend(p.name for p in history.get_pipelines())
        raise PipelineNotFoundError(
            f"No pipeline named {pipeline_name!r} has run"
            + (f" on stack {stack_key!r}. " if stack_key else ". ")
            + did_you_mean(pipeline_name, known, "pipelines")
        )

    def get_run(
        self, name: str, pipeline: str | None = None, stack_key: str | None = None
    ) -> RunView:
        """A run by name, from the first stack that has it (or ``stack_key``'s).

        With ``pipeline``, ``"latest"`` is that pipeline's newest run and ``"latest~N"`` the
        one N runs before it (by start time); a plain name must then be a run of it.
        """
        from runstack.exceptions import RunNotFoundError
        from runstack.post_execution._refs import (
            latest_needs_pipeline,
            latest_offset,
            run_not_found,
            run_of_pipeline,
        )

        if pipeline is not None:
            return run_of_pipeline(self.get_pipeline(pipeline, stack_key), name)
        keys = self.history_stack_keys(stack_key)
        histories = [self.get_history(key) for key in keys]
        for history in histories:
            try:
                return history.get_run(name)
            except RunNotFoundError:
                continue
        if latest_offset(name) is not None:
            raise latest_needs_pipeline(name)
        raise run_not_found(name, histories, keys)

    def diff(
        self,
        run_a: str,
        run_b: str,
        *,
        pipeline: str | None = None,
        stack_key: str | None = None,
        read_limit: int | None = None,
    ) -> RunDiff:
        """What differs from run ``run_a`` to run ``run_b`` (names as :meth:`get_run` takes
        them, so ``diff("latest~1", "latest", pipeline="training")`` works); see
        ``RunView.diff`` and docs/compare.md."""
        a = self.get_run(run_a, pipeline, stack_key)
        b = self.get_run(run_b, pipeline, stack_key)
        return a.diff(b, read_limit=read_limit)

    def compare(
        self, *runs: str, pipeline: str | None = None, stack_key: str | None = None
    ) -> RunComparison:
        """Runs side by side: the parameters that differ between them and their scalar
        outputs (metrics), one row per run, in the order given."""
        from runstack.post_execution._compare import compare_runs

        return compare_runs([self.get_run(r, pipeline, stack_key) for r in runs])

    def find_run_stack(self, name: str, stack_key: str | None = None) -> tuple[str, int]:
        """``(stack, run id)`` of the run named ``name`` on the first stack that has it."""
        key, _history, record = self._find_run_record(name, stack_key)
        return key, record.id

    def _find_run_record(self, name: str, stack_key: str | None) -> tuple[str, History, RunRecord]:
        from runstack.post_execution._refs import run_not_found

        keys = self.history_stack_keys(stack_key)
        # Only the stores: finding a run must not build (or need) the orchestrator.
        histories = []
        for key in keys:
            histories.append(self.get_history(key))
            record = histories[-1].store.get_run(name)
            if record is not None:
                return key, histories[-1], record
        # The shared message: it lists the newest run names, closest first.
        raise run_not_found(name, histories, keys)

    def delete_run(
        self, name: str, *, stack_key: str | None = None, dry_run: bool = False
    ) -> Removal:
        """Delete run ``name``: its records, then its artifact and log files.

        Steps of it that other runs still use (an artifact they consumed or reused from the
        cache) are kept with their run record, so lineage and cache explanations stay whole.
        A running run is never deleted. ``dry_run`` only reports what would be removed.
        """
        from runstack.lifecycle._retention import remove_runs
        from runstack.models import ExecutionStatus

        key, history, record = self._find_run_record(name, stack_key)
        if record.status is ExecutionStatus.RUNNING:
            raise RunstackError(
                f"Run {name!r} is running; it is not deleted. Wait for it to end, or record "
                "it failed with `runstack run reconcile` if its process died."
            )
        # The stores only (the record is already read): deleting needs no orchestrator.
        artifacts = self._build("artifact_store", self.get_stack_config(key).artifact_store)
        return remove_runs(history.store, artifacts, [record.id], dry_run=dry_run)

    def artifact_uris_of(self, artifact_store_path: str) -> set[str]:
        """Every URI that a metadata store of this repository's stacks writing into the
        artifact store at ``artifact_store_path`` names (what gc must never take for an
        orphan)."""
        known: set[str] = set()
        read: set[str] = set()
        for sc in self._config.stacks.values():
            # Only the two stores: an orchestrator (Ray...) need not be installed for this.
            if sc.metadata_store in read:
                continue
            if self._build("artifact_store", sc.artifact_store).path == artifact_store_path:
                known |= self._build("metadata_store", sc.metadata_store).stored_uris()
                read.add(sc.metadata_store)
        return known

    def __repr__(self) -> str:
        return f"Repository({str(self.config_dir)!r})"


__all__ = ["COMPONENT_TYPES", "Repository"]
