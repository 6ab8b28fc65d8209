"""Stacks and their components: which orchestrator, metadata store and artifact store to use."""

from runstack.stack._config import ComponentConfig, RepositoryConfig, StackConfig
from runstack.stack._flavors import COMPONENT_TYPES, Flavor, available_flavors
from runstack.stack._stack import Stack

__all__ = [
    "COMPONENT_TYPES",
    "ComponentConfig",
    "Flavor",
    "RepositoryConfig",
    "Stack",
    "StackConfig",
    "available_flavors",
]
