"""``twinsep ingest``: read a scan exactly into a new case folder."""

from twinsep.ingest.read import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
