"""Reads a step's captured log back from the artifact store."""

from __future__ import annotations

from runstack.exceptions import ArtifactNotFoundError
from runstack.materializers import Artifact

LOGS_FILE = "logs.txt"  # the name execution._logs writes


def read_logs(uri: str | None, step: str, run: str) -> str:
    if uri is None:
        return ""  # the step printed nothing, was cached, or never started
    try:
        with Artifact(uri).open(LOGS_FILE, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise ArtifactNotFoundError(
            f"The logs of step {step!r} in run {run!r} are missing from the artifact store "
            f"({uri}/{LOGS_FILE}); they were deleted or moved after the run."
        ) from None
