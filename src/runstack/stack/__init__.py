"""Stacks and their components: which orchestrator, metadata store and artifact store to use."""

from typing import TYPE_CHECKING, Any

from runstack.stack._config import ComponentConfig, RepositoryConfig, StackConfig
from runstack.stack._flavors import COMPONENT_TYPES, available_flavors
from runstack.stack._stack import Stack

if TYPE_CHECKING:
    from runstack.stack._flavor_models import Flavor


def __getattr__(name: str) -> Any:
    # Flavor is a pydantic model: pydantic loads when a component is validated or a flavor
    # defined, not for every command that reads the config.
    if name == "Flavor":
        from runstack.stack._flavor_models import Flavor

        return Flavor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMPONENT_TYPES",
    "ComponentConfig",
    "Flavor",
    "RepositoryConfig",
    "Stack",
    "StackConfig",
    "available_flavors",
]
