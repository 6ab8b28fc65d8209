"""runstack: ML pipelines where every run is recorded, cached and browsable.

Import what you need from the public modules: ``runstack.steps``, ``runstack.pipelines``,
``runstack.repository``, ``runstack.materializers`` and ``runstack.post_execution``.
Importing ``runstack`` itself loads nothing heavy.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
