"""Reading a recorded artifact back through a materializer, with errors that say what to do."""

from __future__ import annotations

import functools
from typing import Any

from runstack.exceptions import ArtifactNotFoundError, MaterializerError, RunstackError
from runstack.materializers._base import Artifact, BaseMaterializer, import_path
from runstack.models import ArtifactRecord


@functools.lru_cache(maxsize=1024)
def load_path(path: str) -> Any:
    """Import a recorded type or materializer path once per process."""
    return import_path(path)


def read_artifact(
    art: ArtifactRecord, materializer: type[BaseMaterializer], data_type: Any, fs: Any = None
) -> Any:
    """Read one recorded artifact through ``fs`` (the artifact store's filesystem, which the
    caller has checked the URI against); a missing or broken file is a clear error."""
    try:
        return materializer(Artifact(art.uri, fs)).handle_input(data_type)
    except FileNotFoundError as e:
        raise ArtifactNotFoundError(
            f"Artifact #{art.id} at {art.uri} is missing from the artifact store "
            f"({e.filename or e}). It was deleted or moved after it was recorded; re-run the "
            "step that produced it (with caching off) to write it again."
        ) from e
    except RunstackError:
        raise
    except Exception as e:
        raise MaterializerError(
            f"{materializer.__name__} could not read artifact #{art.id} at {art.uri} as "
            f"{getattr(data_type, '__name__', data_type)}: {type(e).__name__}: {e}. The file may "
            "be corrupted, or the materializer does not handle this type."
        ) from e
