"""Define pipelines: ``@pipeline`` functions or ``BasePipeline`` classes whose slots hold steps."""

from runstack.pipelines._base_pipeline import BasePipeline, pipeline

__all__ = ["BasePipeline", "pipeline"]
