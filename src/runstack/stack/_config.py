"""The repository's config file: components by type and name, stacks, the active stack.

The records are plain dataclasses checked by hand, not pydantic models: every command and
script reads this file, and `runstack stack list` should not pay for importing pydantic.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runstack.exceptions import ConfigError
from runstack.stack._flavors import COMPONENT_TYPES

CONFIG_FILE = "config.yaml"
CONFIG_VERSION = 1
_HEADER = (
    "# runstack repository config. Edit it by hand or with `runstack stack ...` and\n"
    "# `runstack <component-type> ...`. Keep secrets in environment variables,\n"
    "# e.g. password: ${PGPASSWORD}\n"
)


@dataclass
class ComponentConfig:
    """A registered component: its flavor and its settings as written."""

    flavor: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StackConfig:
    """A stack: the names of its three components."""

    orchestrator: str
    metadata_store: str
    artifact_store: str


def _no_components() -> dict[str, dict[str, ComponentConfig]]:
    return {t: {} for t in COMPONENT_TYPES}


@dataclass
class RepositoryConfig:
    """The whole config file."""

    version: int = CONFIG_VERSION
    active_stack: str = "default"
    components: dict[str, dict[str, ComponentConfig]] = field(default_factory=_no_components)
    stacks: dict[str, StackConfig] = field(default_factory=dict)

    @classmethod
    def default(cls) -> RepositoryConfig:
        return cls(
            components={
                "orchestrator": {"local": ComponentConfig(flavor="local")},
                "metadata_store": {
                    "local": ComponentConfig(flavor="sqlite", settings={"path": "metadata.db"})
                },
                "artifact_store": {
                    "local": ComponentConfig(flavor="local", settings={"path": "artifacts"})
                },
            },
            stacks={
                "default": StackConfig(
                    orchestrator="local", metadata_store="local", artifact_store="local"
                )
            },
        )

    def copy(self) -> RepositoryConfig:
        """A deep copy, to hand out without letting callers change this one."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the YAML file."""
        return asdict(self)


def parse_config(raw: dict[str, Any]) -> tuple[RepositoryConfig | None, list[str]]:
    """The config in ``raw`` (the file's mapping), or the problems found as ``loc: message``.

    Every problem is reported at once, each with where it is, so one edit fixes the file.
    """
    problems: list[str] = []

    def mapping(value: Any, loc: str, fields: dict[str, bool] | None = None) -> dict[str, Any]:
        """``value`` checked to be a mapping with string keys (and, given ``fields``, only
        those keys, the required ones present); ``{}`` after reporting when it is not."""
        if not isinstance(value, dict):
            problems.append(f"{loc}: expected a mapping, got {type(value).__name__}")
            return {}
        ok = {}
        for key, item in value.items():
            where = f"{loc}.{key}" if loc else str(key)
            if not isinstance(key, str):
                problems.append(f"{where}: names are strings, got {type(key).__name__}")
            elif fields is not None and key not in fields:
                problems.append(f"{where}: unknown field; expected one of {sorted(fields)}")
            else:
                ok[key] = item
        for name, required in (fields or {}).items():
            if required and name not in value:
                problems.append(f"{loc}.{name}: field required")
        return ok

    def string(value: Any, loc: str) -> str:
        if not isinstance(value, str):
            problems.append(f"{loc}: expected a string, got {value!r}")
            return ""
        return value

    top = mapping(
        raw, "", dict.fromkeys(("version", "active_stack", "components", "stacks"), False)
    )
    config = RepositoryConfig()
    if "version" in top:
        version = top["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            problems.append(f"version: expected an integer, got {version!r}")
        else:
            config.version = version
    if "active_stack" in top:
        config.active_stack = string(top["active_stack"], "active_stack")
    if "components" in top:
        config.components = {}
        for ctype, named in mapping(top["components"], "components").items():
            found = config.components[ctype] = {}
            for name, spec in mapping(named, f"components.{ctype}").items():
                loc = f"components.{ctype}.{name}"
                spec = mapping(spec, loc, {"flavor": True, "settings": False})
                flavor = string(spec["flavor"], f"{loc}.flavor") if "flavor" in spec else ""
                found[name] = ComponentConfig(
                    flavor, mapping(spec.get("settings", {}), f"{loc}.settings")
                )
    if "stacks" in top:
        parts = dict.fromkeys(COMPONENT_TYPES, True)
        for key, spec in mapping(top["stacks"], "stacks").items():
            spec = mapping(spec, f"stacks.{key}", parts)
            names = {c: string(v, f"stacks.{key}.{c}") for c, v in spec.items()}
            if len(names) == len(COMPONENT_TYPES):
                config.stacks[key] = StackConfig(**names)
    return (None, problems) if problems else (config, [])


def load_config(path: Path) -> RepositoryConfig:
    import yaml

    try:
        # libyaml's loader when present: every pipeline run reads this file.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = yaml.load(path.read_text(), Loader=loader) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(
            f"Cannot read the runstack config {path}: {e}. Fix the file, or move it away and "
            "run `runstack init` to write a fresh one (recorded runs are kept)."
        ) from e
    if not isinstance(raw, dict):
        raise ConfigError(
            f"The runstack config {path} must hold a mapping, not {type(raw).__name__}."
        )
    version = raw.get("version", CONFIG_VERSION)
    if isinstance(version, int) and version > CONFIG_VERSION:
        raise ConfigError(
            f"The runstack config {path} has version {version}, newer than this runstack "
            f"understands ({CONFIG_VERSION}). Upgrade runstack: pip install -U runstack."
        )
    config, problems = parse_config(raw)
    if config is None:
        raise ConfigError(f"The runstack config {path} is invalid: {'; '.join(problems)}.")
    for ctype in COMPONENT_TYPES:
        config.components.setdefault(ctype, {})
    check_references(config, path)
    return config


