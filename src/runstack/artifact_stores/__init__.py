"""Artifact stores keep the files materializers write, one folder per step output."""

from runstack.artifact_stores._store import ArtifactStore

__all__ = ["ArtifactStore"]
