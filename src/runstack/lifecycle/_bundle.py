"""Bundles: runs moved between stores (``runstack run export|import``).

A bundle is a tar file: ``records.json`` (every column of the runs, steps, links and
artifacts; see ``metadata_stores._transfer``), the artifact files under
``artifacts/<id>/`` and step log files under ``logs/<n>/``, and ``manifest.json`` with the
SHA-256 of every other member and the schema revision. Importing reads nothing it has not
checked: members are vetted by tarfile's ``data_filter`` and a name pattern, every hash is
verified, and clashes are found, before a file or record is written. Files go first (to
fresh URIs), records after in one transaction: a failed import leaves at most files that
``runstack gc`` removes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from runstack import __version__
from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import ArtifactNotFoundError
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._engine import json_dumps, json_loads
from runstack.metadata_stores._migrate import known_revisions
from runstack.metadata_stores._pruning import log_uris
from runstack.metadata_stores._schema import SCHEMA_REVISION
from runstack.metadata_stores._transfer import BundleError

FORMAT = "runstack-bundle"
VERSION = 1
_MEMBER = re.compile(r"(manifest\.json|records\.json|(artifacts|logs)/\d+/[^\x00]+)")


class _Hashing(io.RawIOBase):
    """Reads through ``src``, hashing what passes."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src, self.sha = src, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.src.read(len(buffer))
        self.sha.update(data)
        buffer[: len(data)] = data
        return len(data)


@dataclass
class Exported:
    path: Path
    runs: list[str]
    artifacts: int
    bytes: int


