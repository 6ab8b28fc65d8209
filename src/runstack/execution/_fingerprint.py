"""Fingerprints of step code for cache keys: the step and the user code it reaches.

Starting at the step's entrypoint (or every method of a class-based step), the walk follows
the names its bytecode loads as globals (``LOAD_GLOBAL``; an attribute name such as the
``lr`` of ``config.lr`` is not one) through the function's globals, and its closure cells:

* functions and classes defined in the user's own modules (not the standard library, not
  site-packages, not runstack) are hashed by source (bytecode where no source exists, as in
  ``python -c``, ``exec`` or some REPLs) and walked in turn, so helper-of-helper changes count;
* module-level constants and closure values that are plain data (numbers, strings, bytes and
  containers of them) enter by value;
* any other object only contributes the version of the distribution its module comes from,
  so upgrading ``numpy`` or ``scikit-learn`` invalidates steps that use them.

The result is computed once per step class per process, and again only when a global or
closure variable the walk looked up has been rebound (a re-run notebook cell, a reload).
"""

from __future__ import annotations

import contextlib
import dis
import enum
import functools
import hashlib
import inspect
import json
import os
import sys
import types
from typing import Any

# step class -> (components, digest, what the walk looked up: to notice a rebinding)
_cache: dict[type, tuple[dict[str, Any], str, list[tuple[Any, str, Any]]]] = {}
_MISSING = object()
_module_kind: dict[str, str] = {}  # module name -> "user" | "stdlib" | "third_party" | "runstack"
_versions: dict[str, str | None] = {}
_dists: Any = None  # importlib.metadata.packages_distributions(), loaded on first need

_REPR_LIMIT = 80  # plain values with a longer repr are stored as a hash
_ITEM_LIMIT = 10_000  # bigger containers are not "constants"; they are left out of the key


def _short(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# -- what counts as user code ---------------------------------------------------------------


def _library_roots() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(
        p for p in sys.path if p.rstrip(os.sep).endswith(("site-packages", "dist-packages"))
    )
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


_roots: tuple[str, ...] | None = None


def module_kind(name: str | None) -> str:
    """Classify a module by where it lives; unknown and ``__main__`` code counts as user code."""
    if not name or name == "__main__":
        return "user"
    found = _module_kind.get(name)
    if found is not None:
        return found
    top = name.partition(".")[0]
    if top == "runstack":
        kind = "runstack"
    elif top in sys.stdlib_module_names or top == "builtins":
        kind = "stdlib"
    else:
        module = sys.modules.get(name) or sys.modules.get(top)
        path = getattr(module, "__file__", None)
        global _roots
        if _roots is None:
            _roots = _library_roots()
        if path is None:
            kind = "third_party" if _dist_version(top) else "user"
        else:
            real = os.path.realpath(path)
            kind = "third_party" if real.startswith(_roots) else "user"
    _module_kind[name] = kind
    return kind


def _dist_version(top: str) -> str | None:
    """Version of the distribution providing the top-level package ``top`` (None if unknown)."""
    if top in _versions:
        return _versions[top]
    import importlib.metadata  # ~30 ms to import: only once a library is referenced

    version = None
    try:
        version = importlib.metadata.version(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        global _dists
        if _dists is None:  # slow (scans every installed distribution): only when needed
            _dists = dict(importlib.metadata.packages_distributions())
        for dist in _dists.get(top, ()):
            try:
                version = f"{dist}=={importlib.metadata.version(dist)}"
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    _versions[top] = version
    return version


# -- hashing values and code ----------------------------------------------------------------


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, enum.Enum)):
        return True
    if depth > 4 or not isinstance(value, (tuple, list, frozenset, set, dict)):
        return False
    if len(value) > _ITEM_LIMIT:
        return False
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return all(_plain(v, depth + 1) for v in value)


