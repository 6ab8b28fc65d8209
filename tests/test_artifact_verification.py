"""Artifacts are checked against their record: a changed file is an error, never a value.

Every file a materializer wrote is recorded with its size and the artifact's content hash;
the cache reuses only artifacts whose files are all there at their size (and, below the read
verification limit, whose content still matches), and reads verify the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from runstack.cli import main
from runstack.exceptions import ArtifactCorruptedError, ArtifactNotFoundError
from runstack.materializers import BaseMaterializer
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


class Pair:
    """A value written as two files, like torch's tensors.safetensors + meta.json."""

    def __init__(self, data: bytes, label: str) -> None:
        self.data, self.label = data, label


class PairMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Pair,)

    def handle_return(self, data: Pair) -> None:
        with self.artifact.open("payload.bin", "wb") as f:
            f.write(data.data)
        with self.artifact.open("meta.json", "w") as f:
            f.write(json.dumps({"label": data.label}))

    def handle_input(self, data_type: type) -> Pair:
        with self.artifact.open("meta.json", "r") as f:
            label = json.loads(f.read())["label"]
        try:
            with self.artifact.open("payload.bin", "rb") as f:
                return Pair(f.read(), label)
        except FileNotFoundError:
            return Pair(b"", label)  # a lenient reader: the check must not rely on it failing


@step
def make_array() -> np.ndarray:
    return np.arange(1000, dtype=np.int64)


@step
def total(data: np.ndarray) -> int:
    return int(data.sum())


@pipeline(name="arrays")
def arrays(make, use):
    use(make())


@step
def make_pair() -> Pair:
    return Pair(b"x" * 4096, "weights")


@step
def pair_size(pair: Pair) -> int:
    return len(pair.data)


@pipeline(name="pairs")
def pairs(make, use):
    use(make())


def _flip_one_byte(path: Path, offset: int = -8) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_an_error_naming_the_artifact_and_its_run(repo: Repository) -> None:
    run = arrays(make_array(), total()).run(run_name="first")
    out = run.get_step("make").output
    _flip_one_byte(Path(out.uri) / "array.npy")
    with pytest.raises(ArtifactCorruptedError) as e:
        out.read()
    message = str(e.value)
    assert f"#{out.id}" in message and "run 'first'" in message and "step 'make'" in message
    assert "no longer matches" in message and "Re-run" in message
    with pytest.raises(ArtifactCorruptedError):
        out.read(verify=True)
    # Asked not to verify, the reader gets what the files hold (the user chose to).
    assert out.read(verify=False).sum() != np.arange(1000).sum()


@step
def numbers() -> dict:
    return {"a": 1, "b": 2}


@pipeline(name="json")
def one(s):
    s()


