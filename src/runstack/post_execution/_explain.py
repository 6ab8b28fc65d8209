"""Why a step was reused from the cache, or why it ran.

The step runner stores the components of each step's cache key together with a ``decision``
(hit, miss, disabled; for a miss, earlier executions passed over because artifacts were
missing or damaged, and why). A miss is explained by comparing the components with those of
the latest earlier successful execution of the same step of the same pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from runstack.metadata_stores import SQLMetadataStore
from runstack.models import StepRecord

_SHOW = 60


@dataclass(frozen=True)
class CacheExplanation:
    """The cache decision for one step execution; ``str()`` gives it as sentences."""

    step: str
    run: str
    cached: bool
    reasons: tuple[str, ...] = ()
    source_step_id: int | None = None  # on a hit: the execution whose outputs were reused
    source_run: str | None = None
    compared_with_run: str | None = None  # on a miss: the execution the components came from
    components: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        if self.cached:
            return (
                f"Step {self.step!r} in run {self.run!r} was cached: it reused the outputs of "
                f"step #{self.source_step_id} in run {self.source_run!r} (same code, config, "
                "inputs and materializers)."
            )
        why = "\n".join(f"  - {r}" for r in self.reasons)
        against = (
            f" (compared with run {self.compared_with_run!r})" if self.compared_with_run else ""
        )
        return f"Step {self.step!r} in run {self.run!r} ran, not cached{against}:\n{why}"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _split(key: str) -> tuple[str, str]:
    module, _, name = key.rpartition(":")
    return module, name


@dataclass(frozen=True)
class ComponentChange:
    """One part of a step's cache key that differs between two executions.

    ``component`` is one of ``format``, ``step_code``, ``helper``, ``constant``, ``closure``,
    ``package``, ``parameter``, ``input``, ``materializer``; ``name`` says which one (a helper's
    ``module:qualname``, a parameter's or input's name; ``""`` for the step's code and the
    format). ``before`` / ``after`` are the recorded values (source hashes for code, versions
    for packages, content hashes for inputs), None on the side where it is absent, as
    ``change`` (``added``, ``removed``, ``changed``) says. ``description`` is the sentence that
    ``step explain`` prints.
    """

    component: str
    name: str
    before: Any
    after: Any
    change: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dict_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old, new) for keys added, removed or changed; a missing side is ``...``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, ...), new.get(key, ...)
        if a != b:
            out.append((key, a, b))
    return out


def _changes(
    component: str,
    old: dict[str, Any],
    new: dict[str, Any],
    describe: Callable[[str], str],
    added: Callable[[str, Any], str] = lambda what, b: f"{what} unset -> {_show(b)}",
    removed: Callable[[str, Any], str] = lambda what, a: f"{what} {_show(a)} -> unset",
    changed: Callable[[str, Any, Any], str] = lambda what, a, b: f"{what} {_show(a)} -> {_show(b)}",
) -> list[ComponentChange]:
    """One change per key added, removed or changed between two component dicts (by default
    said as ``<what> <old> -> <new>``, ``unset`` for a side without it)."""
    out = []
    for key, a, b in _dict_diff(old, new):
        what = describe(key)
        if a is ...:
            out.append(ComponentChange(component, key, None, b, "added", added(what, b)))
        elif b is ...:
            out.append(ComponentChange(component, key, a, None, "removed", removed(what, a)))
        else:
            out.append(ComponentChange(component, key, a, b, "changed", changed(what, a, b)))
    return out


def _in_module(kind: str) -> Callable[[str], str]:
    def describe(key: str) -> str:
        module, name = _split(key)
        return f"{kind} `{name}` (module `{module}`)"

    return describe


def _code_changes(step: str, old: dict[str, Any], new: dict[str, Any]) -> list[ComponentChange]:
    out = []
    if old.get("step") != new.get("step"):
        out.append(
            ComponentChange(
                "step_code",
                "",
                old.get("step"),
                new.get("step"),
                "changed",
                f"code of step `{step}` changed",
            )
        )
    out += _changes(
        "helper",
        old.get("helpers", {}),
        new.get("helpers", {}),
        _in_module("helper"),
        added=lambda what, b: f"code now uses {what}",
        removed=lambda what, a: f"code no longer uses {what}",
        changed=lambda what, a, b: f"code of {what} changed",
    )
    out += _changes(
        "constant",
        old.get("constants", {}),
        new.get("constants", {}),
        _in_module("constant"),
        added=lambda what, b: f"code now uses {what} = {_show(b)}",
        removed=lambda what, a: f"code no longer uses {what}",
        changed=lambda what, a, b: f"{what} {_show(a)} -> {_show(b)}",
    )
    out += _changes(
        "closure",
        old.get("closures", {}),
        new.get("closures", {}),
        lambda key: "closure variable `{1}` of `{0}`".format(*_split(key)),
    )
    out += _changes(
        "package",
        old.get("packages", {}),
        new.get("packages", {}),
        lambda key: f"package `{key}`",
        added=lambda what, b: f"code now uses {what} ({b})",
        removed=lambda what, a: f"code no longer uses {what}",
        changed=lambda what, a, b: f"{what} {a} -> {b}",
    )
    return out


def _input_sentence(key: str, a: Any, b: Any) -> str:
    if a is ... or b is ...:
        return f"input `{key}` {'added' if a is ... else 'removed'}"
    if str(b).startswith("artifact:"):
        return (
            f"input `{key}` changed (a new artifact without a content hash: too large to "
            "hash, so it counts as new data)"
        )
    return f"input `{key}` changed (content hash)"


def component_changes(step: str, old: dict[str, Any], new: dict[str, Any]) -> list[ComponentChange]:
    """Every component of a cache key that differs between components ``old`` and ``new``
    (as the step runner stores them; ``step`` names the step in the sentences). The pipeline
    and slot names are left out: they are what the two executions are matched by."""
    if old.get("format") != new.get("format"):
        return [
            ComponentChange(
                "format",
                "",
                old.get("format"),
                new.get("format"),
                "changed",
                "the cache key format changed (runstack was upgraded)",
            )
        ]
    out = _code_changes(step, old.get("code", {}), new.get("code", {}))
    out += _changes(
        "parameter",
        old.get("parameters", {}),
        new.get("parameters", {}),
        lambda key: f"config `{key}`",
        added=lambda what, b: f"{what} added (= {_show(b)})",
        removed=lambda what, a: f"{what} removed (was {_show(a)})",
        changed=lambda what, a, b: f"{what} {_show(a)} -> {_show(b)}",
    )
    out += _changes(
        "input",
        old.get("inputs", {}),
        new.get("inputs", {}),
        str,
        added=lambda key, b: _input_sentence(key, ..., b),
        removed=lambda key, a: _input_sentence(key, a, ...),
        changed=_input_sentence,
    )
    out += _changes(
        "materializer",
        old.get("materializers", {}),
        new.get("materializers", {}),
        lambda key: f"materializer of output `{key}`",
    )
    return out


def compare(step: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Reasons, in words, why components ``new`` give another key than ``old``."""
    return [c.description for c in component_changes(step, old, new)]


