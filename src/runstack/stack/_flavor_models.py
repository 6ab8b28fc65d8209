"""``Flavor``: the base of third-party flavors, a pydantic model of the component's settings.

Imported only for a flavor that derives from it; the built-in flavors are dataclasses
(``runstack.stack._builtin_flavors``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from runstack.stack._flavors import FlavorBase


class Flavor(BaseModel, FlavorBase):
    """Settings of one component; ``build`` makes the component from them."""

    # Validators are built for the flavors in use only, not for every built-in at import.
    model_config = ConfigDict(extra="forbid", defer_build=True)