def test_an_edited_json_artifact_is_not_returned_as_fine(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_INLINE_MAX_BYTES", "0")  # a file, not kept with its record
    out = one(numbers()).run().get_step("s").output
    data = next(p for p in Path(out.uri).iterdir() if p.suffix == ".json")
    data.write_text(data.read_text().replace("1", "7"))  # same size, other value
    with pytest.raises(ArtifactCorruptedError):
        out.read()


def test_an_edited_inline_value_is_not_returned_as_fine(repo: Repository) -> None:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t

    one(numbers()).run()
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        (kept,) = conn.execute(sa.select(t.artifacts.c.inline_data)).scalars()
        assert kept is not None  # a small value is kept with its record
        edited = bytes(kept).replace(b"1", b"7")  # same size, other value
        conn.execute(t.artifacts.update().values(inline_data=edited))
    fresh = repo.get_pipeline("json").runs[-1].get_step("s").output
    with pytest.raises(ArtifactCorruptedError, match="no longer matches"):
        fresh.read()
    assert fresh.read(verify=False) == {"a": 7, "b": 2}  # asked for: read as stored


def test_an_edited_inline_value_is_the_same_error_in_a_scan(repo: Repository) -> None:
    """A scan reads each value with only what reading it needs (the rest of its record is
    loaded when asked): an edited value is refused as when its run is looked up alone, the
    error naming the output, step and the run that produced it."""
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t

    one(numbers()).run(run_name="first")
    one(numbers()).run(run_name="second")  # reuses first's value from the cache
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        (kept,) = conn.execute(sa.select(t.artifacts.c.inline_data)).scalars()
        conn.execute(t.artifacts.update().values(inline_data=bytes(kept).replace(b"1", b"7")))
    pipe = repo.get_pipeline("json")
    with pytest.raises(ArtifactCorruptedError) as alone:
        pipe.get_run("second").get_step("s").outputs["output"].read()
    scanned = [run.get_step("s").outputs["output"] for run in pipe.runs]
    with pytest.raises(ArtifactCorruptedError) as scan:
        scanned[-1].read()
    assert str(scan.value) == str(alone.value)
    # (named by the run that produced it: second reused first's)
    assert "in run 'first'" in str(scan.value) and "no longer matches" in str(scan.value)
    assert scanned[-1].read(verify=False) == {"a": 7, "b": 2}


def test_a_truncated_file_is_not_reused_by_the_cache_and_explain_says_why(
    repo: Repository,
) -> None:
    first = arrays(make_array(), total()).run(run_name="first")
    path = Path(first.get_step("make").output.uri) / "array.npy"
    path.write_bytes(path.read_bytes()[:100])
    again = arrays(make_array(), total()).run(run_name="again")
    make = again.get_step("make")
    assert make.status is ExecutionStatus.COMPLETED  # ran again instead of reusing
    assert again.get_step("use").output.read() == sum(range(1000))
    reasons = str(make.cache_explanation)
    assert "'first'" in reasons and "array.npy is 100 bytes" in reasons, reasons
    with pytest.raises(ArtifactCorruptedError, match="array.npy is 100 bytes"):
        first.get_step("make").output.read()


def test_a_multi_file_artifact_missing_one_file_is_not_reused(repo: Repository) -> None:
    first = pairs(make_pair(), pair_size()).run(run_name="first")
    (Path(first.get_step("make").output.uri) / "payload.bin").unlink()
    with pytest.raises(ArtifactCorruptedError, match="payload.bin missing"):
        first.get_step("make").output.read()
    again = pairs(make_pair(), pair_size()).run(run_name="again")
    assert again.get_step("make").status is ExecutionStatus.COMPLETED
    assert again.get_step("use").output.read() == 4096
    assert "payload.bin missing" in str(again.get_step("make").cache_explanation)


def test_a_changed_byte_is_not_reused_by_the_cache(repo: Repository) -> None:
    first = arrays(make_array(), total()).run(run_name="first")
    _flip_one_byte(Path(first.get_step("make").output.uri) / "array.npy")
    again = arrays(make_array(), total()).run(run_name="again")
    assert again.get_step("make").status is ExecutionStatus.COMPLETED
    assert again.get_step("use").output.read() == sum(range(1000))
    assert "no longer matches" in str(again.get_step("make").cache_explanation)


@step(enable_cache=False)
def vandal(data: np.ndarray) -> int:
    """Damages the arrays in the artifact store while the run goes on (a failing disk)."""
    for path in Path.cwd().rglob("array.npy"):
        _flip_one_byte(path)
    return 0


@step(enable_cache=False)
def total_after(data: np.ndarray, after: int) -> int:
    return int(data.sum())


@pipeline(name="vandalized")
def vandalized(make, damage, use):
    data = make()
    use(data, damage(data))


def test_a_step_never_loads_a_corrupted_input(repo: Repository) -> None:
    with pytest.raises(ArtifactCorruptedError) as e:
        vandalized(make_array(), vandal(), total_after()).run(run_name="broken")
    cause = e.value
    assert "Cannot load input 'data' of step 'use'" in str(cause)
    run = Repository().get_pipeline("vandalized").get_run("broken")
    assert run.status is ExecutionStatus.FAILED
    assert f"#{run.get_step('make').output.id}" in str(cause)


def test_large_artifacts_are_hashed_on_read_only_when_asked(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = arrays(make_array(), total()).run().get_step("make").output
    _flip_one_byte(Path(out.uri) / "array.npy")
    monkeypatch.setenv("RUNSTACK_VERIFY_MAX_BYTES", "10")  # every artifact is "large" now
    assert out.read().shape == (1000,)  # sizes match, content not compared by default
    with pytest.raises(ArtifactCorruptedError):
        out.read(verify=True)
    (Path(out.uri) / "array.npy").write_bytes(b"short")
    with pytest.raises(ArtifactCorruptedError, match="array.npy is 5 bytes"):
        out.read()  # the size check costs nothing and always runs


def test_a_deleted_artifact_is_still_missing_not_corrupted(repo: Repository) -> None:
    out = arrays(make_array(), total()).run(run_name="first").get_step("make").output
    (Path(out.uri) / "array.npy").unlink()
    with pytest.raises(ArtifactNotFoundError, match="missing from the artifact store"):
        out.read()


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), prog_name="runstack")


