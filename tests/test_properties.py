"""Property-based tests over output values and step signatures (issue 4)."""

from __future__ import annotations

import keyword
import math
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runstack.exceptions import DefinitionError
from runstack.materializers import Artifact, BuiltInMaterializer
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, StepContext, step

# -- values -------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=64)
)
hashables = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.frozensets(hashables, max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with exact types at every level (1 == 1.0 == True would hide a lossy write)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_builtin_materializer_round_trips_nested_values(value: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        BuiltInMaterializer(Artifact(folder)).handle_return(value)
        back = BuiltInMaterializer(Artifact(folder)).handle_input(type(value))
    assert same(back, value), (value, back)


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(value=values)
def test_any_value_survives_a_real_run_and_hashes_deterministically(
    repo: Repository, value: Any
) -> None:
    @step
    def emit() -> Any:
        return value

    @pipeline(enable_cache=False)
    def roundtrip(e):
        e()

    first = roundtrip(emit()).run().get_step("e").output
    second = roundtrip(emit()).run().get_step("e").output
    assert same(first.read(), value)
    if not isinstance(value, (set, frozenset)):  # set order may differ between writes
        assert first.content_hash == second.content_hash is not None


# -- signatures ---------------------------------------------------------------------------


class Cfg(BaseStepConfig):
    n: int = 1


KINDS = ["int", "str", "list", "bare", "config", "context", "default", "varargs", "varkw", "kwonly"]
NAMES = ["a", "b", "x", "data", "config", "ctx", "output", "model"]
OUT_NAMES = ["output", "model", "a", "config", "ctx", "class", "lambda", "score"]


@st.composite
def signatures(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[str] | None]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    params = [(n, draw(st.sampled_from(KINDS))) for n in names]
    if sum(k == "varargs" for _, k in params) > 1 or sum(k == "varkw" for _, k in params) > 1:
        params = [(n, "int" if k in ("varargs", "varkw") else k) for n, k in params]
    outputs = draw(
        st.none()
        | st.just([])
        | st.lists(st.sampled_from(OUT_NAMES), unique=True, min_size=1, max_size=3)
    )
    return params, outputs


def _source(params: list[tuple[str, str]], outputs: list[str] | None) -> str:
    annotation = {"int": ": int", "str": ": str", "list": ": list", "bare": ""}
    positional, star, kwonly = [], [], []
    for name, kind in params:
        if kind == "config":
            positional.append(f"{name}: Cfg")
        elif kind == "context":
            positional.append(f"{name}: StepContext")
        elif kind == "default":
            kwonly.append(f"{name}: int = 3")
        elif kind == "varargs":
            star.append(f"*{name}")
        elif kind == "varkw":
            kwonly.append(f"**{name}")
        elif kind == "kwonly":
            kwonly.append(f"{name}: int")
        else:
            positional.append(name + annotation[kind])
    kw_first = sorted(kwonly, key=lambda p: p.startswith("**"))  # **kwargs goes last
    marker = star or (["*"] if any(not p.startswith("**") for p in kw_first) else [])
    parts = positional + marker + kw_first
    ret = ""
    if outputs == []:
        ret = " -> int"
    elif outputs:
        ret = " -> Output(" + ", ".join(f"{n}=int" for n in outputs) + ")"
    return f"def generated({', '.join(parts)}){ret}:\n    return None\n"


def _expected_valid(params: list[tuple[str, str]], outputs: list[str] | None) -> bool:
    kinds = [k for _, k in params]
    if {"varargs", "varkw", "bare", "default"} & set(kinds):
        return False
    if kinds.count("config") > 1 or kinds.count("context") > 1:
        return False
    special = {n for n, k in params if k in ("config", "context")}
    outs = outputs or (["output"] if outputs == [] else [])  # -> int is named "output"
    if any(keyword.iskeyword(n) or not n.isidentifier() for n in outs):
        return False
    return not (set(outs) & special)


@settings(max_examples=400, deadline=None)
@given(sig=signatures())
def test_generated_signatures_define_a_step_or_raise_definition_error(sig: Any) -> None:
    params, outputs = sig
    source = _source(params, outputs)
    namespace: dict[str, Any] = {"Cfg": Cfg, "StepContext": StepContext, "Output": Output}
    try:
        exec(source, namespace)
    except SyntaxError:  # e.g. Output(class=int): not Python, so not our concern
        return
    try:
        defined = step(namespace["generated"])
    except DefinitionError as e:
        assert not _expected_valid(params, outputs), (source, e)
        assert "generated" in str(e)  # the message names the step
        return
    assert _expected_valid(params, outputs), source
    sig_ = defined.SIGNATURE
    plain = [n for n, k in params if k in ("int", "str", "list", "kwonly")]
    assert sorted(sig_.inputs) == sorted(plain)
    assert sig_.config_param == next((n for n, k in params if k == "config"), None)
    assert sig_.context_param == next((n for n, k in params if k == "context"), None)
    expected_outputs = outputs if outputs else (["output"] if outputs == [] else [])
    assert list(sig_.outputs) == expected_outputs
