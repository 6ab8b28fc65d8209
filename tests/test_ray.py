"""The ray orchestrator on a real local Ray instance (one for the module, 2 CPUs; never skipped).

Steps here are tiny: what is tested is scheduling, records, caching, failures and resources,
not Ray's speed (see ``python -m bench --only fanout``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import runstack
from runstack.exceptions import ConfigError, StepExecutionError, StepTimeoutError
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, StepContext, step
from s3_support import S3Bucket

_warm_up: Any = None
TESTS = Path(__file__).resolve().parent
SRC = Path(runstack.__file__).resolve().parents[1]


def _warm_up_fn() -> None:
    import runstack.execution._task  # noqa: F401

    time.sleep(0.5)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance for the whole module; its workers import this runstack and tests."""
    import ray

    global _warm_up
    _warm_up = ray.remote(_warm_up_fn)
    # Workers inherit the environment of the Ray processes started here.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), str(TESTS), old) if p)
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    # Start both workers now, with runstack imported: a step that waits for a cold worker
    # would blur the overlap the tests look for.
    ray.get([_warm_up.options(num_cpus=1).remote() for _ in range(2)])
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


def recorded(run_name: str):  # type: ignore[no-untyped-def]
    return Repository().active_stack.history.get_run(run_name)


def ran(step_view) -> tuple[datetime, datetime]:  # type: ignore[no-untyped-def]
    """When the step's (last) attempt ran on its worker."""
    last = step_view.attempts[-1]
    return datetime.fromisoformat(last["start_time"]), datetime.fromisoformat(last["end_time"])


def use_ray(repo: Repository, artifact_store: str = "local", **settings: object) -> None:
    repo.register_component("orchestrator", "ray", "ray", dict(settings))
    repo.register_stack(
        "ray",
        orchestrator="ray",
        metadata_store="local",
        artifact_store=artifact_store,
        activate=True,
    )


# -- fan-out, logs, records ---------------------------------------------------------------


@step
def source() -> int:
    return 1


@step(enable_cache=False)
def sleeper_a(x: int) -> Output(value=int, pid=int):
    print("from a")
    time.sleep(0.8)
    return x + 10, os.getpid()


@step(enable_cache=False)
def sleeper_b(x: int) -> Output(value=int, pid=int):
    print("from b")
    time.sleep(0.8)
    return x + 20, os.getpid()


@step
def join(a: int, b: int) -> int:
    return a + b


@pipeline
def fan(source, a, b, join):
    x = source()
    a_value, _ = a(x)
    b_value, _ = b(x)
    join(a_value, b_value)


def test_independent_steps_run_at_once_on_ray_workers_with_their_own_logs(ray_address, repo):
    use_ray(repo)
    run = fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()).run()
    assert run.status is ExecutionStatus.COMPLETED
    assert run.get_step("join").output.read() == 32
    a, b = run.get_step("a"), run.get_step("b")
    (a_start, a_end), (b_start, b_end) = ran(a), ran(b)
    assert a_start < b_end and b_start < a_end  # the sleeps overlapped
    pids = {a.outputs["pid"].read(), b.outputs["pid"].read()}
    assert len(pids) == 2 and os.getpid() not in pids  # two Ray workers, not the driver
    assert "from a" in a.logs and "from b" not in a.logs
    assert "from b" in b.logs and "from a" not in b.logs
    # The driver recorded each step once, with its attempt.
    assert [s.name for s in run.steps] == ["source", "a", "b", "join"]
    assert [att["attempt"] for att in a.attempts] == [1]


class Scale(BaseStepConfig):
    factor: int = 3


@step
def scaled(config: Scale) -> list:
    return [config.factor * i for i in range(4)]


@step
def total(values: list) -> int:
    return sum(values)


@pipeline
def cached_pipe(first, second):
    second(first())


def test_a_run_on_ray_has_the_local_cache_keys_and_reuses_a_local_run(ray_address, repo):
    local = cached_pipe(scaled(), total()).run(run_name="local")
    use_ray(repo)  # same metadata and artifact stores, another orchestrator
    on_ray = cached_pipe(scaled(), total()).run(run_name="on-ray")
    for name in ("first", "second"):
        s = on_ray.get_step(name)
        assert s.is_cached, name
        assert s.cache_key == local.get_step(name).cache_key
    assert on_ray.get_step("second").output.read() == 18
    # A changed parameter runs on Ray and is cached by the next local run.
    changed = cached_pipe(scaled(Scale(factor=5)), total()).run(run_name="changed")
    assert not changed.get_step("first").is_cached
    assert changed.get_step("second").output.read() == 30
    repo.set_active_stack("default")
    again = cached_pipe(scaled(Scale(factor=5)), total()).run(run_name="again")
    assert all(s.is_cached for s in again.steps)


