"""The code part of cache keys: the step and the user code it reaches (issue 4)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runstack.execution._fingerprint import code_components, code_fingerprint
from runstack.metadata_stores import _schema as t
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStep, step
from user_code import Code, reasons, statuses, user_code


@pytest.fixture
def code(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from user_code(isolated, monkeypatch)


def test_closure_values_and_class_steps(repo: Repository) -> None:
    def make(k: int) -> type[BaseStep]:
        @step(name="scaled")
        def scaled() -> int:
            return 10 * k

        return scaled

    @pipeline
    def closing(s):
        s()

    closing(make(2)()).run()
    again = closing(make(2)()).run()
    assert statuses(again) == {"s": "cached"}
    changed = closing(make(3)()).run()
    assert statuses(changed) == {"s": "completed"}
    assert "closure variable `k`" in reasons(changed, "s") and "2 -> 3" in reasons(changed, "s")
    assert changed.get_step("s").output.read() == 30


def test_class_step_methods_are_part_of_its_code(code: Code, repo: Repository) -> None:
    code.write(
        "cls_steps",
        """
        from runstack.pipelines import pipeline
        from runstack.steps import BaseStep

        def helper():
            return 1

        class Produce(BaseStep):
            def entrypoint(self) -> int:
                return self.compute()

            def compute(self):
                return helper()

        @pipeline
        def cls_pipe(p):
            p()
        """,
    )
    mod = code.load("cls_steps")
    mod.cls_pipe(mod.Produce()).run()
    code.edit("cls_steps", "return 1", "return 2")
    mod = code.load("cls_steps")
    again = mod.cls_pipe(mod.Produce()).run()
    assert statuses(again) == {"p": "completed"}
    assert "code of helper `helper` (module `cls_steps`) changed" in reasons(again, "p")


def test_third_party_versions_are_in_the_key(repo: Repository) -> None:
    np = pytest.importorskip("numpy")

    @step
    def arr() -> int:
        return int(np.arange(3).sum())

    @pipeline
    def versions(a):
        a()

    assert code_components(arr)["packages"] == {"numpy": np.__version__}
    first = versions(arr()).run()
    # Pretend the first run used an older numpy: its key and recorded version differ.
    store = repo.active_stack.metadata_store
    comps = dict(first.get_step("a").cache_components)
    comps["code"] = {**comps["code"], "packages": {"numpy": "1.0.0"}}
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t.steps)
            .where(t.steps.c.id == first.get_step("a").id)
            .values(cache_key="0" * 64, cache_components=comps)
        )
    again = versions(arr()).run()
    assert f"package `numpy` 1.0.0 -> {np.__version__}" in reasons(again, "a")


def test_fingerprint_without_source_uses_bytecode() -> None:
    def make(value: int) -> type[BaseStep]:
        namespace: dict[str, Any] = {"step": step, "__name__": "__main__"}
        exec(f"@step\ndef nosource() -> int:\n    return {value}\n", namespace)
        return namespace["nosource"]

    a, b, c = make(1), make(1), make(2)
    assert code_fingerprint(a) == code_fingerprint(b) != code_fingerprint(c)


SCRIPT = """
import sys
from runstack.pipelines import pipeline
from runstack.steps import step

OFFSET = {offset}

def helper(x):
    return x + OFFSET

@step
def produce() -> int:
    return helper(1)

@pipeline
def inline(produce):
    produce()

