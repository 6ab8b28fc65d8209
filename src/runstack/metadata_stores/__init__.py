"""Metadata stores record pipelines, runs, steps and artifacts in a SQL database."""

from runstack.metadata_stores._filter import RunFilter
from runstack.metadata_stores._sql_store import SQLMetadataStore

__all__ = ["RunFilter", "SQLMetadataStore"]