def export_bundle(
    store: SQLMetadataStore, artifacts: ArtifactStore, run_ids: list[int], path: str | Path
) -> Exported:
    """Write the runs ``run_ids`` (and whatever they need) to the bundle at ``path``."""
    records = store.export_records(run_ids)
    runs = {r["id"]: r for r in records["runs"]}
    steps = {s["id"]: s for s in records["steps"]}
    names = {
        (link["step_id"], link["artifact_id"]): link["name"] for link in records["step_outputs"]
    }
    files: list[tuple[str, str, str, int]] = []  # member, uri, name in uri, size
    for a in records["artifacts"]:
        producer = steps[a["producer_step_id"]]
        where = (
            f"output {names.get((producer['id'], a['id']), '?')!r} of step {producer['name']!r} "
            f"in run {runs[producer['run_id']]['name']!r}"
        )
        artifacts.check(a["uri"], f"The artifact {where}")
        if a.get("inline_data") is not None:
            continue  # kept inline: its value travels in records.json, there are no files
        try:
            listed = artifacts.files(a["uri"])
        except OSError:
            listed = []
        if not listed:
            raise ArtifactNotFoundError(
                f"Cannot export: the files of {where} are missing from the artifact store "
                f"({a['uri']}). Export without that run, or re-run it first."
            )
        files.extend((f"artifacts/{a['id']}/{rel}", a["uri"], rel, size) for rel, size in listed)
    records["logs"] = []
    for s in records["steps"]:
        for uri in sorted(log_uris(s.get("logs_uri"), s.get("execution"))):
            n = len(records["logs"])
            records["logs"].append({"step_id": s["id"], "uri": uri, "dir": f"logs/{n}"})
            try:
                listed = artifacts.files(artifacts.check(uri))
            except (OSError, ArtifactNotFoundError):
                listed = []  # logs already gone: the import keeps them absent too
            files.extend((f"logs/{n}/{rel}", uri, rel, size) for rel, size in listed)
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for member, uri, rel, size in files:
                info = tarfile.TarInfo(member)
                info.size, info.mtime, info.mode = size, int(time.time()), 0o644
                with artifacts.open(uri, rel) as f:
                    reader = _Hashing(f)
                    tar.addfile(info, reader)
                hashes[member] = reader.sha.hexdigest()
            body = json_dumps(records).encode()
            _add_bytes(tar, "records.json", body)
            hashes["records.json"] = hashlib.sha256(body).hexdigest()
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "schema_revision": SCHEMA_REVISION,
                "runstack_version": __version__,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "runs": sorted(r["name"] for r in records["runs"] if not r["partial"]),
                "files": hashes,
            }
            _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Exported(
        target,
        manifest["runs"],  # type: ignore[arg-type]
        len(records["artifacts"]),
        sum(f[3] for f in files),
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


@dataclass
class Imported:
    imported: list[str] = field(default_factory=list)  # runs added (whole or partial)
    present: list[str] = field(default_factory=list)  # runs already there, same content
    steps: int = 0
    artifacts: int = 0
    bytes: int = 0


def _vetted(tar: tarfile.TarFile, where: str) -> dict[str, tarfile.TarInfo]:
    """The bundle's members by name, each a plain file at a name a bundle may hold."""
    members: dict[str, tarfile.TarInfo] = {}
    for m in tar.getmembers():
        if m.isdir():
            continue
        try:
            tarfile.data_filter(m, where)  # absolute names, "..", links out, devices...
        except tarfile.FilterError as e:
            raise BundleError(f"Refusing the bundle: unsafe member {m.name!r} ({e}).") from None
        if not m.isfile() or not _MEMBER.fullmatch(m.name) or ".." in m.name.split("/"):
            raise BundleError(f"Refusing the bundle: unexpected member {m.name!r}.")
        if m.name in members:
            raise BundleError(f"Refusing the bundle: member {m.name!r} appears twice.")
        members[m.name] = m
    return members


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    f = tar.extractfile(member)
    assert f is not None  # a regular file
    return f


def import_bundle(store: SQLMetadataStore, artifacts: ArtifactStore, path: str | Path) -> Imported:
    """Import a bundle into ``store`` and ``artifacts``; importing it again adds nothing."""
    source = Path(path).expanduser()
    if not hasattr(tarfile, "data_filter"):
        raise BundleError(
            "Importing bundles needs a Python whose tarfile has extraction filters (3.10.12+, "
            "3.11.4+, 3.12+); upgrade Python."
        )
    try:
        tar = tarfile.open(source, "r:*")  # noqa: SIM115 (closed by the `with tar` below)
    except (OSError, tarfile.TarError) as e:
        raise BundleError(f"Cannot read the bundle {str(source)!r}: {e}.") from None
    with tar, tempfile.TemporaryDirectory() as where:
        members = _vetted(tar, where)
        if "manifest.json" not in members or "records.json" not in members:
            raise BundleError(f"{str(source)!r} is not a runstack bundle (no manifest).")
        manifest = json.loads(_read(tar, members["manifest.json"]).read())
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise BundleError(
                f"{str(source)!r} is not a runstack bundle of version {VERSION} "
                f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})."
            )
        revision = manifest.get("schema_revision")
        if revision not in known_revisions():
            raise BundleError(
                f"The bundle was written at schema revision {revision!r}, which this runstack "
                f"does not know (latest {SCHEMA_REVISION!r}); upgrade runstack to import it."
            )
        hashes: Mapping[str, str] = manifest.get("files", {})
        listed = set(members) - {"manifest.json"}
        if set(hashes) != listed:
            odd = sorted(set(hashes) ^ listed)[:5]
            raise BundleError(f"The bundle's files do not match its manifest: {odd}.")
        for name in sorted(listed):  # every byte checked before anything is written
            sha = hashlib.sha256()
            with _read(tar, members[name]) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    sha.update(block)
            digest = sha.hexdigest()
            if digest != hashes[name]:
                raise BundleError(
                    f"The bundle is damaged or was altered: {name!r} does not have the "
                    "content hash its manifest records; nothing was imported."
                )
        records = json_loads(_read(tar, members["records.json"]).read())
        plan = store.plan_import(records)
        result = Imported()
        runs = {r["id"]: r for r in records["runs"]}
        result.present = sorted(runs[r]["name"] for r in plan.runs)
        if not plan.new_steps and not plan.new_artifacts:
            return result
        steps = {s["id"]: s for s in records["steps"]}
        names = {(lk["step_id"], lk["artifact_id"]): lk["name"] for lk in records["step_outputs"]}
        by_dir: dict[str, list[str]] = {}
        for name in members:
            prefix, _, _rel = name.partition("/")
            if prefix in ("artifacts", "logs"):
                folder = "/".join(name.split("/")[:2])
                by_dir.setdefault(folder, []).append(name)

        def publish(uri: str, folder: str) -> int:
            entries = sorted(by_dir.get(folder, []))
            if not entries:
                return 0
            artifacts.put(uri, _files(tar, members, entries, folder))
            return sum(members[n].size for n in entries)

        uris: dict[int, str] = {}
        for aid in plan.new_artifacts:
            a = next(x for x in records["artifacts"] if x["id"] == aid)
            producer = steps[a["producer_step_id"]]
            run = runs[producer["run_id"]]
            output = names.get((producer["id"], aid), f"artifact-{aid}")
            uris[aid] = artifacts.new_uri(run["pipeline"], run["name"], producer["name"], output)
            result.bytes += publish(uris[aid], f"artifacts/{aid}")
        logs: dict[str, str] = {}
        new_steps = set(plan.new_steps)
        for n, entry in enumerate(records.get("logs", [])):
            if entry["step_id"] not in new_steps:
                continue
            step = steps[entry["step_id"]]
            run = runs[step["run_id"]]
            label = step["name"] if entry["uri"] == step.get("logs_uri") else f"{step['name']}@{n}"
            logs[entry["uri"]] = artifacts.logs_uri(run["pipeline"], run["name"], label)
            result.bytes += publish(logs[entry["uri"]], entry["dir"])
        final = store.import_records(records, uris, logs)
    result.imported = sorted(runs[r]["name"] for r in final.new_runs)
    result.steps, result.artifacts = len(final.new_steps), len(final.new_artifacts)
    return result


def _files(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], entries: list[str], folder: str
) -> Iterator[tuple[str, IO[bytes]]]:
    for name in entries:
        with _read(tar, members[name]) as f:
            yield name[len(folder) + 1 :], f
