"""An fsspec artifact store on S3, for real: moto's S3 server on 127.0.0.1, reached through s3fs.

Objects have no folders and no rename, so these runs go through the store's in-place
publishing; the store's ``storage_options`` (endpoint, credentials) must reach every reader
and writer, including a new process reading the history.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from runstack.artifact_stores import ArtifactStore
from runstack.cli import main
from runstack.exceptions import ConfigError, RunstackError, StoreError
from runstack.materializers import BaseMaterializer
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, step
from s3_support import S3Bucket


def use_s3(repo: Repository, s3: S3Bucket, settings: dict[str, Any] | None = None) -> None:
    """Register an fsspec artifact store on the bucket and make a stack of it active."""
    repo.register_component(
        "artifact_store",
        "s3",
        "fsspec",
        settings or {"url": s3.url, "storage_options": s3.storage_options},
    )
    repo.register_stack(
        "s3", orchestrator="local", metadata_store="local", artifact_store="s3", activate=True
    )


def key_of(s3: S3Bucket, uri: str) -> str:
    prefix = f"s3://{s3.name}/"
    assert uri.startswith(prefix), uri
    return uri.removeprefix(prefix)


@step
def produce() -> Output(numbers=list, label=str):
    print("producing the numbers")
    return [1, 2, 3], "abc"


@step
def consume(numbers: list, label: str) -> str:
    print(f"consuming {label}")
    return f"{label}:{sum(numbers)}"


@pipeline
def simple(first, second):
    numbers, label = first()
    second(numbers, label)


def test_a_run_writes_to_s3_and_a_rerun_is_served_from_the_cache(
    repo: Repository, s3: S3Bucket, file_artifacts: None
) -> None:
    # Every output an S3 object (small values would otherwise be inline in the metadata store).
    use_s3(repo, s3)
    run = simple(produce(), consume()).run(run_name="first")
    assert run.status is ExecutionStatus.COMPLETED
    out = run.get_step("second").output
    assert out.uri.startswith(s3.url + "/")
    assert out.read() == "abc:6"
    assert out.content_hash is not None  # hashed through the store's filesystem

    keys = s3.object_keys()
    for s in run.steps:
        for art in s.outputs.values():
            assert any(k.startswith(key_of(s3, art.uri) + "/") for k in keys), art
    assert not any(".partial" in k for k in keys)  # nothing staged is left on the server

    again = simple(produce(), consume()).run(run_name="second")
    assert [s.status for s in again.steps] == [ExecutionStatus.CACHED] * 2
    assert again.get_step("second").output.uri == out.uri
    assert again.get_step("second").output.read() == "abc:6"
    assert s3.object_keys() == keys  # a cache hit writes nothing


def test_logs_are_stored_on_s3_and_read_back(repo: Repository, s3: S3Bucket) -> None:
    use_s3(repo, s3)
    run = simple(produce(), consume()).run(run_name="logged")
    assert "producing the numbers" in run.get_step("first").logs
    assert "consuming abc" in run.get_step("second").logs
    log_keys = [k for k in s3.object_keys() if k.endswith("/_logs/logs.txt")]
    assert len(log_keys) == 2


def test_history_on_s3_is_read_in_a_new_process(repo: Repository, s3: S3Bucket) -> None:
    use_s3(repo, s3)
    simple(produce(), consume()).run(run_name="first")
    code = (
        "import json, sys\n"
        "from runstack.repository import Repository\n"
        "run = Repository(sys.argv[1]).get_pipeline('simple').get_run('first')\n"
        "first = run.get_step('first')\n"
        "print(json.dumps({\n"
        "    'numbers': first.outputs['numbers'].read(),\n"
        "    'label': first.outputs['label'].read(),\n"
        "    'out': run.get_step('second').output.read(),\n"
        "    'logs': first.logs,\n"
        "}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(repo.root)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["numbers"] == [1, 2, 3] and seen["label"] == "abc" and seen["out"] == "abc:6"
    assert "producing the numbers" in seen["logs"]


ROWS = 20 * 1024 * 1024 // 8  # a 20 MiB float64 array: s3fs writes it in several parts


@step
def big() -> Output(array=np.ndarray, frame=pd.DataFrame):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.arange(1000), "b": [f"row {i}" for i in range(1000)]})
    return rng.random(ROWS), frame


@step
def summarize(array: np.ndarray, frame: pd.DataFrame) -> float:
    return float(array[:10].sum()) + float(frame["a"].sum())


@pipeline
def arrays(make, total):
    array, frame = make()
    total(array, frame)


def test_a_large_array_and_a_dataframe_on_s3(repo: Repository, s3: S3Bucket) -> None:
    use_s3(repo, s3)
    run = arrays(big(), summarize()).run()
    made = run.get_step("make")
    expected = np.random.default_rng(0).random(ROWS)
    np.testing.assert_array_equal(made.outputs["array"].read(), expected)
    frame = made.outputs["frame"].read()
    assert list(frame["b"][:2]) == ["row 0", "row 1"] and len(frame) == 1000
    assert run.get_step("total").output.read() == float(expected[:10].sum()) + 499500.0
    assert made.outputs["array"].content_hash is not None
    client = s3.client()
    sizes = [
        client.head_object(Bucket=s3.name, Key=k)["ContentLength"]
        for k in s3.object_keys(key_of(s3, made.outputs["array"].uri) + "/")
    ]
    assert sum(sizes) >= 20 * 1024 * 1024


class Fragile:
    """A value whose materializer fails half-way through writing it."""


class HalfWritten(BaseMaterializer):
    ASSOCIATED_TYPES = (Fragile,)

    def handle_return(self, data: Any) -> None:
        with self.artifact.open("part-1.bin", "wb") as f:
            f.write(b"x" * 4096)
        raise RuntimeError("the disk caught fire")


@step(enable_cache=False)
def fails_while_writing() -> Output(good=int, bad=Fragile):
    print("about to return")
    return 1, Fragile()


@step(enable_cache=False)
def raises() -> int:
    print("about to raise")
    raise ValueError("boom")


@pipeline
def one_step(only):
    only()


@pytest.mark.parametrize("failing", [fails_while_writing, raises], ids=["mid-write", "raising"])
def test_a_failed_step_leaves_nothing_on_s3_that_could_pass_for_an_artifact(
    repo: Repository, s3: S3Bucket, failing: Any
) -> None:
    use_s3(repo, s3)
    with pytest.raises(RunstackError):
        one_step(failing()).run(run_name="broken")
    run = Repository(repo.root).get_pipeline("one_step").get_run("broken")
    assert run.status is ExecutionStatus.FAILED
    assert len(run.get_step("only").outputs) == 0
    # Only the failed step's log is there: no object under any output folder.
    keys = s3.object_keys()
    assert keys and all("/_logs/" in k for k in keys), keys
    assert "about to" in run.get_step("only").logs


def test_storage_options_expand_env_and_are_masked_when_printed(
    repo: Repository, s3: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RS_TEST_BUCKET", s3.name)
    monkeypatch.setenv("RS_TEST_S3_ENDPOINT", s3.endpoint_url)
    monkeypatch.setenv("RS_TEST_S3_SECRET", "testing")
    options = {
        "endpoint_url": "${RS_TEST_S3_ENDPOINT}",
        "key": "AKIDLITERALKEY",  # a literal credential in the config: printed masked
        "secret": "${RS_TEST_S3_SECRET}",
        "client_kwargs": {"region_name": "us-east-1", "aws_session_token": "SESSIONLITERAL"},
    }
    use_s3(repo, s3, {"url": "s3://${RS_TEST_BUCKET}/artifacts", "storage_options": options})
    run = simple(produce(), consume()).run(run_name="from-env")
    assert run.get_step("second").output.uri.startswith(s3.url + "/")
    assert run.get_step("second").output.read() == "abc:6"

    for args in (
        ["stack", "describe", "s3"],
        ["stack", "describe", "s3", "--json"],
        ["artifact-store", "describe", "s3"],
        ["artifact-store", "list"],
    ):
        result = CliRunner().invoke(main, args, prog_name="runstack")
        assert result.exit_code == 0, result.output
        assert "AKIDLITERALKEY" not in result.output and "SESSIONLITERAL" not in result.output
        assert "********" in result.output and "${RS_TEST_S3_SECRET}" in result.output, args

    monkeypatch.delenv("RS_TEST_S3_SECRET")
    with pytest.raises(ConfigError, match="RS_TEST_S3_SECRET"):
        _ = Repository(repo.root).active_stack


def test_storage_options_can_be_given_on_the_command_line(repo: Repository, s3: S3Bucket) -> None:
    result = CliRunner().invoke(
        main,
        [
            "artifact-store",
            "register",
            "s3",
            "--flavor",
            "fsspec",
            f"url={s3.url}",
            f"storage_options.endpoint_url={s3.endpoint_url}",
            "storage_options.key=${RS_TEST_KEY}",
        ],
        prog_name="runstack",
    )
    assert result.exit_code == 0, result.output
    settings = Repository(repo.root).get_component("artifact_store", "s3").settings
    assert settings["storage_options"] == {
        "endpoint_url": s3.endpoint_url,
        "key": "${RS_TEST_KEY}",
    }


def test_the_store_pickles_by_its_settings_and_rebuilds_its_filesystem(s3: S3Bucket) -> None:
    store = ArtifactStore(s3.url, s3.storage_options)
    uri = store.new_uri("p", "r", "s", "o")
    with store.staged(uri) as target, store.fs.open(f"{target}/x.txt", "wb") as f:
        f.write(b"hello")
    assert store.exists(uri)
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, pickle.loads)):
        data = dumps(store)
        assert b"S3FileSystem" not in data and b"aiobotocore" not in data
        clone = loads(data)
        assert clone.path == store.path and clone.storage_options == store.storage_options
        assert clone.exists(uri)
        with clone.open(uri, "x.txt") as f:
            assert f.read() == b"hello"


def test_publishing_on_s3_never_merges_and_cleans_up_a_failed_write(s3: S3Bucket) -> None:
    store = ArtifactStore(s3.url, s3.storage_options)
    uri = store.new_uri("p", "r", "s", "o")
    with pytest.raises(RuntimeError, match="half-way"), store.staged(uri) as target:
        with store.fs.open(f"{target}/part.bin", "wb") as f:
            f.write(b"x" * 100)
        raise RuntimeError("failed half-way")
    assert not store.exists(uri) and s3.object_keys() == []

    with store.staged(uri) as target, store.fs.open(f"{target}/data.bin", "wb") as f:
        f.write(b"first")
    with pytest.raises(StoreError, match="already exists"), store.staged(uri):
        pass
    assert s3.object_keys() == [key_of(s3, uri) + "/data.bin"]