r = inline(produce()).run(run_name=sys.argv[1])
print("STATUS", r.get_step("produce").status.value)
print("WHY", str(r.get_step("produce").cache_explanation).replace("\\n", " | "))
"""


@pytest.mark.slow
def test_steps_defined_in_main_without_a_source_file(repo: Repository) -> None:
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo.root), "RUNSTACK_PROGRESS": "off"}

    def go(offset: int, name: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(offset=offset), name],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "STATUS completed" in go(1, "m1")
    assert "STATUS cached" in go(1, "m2")
    out = go(2, "m3")
    assert "STATUS completed" in out and "constant `OFFSET` (module `__main__`) 1 -> 2" in out


def test_helpers_behind_lru_cache_and_partial_are_followed(code: Code, repo: Repository) -> None:
    code.write(
        "wrapped",
        """
        import functools
        from runstack.pipelines import pipeline
        from runstack.steps import step

        @functools.lru_cache
        def cached_helper(x):
            return x + 1

        def scaled(x, k):
            return x * k

        triple = functools.partial(scaled, k=3)

        @step
        def use() -> int:
            return cached_helper(1) + triple(1)

        @pipeline
        def wrapping(u):
            u()
        """,
    )
    mod = code.load("wrapped")
    assert set(code_components(mod.use)["helpers"]) == {
        "wrapped:cached_helper",
        "wrapped:scaled",
    }
    mod.wrapping(mod.use()).run()
    code.edit("wrapped", "return x + 1", "return x + 2")
    mod = code.load("wrapped")
    again = mod.wrapping(mod.use()).run()
    assert "code of helper `cached_helper` (module `wrapped`) changed" in reasons(again, "u")
    code.edit("wrapped", "k=3", "k=4")
    mod = code.load("wrapped")
    third = mod.wrapping(mod.use()).run()
    assert third.get_step("u").status is ExecutionStatus.COMPLETED
    assert third.get_step("u").output.read() == 3 + 4
    assert "constant `triple` (module `wrapped`)" in reasons(third, "u")


def test_notebook_cells_that_rebind_names_invalidate_without_a_new_step_class(
    repo: Repository,
) -> None:
    # A notebook: one namespace, cells executed one after another, no source files.
    cells = {"__name__": "__main__", "step": step, "pipeline": pipeline}

    def cell(source: str) -> None:
        exec(textwrap.dedent(source), cells)

    cell(
        """
        SCALE = 3

        def helper(x):
            return x * SCALE

        @step
        def nb() -> int:
            return helper(2)

        @pipeline
        def notebook(s):
            s()
        """
    )
    nb = cells["nb"]
    first = code_fingerprint(nb)
    assert code_fingerprint(nb) == first  # cached: nothing changed
    assert cells["notebook"](nb()).run().get_step("s").output.read() == 6

    cell("SCALE = 5")  # re-running a cell rebinds a constant the step reaches
    assert code_fingerprint(nb) != first
    again = cells["notebook"](nb()).run()
    assert again.get_step("s").output.read() == 10
    assert "constant `SCALE` (module `__main__`) 3 -> 5" in reasons(again, "s")

    cell("def helper(x):\n    return x * SCALE + 1\n")  # a redefined helper, same step class
    third = cells["notebook"](nb()).run()
    assert third.get_step("s").output.read() == 11
    assert "code of helper `helper` (module `__main__`) changed" in reasons(third, "s")


def test_objects_that_resist_inspection_do_not_fail_the_run(repo: Repository) -> None:
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"no attribute access here ({name})")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    hostile = Hostile()

    @step
    def uses_it() -> int:
        return 1 if hostile is not None else 0

    @pipeline
    def resisting(s):
        s()

    assert resisting(uses_it()).run().get_step("s").output.read() == 1


def test_attribute_names_are_not_taken_for_globals(code: Code, repo: Repository) -> None:
    # A script with a module-level `lr` (a loop variable) and a step reading `config.lr`.
    code.write(
        "attr_steps",
        """
        from runstack.pipelines import pipeline
        from runstack.steps import BaseStepConfig, step

        class Cfg(BaseStepConfig):
            lr: float = 0.1

        lr = "a"

        @step
        def train(config: Cfg) -> float:
            return config.lr * 2

        @pipeline
        def attr_pipe(t):
            t()
        """,
    )
    mod = code.load("attr_steps")
    mod.attr_pipe(mod.train()).run()
    code.edit("attr_steps", 'lr = "a"', 'lr = "b"')
    mod = code.load("attr_steps")
    assert "attr_steps:lr" not in code_components(mod.train)["constants"]
    again = mod.attr_pipe(mod.train()).run()
    assert statuses(again) == {"t": "cached"}, reasons(again, "t")
