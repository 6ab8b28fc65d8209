"""The metadata store: records runs, steps and artifacts in a SQL database via SQLAlchemy Core.

The parts over one connection: ``RunRecording`` is what the runner needs (record runs and
steps, cache lookups, heartbeats), ``HistoryReading`` what readers need (history queries by
``RunFilter``), ``RunCuration`` and ``RunPruning`` what people curating history need (tags,
notes; deleting runs without breaking what is kept), ``RunTransfer`` what moving runs
between stores needs. Type a
parameter with the part it uses.
"""

from __future__ import annotations

from runstack.metadata_stores._curating import RunCuration
from runstack.metadata_stores._pruning import RunPruning
from runstack.metadata_stores._reading import HistoryReading
from runstack.metadata_stores._recording import RunRecording
from runstack.metadata_stores._transfer import RunTransfer


class SQLMetadataStore(RunRecording, HistoryReading, RunCuration, RunPruning, RunTransfer):
    """Records and queries pipeline history in a SQL database given by a SQLAlchemy URL."""