@step
def earlier_totals(context: StepContext, values: list) -> int:
    """Reads the history on the worker: the metadata store is opened there, on demand."""
    runs = context.metadata_store.get_pipeline("cached_pipe").runs
    return len(runs) * 100 + sum(values)


def test_a_step_on_ray_reads_the_history_through_its_context(ray_address, repo):
    cached_pipe(scaled(), total()).run(run_name="before")
    use_ray(repo)
    run = cached_pipe(scaled(), earlier_totals()).run(run_name="reading")
    # Two runs are visible from the worker: the earlier one and this one, in flight.
    assert run.get_step("second").output.read() == 200 + 18


@step(enable_cache=False)
def read_mark() -> str:
    return os.environ.get("RUNSTACK_TEST_MARK", "unset")


@pipeline
def marking(first):
    first()


def test_runtime_env_is_given_to_every_step_task(ray_address, repo):
    use_ray(repo, runtime_env={"env_vars": {"RUNSTACK_TEST_MARK": "from runtime_env"}})
    run = marking(first=read_mark()).run()
    assert run.get_step("first").output.read() == "from runtime_env"


# -- failures, retries, timeouts, dead workers --------------------------------------------


@step(enable_cache=False)
def broken(x: int) -> Output(value=int, pid=int):
    raise ValueError("boom on ray")


def test_a_failing_step_fails_the_run_and_running_steps_are_recorded(ray_address, repo):
    use_ray(repo)
    with pytest.raises(StepExecutionError, match="'b'.*boom on ray") as info:
        fan(source=source(), a=sleeper_a(), b=broken(), join=join()).run(run_name="bad")
    assert isinstance(info.value.__cause__, ValueError)
    run = recorded("bad")
    assert run.status is ExecutionStatus.FAILED
    assert run.get_step("a").status is ExecutionStatus.COMPLETED  # finished beside the failure
    assert run.get_step("b").status is ExecutionStatus.FAILED
    assert "Traceback" in run.get_step("b").traceback
    assert "join" not in [s.name for s in run.steps]


class Counter(BaseStepConfig):
    path: str
    fail_times: int


@step(retries=2, retry_delay=0.01, enable_cache=False)
def flaky(config: Counter) -> int:
    # Attempts run in (possibly different) worker processes: count in a file.
    counter = Path(config.path)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n <= config.fail_times:
        raise RuntimeError(f"flake {n}")
    return n


@pipeline
def retrying(flaky):
    flaky()


def test_retries_on_ray_record_every_attempt(ray_address, repo, tmp_path):
    use_ray(repo)
    cfg = Counter(path=str(tmp_path / "n"), fail_times=2)
    s = retrying(flaky=flaky(cfg)).run(run_name="ok").get_step("flaky")
    assert s.output.read() == 3
    assert [a["error"] for a in s.attempts] == [
        "RuntimeError: flake 1",
        "RuntimeError: flake 2",
        None,
    ]
    cfg = Counter(path=str(tmp_path / "m"), fail_times=5)
    with pytest.raises(StepExecutionError, match="flake 3"):
        retrying(flaky=flaky(cfg)).run(run_name="exhausted")
    s = recorded("exhausted").get_step("flaky")
    assert s.status is ExecutionStatus.FAILED and len(s.attempts) == 3


@step(timeout=0.5, enable_cache=False)
def sleeps_in_python() -> int:
    time.sleep(20)
    return 1


@step(timeout=0.5, enable_cache=False)
def stuck_in_native_code() -> int:
    # SIGALRM blocked: the worker cannot stop the step itself; the driver must end it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(20)
    return 1


@pipeline
def timing(slow):
    slow()


