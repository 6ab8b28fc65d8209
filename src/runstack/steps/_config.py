"""``BaseStepConfig``: the user-set parameters of a step, validated by pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BaseStepConfig(BaseModel):
    """Subclass it with typed fields and take it as one parameter of a step.

    Unknown fields are rejected, so a misspelt parameter is an error instead of being ignored.
    Its values are recorded with every run and are part of the step's cache key.
    """

    # defer_build: the validator is built when a config is first made (the step is given
    # one, or runs), not when the class is defined: scripts that define steps start faster.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
