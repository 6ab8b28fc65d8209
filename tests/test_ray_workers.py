"""The ray orchestrator with what runs around it: object storage, scripts, missing code or Ray.

On the session's local Ray instance (``tests/ray_support.py``); see test_ray.py for scheduling.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

from ray_support import SRC, recorded, use_ray
from runstack.exceptions import StepExecutionError
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, StepContext, step
from s3_support import S3Bucket


@pipeline
def single(step_):
    step_()


# -- object storage, __main__ scripts, a missing Ray --------------------------------------


@step
def produce() -> Output(numbers=list, label=str):
    print("producing on ray")
    return list(range(2000)), "abc"  # numbers: too big to be kept inline, so a file on S3


@step
def consume(numbers: list, label: str) -> str:
    return f"{label}:{sum(numbers)}"


@pipeline
def simple(first, second):
    numbers, label = first()
    second(numbers, label)


def test_a_run_on_ray_writes_to_an_s3_artifact_store(ray_address, repo, s3: S3Bucket):
    repo.register_component(
        "artifact_store", "s3", "fsspec", {"url": s3.url, "storage_options": s3.storage_options}
    )
    use_ray(repo, artifact_store="s3")
    run = simple(produce(), consume()).run(run_name="s3-ray")
    assert run.get_step("second").output.read() == f"abc:{sum(range(2000))}"
    numbers = run.get_step("first").outputs["numbers"]
    assert not numbers.is_inline and numbers.uri.startswith(s3.url + "/")
    assert numbers.read() == list(range(2000))
    assert "producing on ray" in run.get_step("first").logs
    keys = s3.object_keys()
    assert any(k.startswith(numbers.uri.removeprefix(f"s3://{s3.name}/")) for k in keys)
    again = simple(produce(), consume()).run(run_name="s3-ray-again")
    assert all(s.is_cached for s in again.steps)


SCRIPT = """
import os
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step

@step
def where() -> int:
    return os.getpid()

@step
def double(pid: int) -> int:
    return 2

@pipeline
def script_pipeline(first, second):
    second(first())

repo = Repository.init(".")
repo.register_component("orchestrator", "ray", "ray", {})  # no address: ray.init()
repo.register_stack("ray", orchestrator="ray", metadata_store="local",
                    artifact_store="local", activate=True)
run = script_pipeline(where(), double()).run()
worker_pid = run.get_step("first").output.read()
print("ran on a worker:", worker_pid != os.getpid(), run.get_step("second").output.read())
"""


def test_steps_defined_in_a_main_script_run_on_ray(ray_address, tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    # No address set: the orchestrator's ray.init() joins the instance RAY_ADDRESS names.
    env = {**os.environ, "PYTHONPATH": str(SRC), "RAY_ADDRESS": ray_address}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran on a worker: True 2" in done.stdout


INTERRUPTED = """
import pathlib, signal, time
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step

signal.signal(signal.SIGINT, signal.default_int_handler)  # a test's child ignores it

@step(enable_cache=False)
def nap() -> int:
    pathlib.Path(MARKER).touch()  # the worker's own argv and cwd are not the script's
    time.sleep(120)
    return 1

@pipeline
def napping(first):
    first()

repo = Repository.init(".")
repo.register_component("orchestrator", "ray", "ray", {})
repo.register_stack("ray", orchestrator="ray", metadata_store="local",
                    artifact_store="local", activate=True)
try:
    napping(nap()).run(run_name="interrupted")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_while_a_step_runs_on_ray_records_it_failed(ray_address, tmp_path):
    script = tmp_path / "napping.py"
    marker = tmp_path / "started.marker"
    script.write_text(INTERRUPTED.replace("MARKER", repr(str(marker))))
    env = {**os.environ, "PYTHONPATH": str(SRC), "RAY_ADDRESS": ray_address}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the step never started on a worker"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        # The driver waits on Ray for the step: Ctrl-C must reach it long before the nap ends.
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert "interrupted" in out, err[-3000:]
    run = Repository(tmp_path).get_pipeline("napping").get_run("interrupted")
    assert run.status is ExecutionStatus.FAILED
    step_ = run.get_step("first")
    assert step_.status is ExecutionStatus.FAILED and "KeyboardInterrupt" in step_.error


ONLY_ON_THE_DRIVER = """
from runstack.steps import step

@step
def hidden() -> int:
    return 1
"""