@pytest.mark.parametrize("slow", [sleeps_in_python, stuck_in_native_code])
def test_a_step_past_its_timeout_fails_naming_the_limit(ray_address, repo, slow):
    use_ray(repo)
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"timeout of 0\.5 s"):
        timing(slow=slow()).run(run_name="t")
    assert time.monotonic() - started < 10  # not the step's 20 s
    run = recorded("t")
    assert run.status is ExecutionStatus.FAILED
    assert "StepTimeoutError" in run.get_step("slow").error


@step(enable_cache=False)
def dies() -> int:
    os._exit(3)


@pipeline
def dying(step_):
    step_()


def test_a_worker_that_dies_fails_its_step_with_a_clear_error(ray_address, repo):
    use_ray(repo)
    with pytest.raises(StepExecutionError, match="Ray worker running the step died") as info:
        dying(step_=dies()).run(run_name="dead")
    assert "WorkerCrashedError" in str(info.value)
    run = recorded("dead")
    assert run.status is ExecutionStatus.FAILED
    s = run.get_step("step_")
    assert s.status is ExecutionStatus.FAILED and "worker running the step died" in s.error


# -- resources ----------------------------------------------------------------------------


@step(resources={"cpus": 2}, enable_cache=False)
def wide_a(x: int) -> Output(value=int, pid=int):
    time.sleep(0.4)
    return x, os.getpid()


@step(resources={"cpus": 2}, enable_cache=False)
def wide_b(x: int) -> Output(value=int, pid=int):
    time.sleep(0.4)
    return x, os.getpid()


def test_cpus_are_honoured_two_steps_needing_every_cpu_never_overlap(ray_address, repo):
    use_ray(repo)
    run = fan(source=source(), a=wide_a(), b=wide_b(), join=join()).run()
    (a_start, a_end), (b_start, b_end) = ran(run.get_step("a")), ran(run.get_step("b"))
    assert a_end <= b_start or b_end <= a_start


@step(resources={"tpu_pod": 1}, enable_cache=False)
def needs_a_pod(x: int) -> Output(value=int, pid=int):
    return x, 0


@step(resources={"gpus": 1}, enable_cache=False)
def needs_a_gpu(x: int) -> Output(value=int, pid=int):
    return x, 0


@pytest.mark.parametrize(("odd", "what"), [(needs_a_pod, "tpu_pod"), (needs_a_gpu, "GPU")])
def test_resources_no_node_has_are_refused_before_any_step_runs(ray_address, repo, odd, what):
    use_ray(repo)
    with pytest.raises(ConfigError, match=rf"Step 'b' asks Ray for .*{what}.*no node"):
        fan(source=source(), a=sleeper_a(), b=odd(), join=join()).run(run_name="odd")
    run = recorded("odd")
    assert run.status is ExecutionStatus.FAILED and run.steps == []


def test_resources_are_passed_to_ray_as_task_options():
    from runstack.execution._ray import ray_options
    from runstack.steps._options import ExecutionOptions

    opts = ExecutionOptions.make("t", resources={"cpus": 2, "gpus": 0.5, "memory": "1GiB", "x": 1})
    assert ray_options(dict(opts.resources)) == {
        "num_cpus": 2.0,
        "num_gpus": 0.5,
        "memory": 2**30,
        "resources": {"x": 1.0},
    }


# -- object storage, __main__ scripts, a missing Ray --------------------------------------


@step
def produce() -> Output(numbers=list, label=str):
    print("producing on ray")
    return [1, 2, 3], "abc"


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
    out = run.get_step("second").output
    assert out.uri.startswith(s3.url + "/") and out.read() == "abc:6"
    assert "producing on ray" in run.get_step("first").logs
    keys = s3.object_keys()
    assert any(k.startswith(out.uri.removeprefix(f"s3://{s3.name}/")) for k in keys)
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
repo.register_component("orchestrator", "ray", "ray", {{"address": {address!r}}})
repo.register_stack("ray", orchestrator="ray", metadata_store="local",
                    artifact_store="local", activate=True)
run = script_pipeline(where(), double()).run()
worker_pid = run.get_step("first").output.read()
print("ran on a worker:", worker_pid != os.getpid(), run.get_step("second").output.read())
"""


def test_steps_defined_in_a_main_script_run_on_ray(ray_address, tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(SCRIPT.format(address=ray_address)))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran on a worker: True 2" in done.stdout


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
        dying(step_=hidden()).run(run_name="unimportable")
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
    import json

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
