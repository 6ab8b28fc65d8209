"""``StepContext``: what a running step may know about its run, its outputs and the history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runstack.exceptions import OutputNotFoundError, did_you_mean

if TYPE_CHECKING:
    from runstack.materializers import BaseMaterializer


class StepContext:
    """Passed to a step that declares a parameter of this type.

    ``metadata_store`` answers ``get_pipelines()`` and ``get_pipeline(name)`` like
    ``Repository()`` does; the current run is visible there with the steps finished so far.
    A step that takes a ``StepContext`` is not cached unless ``enable_cache=True`` is given,
    because what it reads from the history is not part of its inputs.
    """

    def __init__(
        self,
        step_name: str,
        metadata_store: Any,
        outputs: dict[str, tuple[str, type[BaseMaterializer]]],
        run_name: str | None = None,
        pipeline_name: str | None = None,
        artifact_store: Any = None,
    ) -> None:
        self.step_name = step_name
        # The history knows the stack's artifact store; the runner may also pass it directly.
        self._artifact_store = artifact_store or getattr(metadata_store, "artifact_store", None)
        self.run_name = run_name
        self.pipeline_name = pipeline_name
        self.metadata_store = metadata_store
        self._outputs = outputs

    def _output(self, output_name: str | None) -> tuple[str, type[BaseMaterializer]]:
        if output_name is None:
            if len(self._outputs) != 1:
                raise ValueError(
                    f"Step {self.step_name!r} has {len(self._outputs)} outputs "
                    f"({', '.join(self._outputs) or 'none'}); name the one you want, "
                    "e.g. context.get_output_artifact_uri('model')."
                )
            output_name = next(iter(self._outputs))
        try:
            return self._outputs[output_name]
        except KeyError:
            raise OutputNotFoundError(
                f"Step {self.step_name!r} has no output {output_name!r}. "
                + did_you_mean(output_name, list(self._outputs), "outputs")
            ) from None

    def get_output_artifact_uri(self, output_name: str | None = None) -> str:
        """The URI the output ``output_name`` is written to in this run."""
        return self._output(output_name)[0]

    def get_output_materializer(
        self,
        output_name: str | None = None,
        custom_materializer_class: type[BaseMaterializer] | None = None,
    ) -> BaseMaterializer:
        """A materializer bound to the output's URI (the configured one, or the class given)."""
        from runstack.materializers import Artifact

        uri, materializer = self._output(output_name)
        fs = self._artifact_store.fs if self._artifact_store is not None else None
        return (custom_materializer_class or materializer)(Artifact(uri, fs))