# Config file -> (its (mtime, size, inode) when read, what it held). Every pipeline run opens
# ``Repository()``: parsing and validating the YAML each time cost ~0.7 ms of a run.
_READ: dict[Path, tuple[tuple[int, int, int], RepositoryConfig]] = {}
_SETTLED_NS = 100_000_000  # 0.1 s, many clock ticks of a file system's timestamps


def cached_config(path: Path) -> RepositoryConfig:
    """``load_config(path)``, parsed again only when the file has changed since (a config is
    saved by replacing the file, so a new inode at least). The config returned is shared:
    read it, never change it (edits start from ``load_config``)."""
    try:
        st = path.stat()
    except OSError:
        return load_config(path)  # which says what is wrong with it
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    seen = _READ.get(path)
    if seen is not None and seen[0] == stamp:
        return seen[1]
    config = load_config(path)
    # A file changed within the clock tick of its last change may keep its mtime; one that
    # had not changed for a while when read has a new mtime after any change (as git does).
    if time.time_ns() - st.st_mtime_ns > _SETTLED_NS:
        _READ[path] = (stamp, config)  # changed again meanwhile: its stamp differs next time
    return config


def check_references(config: RepositoryConfig, path: Path) -> None:
    """Every stack names existing components, and the active stack exists."""
    for key, stack in config.stacks.items():
        for ctype in COMPONENT_TYPES:
            name = getattr(stack, ctype)
            if name not in config.components.get(ctype, {}):
                raise ConfigError(
                    f"Stack {key!r} in {path} uses {ctype} {name!r}, which is not registered. "
                    f"Register it (`runstack {ctype.replace('_', '-')} register {name} "
                    "--flavor ...`) or point the stack at an existing one."
                )
    if config.active_stack not in config.stacks:
        raise ConfigError(
            f"The active stack {config.active_stack!r} in {path} does not exist; set "
            f"`active_stack:` to one of {sorted(config.stacks)} (or `runstack stack set NAME`)."
        )


def save_config(path: Path, config: RepositoryConfig) -> None:
    """Write atomically, so a crash never leaves half a config file."""
    import tempfile

    import yaml

    text = _HEADER + yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
