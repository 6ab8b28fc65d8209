"""Deleting runs and gc on an object store (S3 via moto): same semantics as on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from runstack.cli import main
from runstack.repository import Repository
from s3_support import S3Bucket
from test_s3_store import key_of, use_s3

sys.path.insert(0, str(Path(__file__).parent / "conformance"))
from test_lineage import _run


def _gc(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(main, ["gc", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_delete_and_gc_on_s3(repo: Repository, s3: S3Bucket, file_artifacts: None) -> None:
    # Objects on S3 to delete: small values would otherwise be inline in the metadata store.
    use_s3(repo, s3)
    _run("a")
    _run("b")
    a = repo.get_pipeline("lineage_pipeline").get_run("a")
    evaluated = key_of(s3, a.get_step("evaluate").output.uri)
    load_key = key_of(s3, a.get_step("load").output.uri)
    # A crashed write's folder: runstack's layout, named by no record.
    orphan = "/".join([*load_key.split("/")[:-2], "crashed-0123456789", "out-0123456789"])
    s3.client().put_object(Bucket=s3.name, Key=f"{orphan}/data.json", Body=b"{}")
    stray = "artifacts/not-ours.txt"
    s3.client().put_object(Bucket=s3.name, Key=stray, Body=b"x")
    dry = _gc("--keep-last", "1", "--grace", "0s", "--dry-run")
    assert [o["uri"] for o in dry["orphans"]] == [f"s3://{s3.name}/{orphan}"]
    assert [x["uri"] for x in dry["artifacts"]] == [a.get_step("evaluate").output.uri]
    assert any(k.startswith(evaluated) for k in s3.object_keys())
    done = _gc("--keep-last", "1", "--grace", "0s")
    assert done["kept_for_other_runs"] == {"a": ["load", "train"]}
    keys = s3.object_keys()
    assert not any(k.startswith((evaluated, orphan)) for k in keys)
    assert stray in keys  # not runstack's layout: never touched
    b = repo.get_pipeline("lineage_pipeline").get_run("b")
    assert b.get_step("train").output.read() == 0.6
    result = CliRunner().invoke(main, ["run", "delete", "a", "b"])
    assert result.exit_code == 0, result.output
    assert s3.object_keys() == [stray]
