"""Frozen records that cross layer boundaries: what the metadata store stores and returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ExecutionStatus(str, enum.Enum):
    """Status of a run or a step."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CACHED = "cached"  # steps only: outputs reused from an earlier execution

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    pipeline_id: int
    pipeline_name: str
    name: str
    status: ExecutionStatus
    start_time: datetime
    end_time: datetime | None
    error: str | None = None
    owner_host: str | None = None
    owner_pid: int | None = None
    # When the owner process last said it was alive, and where its pid is meaningful
    # ("<boot id>:<pid namespace inode>"): what crash detection decides by.
    heartbeat_at: datetime | None = None
    owner_ns: str | None = None
    note: str | None = None  # free text, editable after the run (`runstack run note`)


@dataclass(frozen=True, slots=True)
class StepRecord:
    id: int
    run_id: int
    name: str
    entrypoint_name: str
    position: int
    status: ExecutionStatus
    parameters: dict[str, Any]
    cache_key: str | None
    cached_from_step_id: int | None
    start_time: datetime
    end_time: datetime | None
    error: str | None = None
    traceback: str | None = None
    parent_step_names: tuple[str, ...] = ()
    role: str | None = None
    cache_components: dict[str, Any] | None = None
    logs_uri: str | None = None
    # False when loaded by a listing without traceback, cache_components and execution.
    complete: bool = True
    # {"options": {...}, "attempts": [{"attempt", "start_time", "end_time", "error"}]}
    execution: dict[str, Any] | None = None


#: The name of the one file of an artifact kept inline in the metadata store.
INLINE_FILE = "data.json"


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    id: int
    uri: str
    data_type: str
    materializer: str
    producer_step_id: int
    content_hash: str | None = None
    # "pickle" when reading it runs code from its files (torch.save, pickle); None otherwise.
    # Recorded at write time, so replacing the files cannot turn a safe artifact into one.
    storage_format: str | None = None
    # The bytes of the artifact's one file (INLINE_FILE) when it is small enough to be kept in
    # the metadata store instead of the artifact store; None for artifacts stored as files.
    # Read it through ArtifactStore.holds / artifact_files / open_artifact_file (or a
    # materializer's Artifact.of), which treat both kinds alike.
    inline: bytes | None = None
    # {file name relative to uri: size in bytes} of every file written; None before 0009.
    files: dict[str, int] | None = None

    @property
    def label(self) -> str:
        """How messages name it: ``Artifact #12``. An output handed to the next step while
        its own record is still being written has no id yet (0): plain ``Artifact`` (the
        messages give its URI)."""
        return f"Artifact #{self.id}" if self.id else "Artifact"


@dataclass(frozen=True, slots=True)
class ArtifactLink:
    """An artifact as one input or output of one step."""

    step_id: int
    name: str
    position: int
    artifact: ArtifactRecord


@dataclass(frozen=True, slots=True)
class NewArtifact:
    """An artifact the step runner has written and wants recorded."""

    name: str
    uri: str
    data_type: str
    materializer: str
    content_hash: str | None = None
    storage_format: str | None = None  # the materializer's ``storage_format`` after writing
    inline: bytes | None = None  # the one file's bytes, kept in the metadata store
    files: dict[str, int] | None = None  # every file written, with its size


@dataclass(frozen=True, slots=True)
class StepResult:
    """Everything the step runner records about one step execution, in one transaction."""

    run_id: int
    name: str
    entrypoint_name: str
    position: int
    status: ExecutionStatus
    parameters: dict[str, Any]
    start_time: datetime
    end_time: datetime
    cache_key: str | None = None
    cache_components: dict[str, Any] | None = None
    cached_from_step_id: int | None = None
    inputs: dict[str, int] = field(default_factory=dict)  # input name -> artifact id
    new_outputs: tuple[NewArtifact, ...] = ()
    # output name -> the earlier artifact a cached step reuses
    reused_outputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    output_order: tuple[str, ...] = ()
    parent_step_names: tuple[str, ...] = ()
    role: str | None = None
    error: str | None = None
    traceback: str | None = None
    logs_uri: str | None = None
    # The ``running`` row recorded when the step started, which this result replaces.
    running_step_id: int | None = None
    execution: dict[str, Any] | None = None


# Shared by the run progress display and the CLI's listings (which must not import execution).
def format_duration(seconds: float | None) -> str:
    """``0.04s``, ``12.3s``, ``4m05s``, ``2h03m``; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
