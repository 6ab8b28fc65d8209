"""Every error runstack raises derives from :class:`RunstackError`.

::

    RunstackError
    ├── DefinitionError            a step or pipeline is wired wrongly (raised before anything runs)
    ├── StepExecutionError         user code in a step failed; ``__cause__`` is the user's exception
    │   ├── StepOutputError        a step returned the wrong number or type of outputs
    │   └── StepTimeoutError       a step ran past its ``timeout``
    ├── MaterializerError          no materializer fits, or one failed to write or read
    ├── ArtifactNotFoundError      an artifact's files are missing or unreadable
    ├── StoreError                 the metadata store cannot be used as asked
    │   ├── DuplicateRunNameError  a run name is already taken in this store
    │   ├── SchemaVersionError     the store's schema is newer than this runstack
    │   └── StoreUnusableError     the store was found but cannot be used as it is (corrupted,
    │                              not a database, read-only, its history missing)
    ├── AmbiguousOutputError       ``step.output`` on a step with several outputs
    ├── ConfigError                a repository or stack configuration is invalid
    └── NotFoundError (KeyError)   a name looked up in the history does not exist
        ├── PipelineNotFoundError
        ├── RunNotFoundError
        ├── StepNotFoundError
        └── OutputNotFoundError

Messages say what was expected and how to fix it.
"""

from __future__ import annotations

from typing import Any


class RunstackError(Exception):
    """Root of every runstack error."""


class DefinitionError(RunstackError):
    """A step or pipeline definition is invalid; raised before anything runs."""


class StepExecutionError(RunstackError):
    """A step failed while running. The user's exception is ``__cause__``."""

    def __init__(self, message: str, *, pipeline: str, run: str, step: str) -> None:
        super().__init__(message)
        self.pipeline_name = pipeline
        self.run_name = run
        self.step_name = step

    def __reduce__(self) -> Any:
        # Keyword-only arguments: the default reduction would call cls(message) and fail.
        return (
            _rebuild_step_error,
            (type(self), str(self), self.pipeline_name, self.run_name, self.step_name),
            self.__dict__,
        )


def _rebuild_step_error(
    cls: type[StepExecutionError], message: str, pipeline: str, run: str, step: str
) -> StepExecutionError:
    return cls(message, pipeline=pipeline, run=run, step=step)


class StepTimeoutError(StepExecutionError):
    """A step ran longer than its ``timeout`` and was stopped."""


class StepOutputError(StepExecutionError):
    """A step returned outputs that do not match its declared ``Output(...)``."""


class MaterializerError(RunstackError):
    """No materializer can handle a type, or a materializer failed."""


class ArtifactNotFoundError(RunstackError):
    """An artifact recorded in the metadata store is missing from the artifact store."""


class ArtifactCorruptedError(RunstackError):
    """An artifact's files are not the ones recorded when it was written: a file is missing,
    has another size, or its content no longer matches the recorded hash."""


class StoreError(RunstackError):
    """The metadata store cannot serve the request."""


class DuplicateRunNameError(StoreError, ValueError):
    """A run with this name already exists in the metadata store."""


class SchemaVersionError(StoreError):
    """The metadata store was written by a newer runstack than the one installed."""


class StoreUnusableError(StoreError):
    """The metadata store is there but cannot be used as it is; it needs the user's repair."""


class AmbiguousOutputError(RunstackError, ValueError):
    """``StepView.output`` was used on a step that has several outputs."""


class ConfigError(RunstackError, ValueError):
    """A repository, stack or component configuration is invalid."""


class NotFoundError(RunstackError, KeyError):
    """A name looked up in the recorded history does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message; show it as written.
        return str(self.args[0]) if self.args else ""


class PipelineNotFoundError(NotFoundError):
    """No pipeline with this name has been run on the stack."""


class RunNotFoundError(NotFoundError):
    """No run with this name exists for the pipeline."""


class StepNotFoundError(NotFoundError):
    """No step with this name exists in the run."""


class OutputNotFoundError(NotFoundError):
    """No output with this name exists on the step."""


def expect_name(value: Any, what: str) -> str:
    """``value`` if it is a name (a str); else a TypeError saying what to pass instead.

    Lookups take names; a view or a number passed by mistake must not reach the database
    driver, whose error would show SQL instead of the mistake.
    """
    if isinstance(value, str):
        return value
    named = getattr(value, "name", None)
    hint = (
        f" For a {type(value).__name__}, pass its name: {named!r}."
        if isinstance(named, str)
        else ""
    )
    raise TypeError(f"{what} must be a name (str), not {type(value).__name__} {value!r}.{hint}")


def did_you_mean(name: str, known: list[str] | tuple[str, ...], what: str) -> str:
    """Phrase the tail of a lookup error: the known names, closest first."""
    import difflib

    if not known:
        return f"There are no {what} yet."
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(k) for k in known[:20])
    more = f" (and {len(known) - 20} more)" if len(known) > 20 else ""
    return f"Known {what}: {shown}{more}.{hint}"
