"""Reads a step's captured log back from the artifact store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runstack.exceptions import ArtifactNotFoundError

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore

LOGS_FILE = "logs.txt"  # the name execution._logs writes


def read_logs(uri: str | None, step: str, run: str, artifacts: ArtifactStore | None) -> str:
    """The log of ``step`` in ``run`` stored at ``uri``, read through the artifact store."""
    if uri is None:
        return ""  # the step printed nothing, was cached, or never started
    from runstack.post_execution._views import artifact_store_of

    store = artifact_store_of(artifacts)
    store.check(uri, f"The logs of step {step!r} in run {run!r}")
    try:
        with store.open(uri, LOGS_FILE, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        raise ArtifactNotFoundError(
            f"The logs of step {step!r} in run {run!r} are missing from the artifact store "
            f"({uri}/{LOGS_FILE}); they were deleted or moved after the run."
        ) from None