def _stored(record: StepRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    comps = dict(record.cache_components or {})
    decision = comps.pop("decision", None) or {}
    return comps, decision


def explain(store: SQLMetadataStore, record: StepRecord, run_name: str) -> CacheExplanation:
    """Explain the cache decision recorded for one step execution."""
    comps, decision = _stored(record)
    base: dict[str, Any] = {"step": record.name, "run": run_name, "components": comps}
    if record.cached_from_step_id is not None:
        source = record.cached_from_step_id
        source_run = decision.get("run") or store.run_names_of_steps([source]).get(source)
        return CacheExplanation(**base, cached=True, source_step_id=source, source_run=source_run)
    if not comps:
        return CacheExplanation(
            **base,
            cached=False,
            reasons=(
                "no cache information was recorded for this step (it ran before "
                "runstack stored cache keys, or failed before its inputs were loaded)",
            ),
        )
    reasons: list[str] = []
    if decision.get("outcome") == "disabled":
        reasons.append(f"caching disabled by the {decision.get('by', 'step')}")
    passed = decision.get("artifacts_missing") or []
    if passed:
        runs = store.run_names_of_steps([p["step_id"] for p in passed])
        for p in passed:
            why = p.get("why")
            if why:  # recorded since the cache checks each file's presence and size
                damaged = "; ".join(f"`{m}`: {problem}" for m, problem in why.items())
                reasons.append(
                    f"earlier artifact missing or damaged: step #{p['step_id']} in run "
                    f"{runs.get(p['step_id'])!r} had the same key, but its output(s) fail "
                    f"the artifact check ({damaged})"
                )
                continue
            missing = ", ".join(f"`{m}`" for m in p["missing"])
            reasons.append(
                f"earlier artifact missing: step #{p['step_id']} in run "
                f"{runs.get(p['step_id'])!r} had the same key, but its output(s) {missing} are "
                "gone from the artifact store"
            )
    if reasons:
        return CacheExplanation(**base, cached=False, reasons=tuple(reasons))
    previous_id = store.previous_successful_step(record.id)
    previous = store.get_step_by_id(previous_id) if previous_id is not None else None
    if previous is None:
        return CacheExplanation(
            **base,
            cached=False,
            reasons=(f"first successful execution of step `{record.name}` in this pipeline",),
        )
    old, old_decision = _stored(previous)
    prev_run = store.run_names_of_steps([previous.id]).get(previous.id)
    reasons = compare(record.entrypoint_name, old, comps) if old else []
    if not old:
        reasons = ["the earlier execution recorded no cache information"]
    elif not reasons and old_decision.get("outcome") == "disabled":
        reasons = [
            f"the earlier execution (run {prev_run!r}) ran with caching disabled, so it left "
            "nothing to reuse; this one will be reused from now on"
        ]
    elif not reasons:
        reasons = ["no earlier successful execution had the same cache key"]
    return CacheExplanation(
        **base, cached=False, reasons=tuple(reasons), compared_with_run=prev_run
    )
