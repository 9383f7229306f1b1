"""``twinsep ingest``: read a scan (DICOM series, multi-frame DICOM, NIfTI, NRRD, MHA)
exactly into a new case folder.

Reading: :mod:`twinsep.ingest.read` (with the readers :mod:`~twinsep.ingest.itk` and
:mod:`~twinsep.ingest.dicom`); the stage: :mod:`twinsep.ingest.case`.
"""

from twinsep.ingest.case import STAGE, IngestSettings, is_case_folder
from twinsep.ingest.read import IngestResult, ingest

__all__ = ["STAGE", "IngestResult", "IngestSettings", "ingest", "is_case_folder"]