def _stable_repr(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(_stable_repr(v) for v in value)})"
    if isinstance(value, dict):
        items = sorted((_stable_repr(k), _stable_repr(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_stable_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def value_token(value: Any) -> str:
    """A plain value as shown in explanations: its repr, or a hash of a long one."""
    text = _stable_repr(value)
    return text if len(text) <= _REPR_LIMIT else "sha256:" + _short(text.encode())


def _code_bytes(code: types.CodeType) -> bytes:
    """Bytecode, names and constants (nested code too), without file names or line numbers."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(
            _code_bytes(const) if isinstance(const, types.CodeType) else repr(const).encode()
        )
    return b"\0".join(parts)


# ``co_names`` mixes globals with attribute names (``config.lr`` lists ``lr``); only these
# opcodes look a name up in the function's globals (IMPORT_NAME: a module imported inside it).
_GLOBAL_OPS = frozenset(
    {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "IMPORT_NAME"}
)
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"})


def _names(code: types.CodeType) -> tuple[set[str], set[str]]:
    """The names ``code`` (nested code too) loads as globals, and those it loads as
    attributes (which pick what is used of a module the code refers to)."""
    globals_: set[str] = set()
    attrs: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in _GLOBAL_OPS:
            globals_.add(ins.argval)
        elif ins.opname in _ATTR_OPS:
            attrs.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            inner_globals, inner_attrs = _names(const)
            globals_ |= inner_globals
            attrs |= inner_attrs
    return globals_, attrs


def _source_hash(obj: Any) -> str:
    try:
        return _short(inspect.getsource(obj).encode())
    except (OSError, TypeError):
        pass
    if inspect.isclass(obj):  # no source: hash its methods' bytecode
        parts = [obj.__qualname__.encode()]
        for name, member in sorted(vars(obj).items()):
            func = _function_of(member)
            if func is not None:
                parts.append(name.encode() + _code_bytes(func.__code__))
        return _short(b"\0".join(parts))
    return _short(_code_bytes(obj.__code__))


def _function_of(member: Any) -> types.FunctionType | None:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    member = inspect.unwrap(member) if callable(member) else member
    return member if isinstance(member, types.FunctionType) else None


# -- the walk -------------------------------------------------------------------------------


class _Walk:
    def __init__(self) -> None:
        self.helpers: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.closures: dict[str, str] = {}
        self.packages: dict[str, str] = {}
        self.seen: set[int] = set()
        # (namespace or closure cell, name, object found): a notebook cell or importlib.reload
        # that rebinds any of these makes the fingerprint stale; checking is a few dict lookups.
        self.looked_up: list[tuple[Any, str, Any]] = []

    def function(self, func: types.FunctionType) -> None:
        if id(func) in self.seen:
            return
        self.seen.add(id(func))
        code = func.__code__
        globals_, names = _names(code)
        module = func.__module__
        namespace = func.__globals__
        for name in sorted(globals_):
            if name in namespace:
                self.looked_up.append((namespace, name, namespace[name]))
                self.value(namespace[name], name, module, names)
        for var, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: the variable was never assigned
                continue
            self.looked_up.append((cell, "", value))
            if _plain(value):
                self.closures[f"{func.__qualname__}:{var}"] = value_token(value)
            else:
                self.value(value, var, module, names)

    def klass(self, cls: type) -> None:
        if id(cls) in self.seen:
            return
        self.seen.add(id(cls))
        for member in vars(cls).values():
            func = _function_of(member)
            if func is not None:
                self.function(func)

    def value(self, value: Any, name: str, module: str, names: set[str]) -> None:
        # A proxy whose attributes raise, an object whose repr fails... counts like any other
        # opaque object: inspecting the code must never fail the run.
        with contextlib.suppress(Exception):
            self._value(value, name, module, names)

    def _value(self, value: Any, name: str, module: str, names: set[str]) -> None:
        if isinstance(value, functools.partial):  # partial(helper, 3): the helper and its args
            bound = (value.args, dict(sorted(value.keywords.items())))
            if _plain(bound):
                self.constants[f"{module}:{name}"] = value_token(bound)
            else:
                for arg in (*value.args, *value.keywords.values()):
                    self.value(arg, name, module, names)
            value = value.func
        if callable(value) and hasattr(value, "__wrapped__"):  # lru_cache and other wrappers
            value = inspect.unwrap(value)
        if isinstance(value, types.ModuleType):
            kind = module_kind(value.__name__)
            if kind == "user":
                if id(value) in self.seen:
                    return
                self.seen.add(id(value))
                attrs = vars(value)
                for attr in sorted(names):  # only what this code uses from the module
                    if attr in attrs:
                        self.looked_up.append((attrs, attr, attrs[attr]))
                        self.value(attrs[attr], attr, value.__name__, names)
            elif kind == "third_party":
                self.package(value.__name__)
            return
        if inspect.isfunction(value) or inspect.isclass(value):
            target = inspect.unwrap(value) if inspect.isfunction(value) else value
            if id(target) in self.seen:
                return
            owner = getattr(target, "__module__", None)
            kind = module_kind(owner)
            if kind == "user":
                key = f"{owner}:{target.__qualname__}"
                if key not in self.helpers:
                    self.helpers[key] = _source_hash(target)
                    if inspect.isclass(target):
                        self.klass(target)
                    else:
                        self.function(target)
            elif kind == "third_party" and owner:
                self.package(owner)
            return
        if _plain(value):
            if not isinstance(value, enum.Enum) or module_kind(type(value).__module__) == "user":
                self.constants[f"{module}:{name}"] = value_token(value)
            return
        # Any other object (a built-in function, an instance): its type's library version.
        owner = getattr(value, "__module__", None) or type(value).__module__
        kind = module_kind(owner if isinstance(owner, str) else None)
        if kind == "third_party":
            self.package(owner)
        elif kind == "user" and module_kind(type(value).__module__) == "user":
            self.value(type(value), type(value).__name__, module, names)

    def package(self, module: str) -> None:
        top = module.partition(".")[0]
        if top not in self.packages:
            self.packages[top] = _dist_version(top) or "unknown"


def _unchanged(looked_up: list[tuple[Any, str, Any]]) -> bool:
    for where, name, obj in looked_up:
        if isinstance(where, dict):
            if where.get(name, _MISSING) is not obj:
                return False
        else:
            try:
                if where.cell_contents is not obj:
                    return False
            except ValueError:
                return False
    return True


def _cached(step_class: type) -> tuple[dict[str, Any], str]:
    found = _cache.get(step_class)
    if found is None or not _unchanged(found[2]):
        found = _compute(step_class)
        _cache[step_class] = found
    return found[0], found[1]


def code_components(step_class: type) -> dict[str, Any]:
    """What the code part of a step's cache key is made of (see docs/caching.md).

    Computed once per step class per process, and again only if a name the step's code
    reached has been rebound since (a re-run notebook cell, ``importlib.reload``).
    """
    return _cached(step_class)[0]


def code_fingerprint(step_class: type) -> str:
    """One digest of :func:`code_components`."""
    return _cached(step_class)[1]


def _compute(step_class: type) -> tuple[dict[str, Any], str, list[tuple[Any, str, Any]]]:
    func = step_class.entrypoint_function()  # type: ignore[attr-defined]
    function_step = isinstance(step_class.__dict__.get("entrypoint"), staticmethod)
    walk = _Walk()
    if function_step:
        walk.seen.add(id(step_class))  # the decorator's class is not code of its own
        own = _source_hash(func)
        walk.function(func)
    else:
        own = _source_hash(step_class)
        walk.klass(step_class)
        for base in step_class.__mro__[1:]:  # user-defined base step classes are helpers
            if module_kind(base.__module__) == "user":
                walk.value(base, base.__name__, base.__module__, set())
    components = {
        "step": own,
        "helpers": dict(sorted(walk.helpers.items())),
        "constants": dict(sorted(walk.constants.items())),
        "closures": dict(sorted(walk.closures.items())),
        "packages": dict(sorted(walk.packages.items())),
    }
    digest = hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest()
    return components, digest, walk.looked_up