def test_artifact_verify_command(repo: Repository) -> None:
    arrays(make_array(), total()).run(run_name="first")
    pairs(make_pair(), pair_size()).run(run_name="other")
    ok = _cli("artifact", "verify", "first")
    assert ok.exit_code == 0, ok.output
    assert "2 of 2 artifact(s) intact" in ok.stdout
    everything = _cli("artifact", "verify", "--all", "--json")
    assert everything.exit_code == 0, everything.output
    assert len(json.loads(everything.stdout)["artifacts"]) == 4

    view = Repository().get_pipeline("arrays").get_run("first").get_step("make").output
    _flip_one_byte(Path(view.uri) / "array.npy")
    bad = _cli("artifact", "verify", "--all")
    assert bad.exit_code == 1
    assert "first make output" in bad.stdout and "corrupted" in bad.stdout
    assert "run 'first'" in bad.stderr and "3 of 4 artifact(s) intact" in bad.stdout
    assert _cli("artifact", "verify").exit_code != 0  # neither RUN nor --all: say so


def test_a_verified_file_is_hashed_again_once_it_changes(repo: Repository) -> None:
    """Within a process, files whose hash matched are trusted while their size and mtime stay
    (as git trusts its index); any write that moves the mtime is caught, verify=True always."""
    out = arrays(make_array(), total()).run().get_step("make").output
    path = Path(out.uri) / "array.npy"
    an_hour_ago = path.stat().st_mtime_ns - 3600 * 10**9
    os.utime(path, ns=(an_hour_ago, an_hour_ago))  # old enough to be trusted by its stamp
    assert out.read().sum() == sum(range(1000))
    _flip_one_byte(path)  # a normal write: new mtime
    with pytest.raises(ArtifactCorruptedError):
        out.read()
    _flip_one_byte(path)  # back as written, trusted again once old
    os.utime(path, ns=(an_hour_ago, an_hour_ago))
    assert out.read().sum() == sum(range(1000))
    _flip_one_byte(path)
    os.utime(path, ns=(an_hour_ago, an_hour_ago))  # forged stamp: only a full check sees it
    with pytest.raises(ArtifactCorruptedError):
        out.read(verify=True)


def test_an_artifact_not_yet_recorded_is_not_called_number_zero(repo: Repository) -> None:
    # On process workers and Ray a step starts while the record of its input is still being
    # written: the input's record has no id yet (0), and errors name it by its URI alone.
    from runstack.artifact_stores._verify import verify
    from runstack.models import ArtifactRecord

    store = repo.active_stack.artifact_store
    uri = store.new_uri("p", "r", "producer", "output")
    files = {"data.json": 2}
    for art_id, named in ((0, "Artifact at "), (7, "Artifact #7 at ")):
        art = ArtifactRecord(art_id, uri, "builtins.int", "x.Materializer", 0, files=files)
        with pytest.raises(ArtifactNotFoundError) as e:
            verify(store, art)
        assert str(e.value).startswith(named + uri) and "#0" not in str(e.value)
