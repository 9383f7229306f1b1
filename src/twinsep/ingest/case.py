"""The stage ``twinsep ingest``: reads a scan exactly into a new case folder
(``scan.nii.gz`` and ``case.json``; see :func:`twinsep.ingest.read.ingest`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from twinsep.casefolder import Case, is_case_folder
from twinsep.errors import InputError
from twinsep.ingest.read import ingest
from twinsep.progress import Progress
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class IngestSettings(Settings):
    """Options of ``twinsep ingest`` (defaults: ``ingest`` in defaults.yaml)."""

    scan: Path | None = Field(None, description="DICOM folder or file, NIfTI, NRRD or MHA.")
    series_uid: str | None = Field(default("ingest.series_uid"),
                                   description="The series to take from a folder holding "
                                   "several: pseudonym, series number or SeriesInstanceUID.")
    keep_phi: bool = Field(default("ingest.keep_phi"),
                           description="Keep patient identifiers in case.json.")
    overwrite: bool = Field(default("ingest.overwrite"),
                            description="Replace a case folder made by twinsep.")
    memory_limit_gb: float = Field(default("ingest.memory_limit_gb"), gt=0,
                                   description="Largest scan read into memory, GiB.")
    thick_slice_mm: float = Field(default("ingest.thick_slice_mm"), gt=0,
                                  description="Slices thicker than this get a warning, mm.")


def _run(case: Case, settings: IngestSettings, progress: Progress) -> StageResult:
    if settings.scan is None:
        raise InputError("ingest needs the scan: twinsep ingest SCAN --out CASE")
    res = ingest(settings.scan, case.root, series_uid=settings.series_uid,
                 keep_phi=settings.keep_phi, overwrite=settings.overwrite,
                 memory_limit_gb=settings.memory_limit_gb,
                 thick_slice_mm=settings.thick_slice_mm, progress=progress)
    g = res.info["geometry"]
    logger.info("scan %s voxels, %s mm", g["size_ijk"], g["spacing_mm"])
    return StageResult(files=("scan.nii.gz", "case.json"), notes=tuple(res.notes),
                       summary="; ".join(res.notes), data=res)


def _record(settings: IngestSettings) -> dict[str, Any]:
    return {"series_uid": settings.series_uid, "keep_phi": settings.keep_phi}


def _input_files(settings: IngestSettings) -> dict[str, Path]:
    return {"scan_sha256": settings.scan} if settings.scan is not None else {}


STAGE = Stage(
    name="ingest",
    title="read the scan",
    settings=IngestSettings,
    inputs=(),
    outputs=("scan.nii.gz", "case.json"),
    run=_run,
    hint="check that SCAN is one readable 3-D CT (DICOM folder, NIfTI, NRRD or MHA)",
    input_files=_input_files,
    record=_record,
    described=("scan", "series_uid", "keep_phi", "overwrite"),
)

__all__ = ["STAGE", "IngestSettings", "is_case_folder"]