def test_a_step_whose_module_workers_cannot_import_fails_saying_so(
    ray_address, repo, tmp_path, monkeypatch
):
    mods = tmp_path / "driver_only"
    mods.mkdir()
    (mods / "driver_only_steps.py").write_text(ONLY_ON_THE_DRIVER)
    monkeypatch.syspath_prepend(str(mods))  # importable here, not on the Ray workers
    from driver_only_steps import hidden  # type: ignore[import-not-found]

    use_ray(repo)
    with pytest.raises(StepExecutionError, match="Cannot load the step on Ray worker") as info:
        single(step_=hidden()).run(run_name="unimportable")
    assert "No module named 'driver_only_steps'" in str(info.value)
    assert "runtime_env" in str(info.value)
    assert recorded("unimportable").status is ExecutionStatus.FAILED


BLOCK_RAY = "import sys; sys.modules['ray'] = None  # as if Ray were not installed\n"


def test_without_ray_the_flavor_list_and_a_run_say_how_to_install_it(repo, tmp_path):
    use_ray(repo)
    code = BLOCK_RAY + textwrap.dedent(
        """
        from click.testing import CliRunner
        from runstack.cli import main
        print(CliRunner().invoke(main, ["orchestrator", "flavors", "--json"]).output)
        from runstack.exceptions import ConfigError
        from runstack.pipelines import pipeline
        from runstack.repository import Repository
        from runstack.steps import step

        @step
        def one() -> int:
            return 1

        @pipeline
        def p(s):
            s()

        try:
            p(one()).run(run_name="no-ray")
        except ConfigError as e:
            print("ERROR:", e)
        print("RUN:", Repository().active_stack.history.get_run("no-ray").status.value)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listing = json.loads(done.stdout[: done.stdout.index("ERROR:")])
    ray_row = next(r for r in listing if r["flavor"] == "ray")
    assert ray_row["installed"] is False
    assert ray_row["install"] == "pip install 'runstack[ray]'"
    assert set(ray_row["settings"]) == {"address", "runtime_env", "check_resources"}
    assert "needs Ray, which is not installed" in done.stdout
    assert "pip install 'runstack[ray]'" in done.stdout.split("ERROR:")[1]
    assert "RUN: failed" in done.stdout


def test_the_sweep_example_runs_on_ray_and_reuses_a_parallel_run(ray_address, repo, isolated):
    from test_example_sweep import run_sweep

    on_ray = run_sweep(isolated, "--orchestrator", "ray", "--address", ray_address)
    assert "best: trial_0 alpha=0.001" in on_ray and "on ray" in on_ray
    assert "0 of 5 steps cached" in on_ray
    # Another orchestrator, the same stores: the same cache keys.
    on_parallel = run_sweep(isolated, "--orchestrator", "parallel", "--workers", "2")
    assert "5 of 5 steps cached" in on_parallel


POSTGRESQL = os.environ.get(
    "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server (never skipped: fails if it is down)."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRESQL, isolation_level="AUTOCOMMIT")
    name = f"rs_ray_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(POSTGRESQL).set(database=name).render_as_string(hide_password=False)
    finally:
        from runstack.stack import _flavors

        for store in _flavors._stores.values():
            store.dispose()
        _flavors._stores.clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@step(enable_cache=False)
def runs_so_far(context: StepContext, label: str) -> int:
    """Opens the PostgreSQL store on the Ray worker, through the step's context."""
    return len(context.metadata_store.get_pipeline("team_pipe").runs)


@pipeline
def team_pipe(first, second):
    _, label = first()
    second(label)


def test_a_run_on_ray_recorded_in_postgresql(ray_address, repo, postgresql_url):
    repo.register_component("metadata_store", "team-db", "postgresql", {"url": postgresql_url})
    repo.register_component("orchestrator", "ray", "ray", {})
    repo.register_stack(
        "team", orchestrator="ray", metadata_store="team-db", artifact_store="local", activate=True
    )
    first = team_pipe(produce(), runs_so_far()).run(run_name="pg-1")
    assert first.get_step("second").output.read() == 1  # this run, seen from the worker
    again = team_pipe(produce(), runs_so_far()).run(run_name="pg-2")
    assert again.get_step("first").is_cached
    assert again.get_step("second").output.read() == 2
    runs = Repository().get_pipeline("team_pipe").runs
    assert [(r.name, r.status) for r in runs] == [
        ("pg-1", ExecutionStatus.COMPLETED),
        ("pg-2", ExecutionStatus.COMPLETED),
    ]
