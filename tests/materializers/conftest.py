"""Helpers: write a value through a materializer and read it back, directly or via a pipeline."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runstack.materializers import Artifact, BaseMaterializer, registry

_counter = itertools.count()


@pytest.fixture
def roundtrip(tmp_path: Path) -> Callable[..., Any]:
    """``roundtrip(value, materializer=None, data_type=None)``: write, then read back.

    Without ``materializer`` the registry picks one by the value's type, as a step run does.
    """

    def run(
        value: Any,
        materializer: type[BaseMaterializer] | None = None,
        data_type: type | None = None,
    ) -> Any:
        mat = materializer or registry.get(type(value))
        path = tmp_path / f"artifact-{next(_counter)}"
        path.mkdir()
        writer, reader = mat(Artifact(str(path))), mat(Artifact(str(path)))
        writer.handle_return(value)
        reader.recorded_format = writer.storage_format  # what the metadata store records
        return reader.handle_input(data_type or type(value))

    return run
