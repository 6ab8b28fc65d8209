"""The notebook hook of the views, and what the pictures need beyond the views' public face.

``visualizers`` (one layer up) draws views; a recorded fact it needs that is not a public
property (a step's recorded parents) is handed out here, so the views keep records private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.post_execution._views import StepView


def parent_names(step: StepView) -> tuple[str, ...]:
    """Slots of the steps whose outputs ``step`` consumed, as recorded when it ran."""
    return tuple(step._record.parent_step_names)


def html_of(obj: Any) -> str:
    """The notebook HTML of a view or diff result, drawn by ``runstack.visualizers``.

    Imported on first display only: the pictures' dependencies stay out of ``import runstack``.
    """
    from runstack.visualizers._notebook import to_html

    return to_html(obj)
