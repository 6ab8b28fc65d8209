"""What the pictures need from the views beyond their public face, and the notebook hook.

``visualizers`` (one layer up) draws views; the few recorded facts it needs that are not
public properties (a step's recorded parents, an artifact's recorded storage format and the
store its files are in) are handed out here, so the views keep their attributes private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.post_execution._views import ArtifactView, StepView


def parent_names(step: StepView) -> tuple[str, ...]:
    """Slots of the steps whose outputs ``step`` consumed, as recorded when it ran."""
    return tuple(step._record.parent_step_names)


def storage_format(artifact: ArtifactView) -> str | None:
    """``"pickle"`` when reading the artifact runs code from its files, as recorded on write."""
    return artifact._record.storage_format


def artifact_files(artifact: ArtifactView) -> ArtifactStore:
    """The artifact store holding the artifact's files, after checking its URI lies inside."""
    from runstack.post_execution._views import artifact_store_of

    store = artifact_store_of(artifact._artifacts)
    store.check(artifact.uri, f"Artifact #{artifact.id}")
    return store


def html_of(obj: Any) -> str:
    """The notebook HTML of a view or diff result, drawn by ``runstack.visualizers``.

    Imported on first display only: the pictures' dependencies stay out of ``import runstack``.
    """
    from runstack.visualizers._notebook import to_html

    return to_html(obj)
