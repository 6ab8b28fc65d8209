"""``BaseStepConfig``: the user-set parameters of a step, validated by pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class BaseStepConfig(BaseModel):
    """Subclass it with typed fields and take it as one parameter of a step.

    Unknown fields are rejected, so a misspelt parameter is an error instead of being ignored.
    Its values are recorded with every run and are part of the step's cache key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
