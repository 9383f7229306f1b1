"""Ingest a scan into a new case folder: ``CASE/scan.nii.gz`` and ``CASE/case.json``.

The scan may be a DICOM series folder (searched recursively), a single DICOM file (a
multi-frame file is read whole; a single-frame file brings its whole series from the same
folder), NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage
(``.mha``, ``.mhd``). Origin, spacing and direction are kept exactly (world = ITK LPS,
mm). A DICOM stack whose slices are unevenly spaced or tilted (gantry tilt) is resampled
linearly onto a regular grid, and the resampling is recorded.

``case.json`` holds no patient name, ID, date, free-text description or UID unless
``keep_phi`` is set (then they are kept under ``case.json["phi"]``): the series is named
by a pseudonym and the study date by the age at the scan (:mod:`twinsep.deid`). The input
is only read, never modified.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinsep import __version__
from twinsep.casefolder import Case, atomic_output_dir, sha256_array, sha256_file, write_json
from twinsep.deid import deidentify
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.ingest._shared import Loaded, check_finite, quiet_stderr, suffix
from twinsep.ingest.dicom import read_dicom_file, read_dicom_folder
from twinsep.ingest.itk import read_itk
from twinsep.progress import Progress
from twinsep.settings import default

_ITK_FORMATS = {
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
}


#: Geometry agreement required between the source and the stored scan.
_TOL_MM = 1e-3


@dataclass
class IngestResult:
    """What :func:`ingest` did.

    Attributes
    ----------
    case : Case
        The new case folder.
    volume : Volume
        The scan as stored in ``scan.nii.gz``.
    info : dict
        The contents of ``case.json``.
    notes : list of str
        Messages for the user (series chosen, resampling done), without PHI.
    series : list of str
        One line per series found (DICOM folders), without PHI.
    """

    case: Case
    volume: Volume
    info: dict
    notes: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)


def _load(scan: Path, series_uid: str | None, progress: Progress | None,
          limit_gb: float) -> Loaded:
    from twinsep.exchange.dicom import read_header

    if not scan.exists():
        raise InputError(f"{scan}: no such file or folder")
    if scan.is_dir():
        return read_dicom_folder(scan, series_uid, progress, limit_gb=limit_gb)
    fmt = _ITK_FORMATS.get(suffix(scan))
    if fmt is not None:
        if series_uid is not None:
            raise InputError(f"{scan}: --series applies to DICOM input only")
        return read_itk(scan, fmt, limit_gb=limit_gb)
    if scan.stat().st_size == 0:
        raise InputError(f"{scan}: empty file")
    ds = read_header(scan, force=True)
    if ds is None:
        raise InputError(f"{scan}: not an image (neither DICOM nor NIfTI, NRRD or MHA); "
                         "or a truncated DICOM file")
    return read_dicom_file(scan, ds, series_uid, progress, limit_gb=limit_gb)


# --------------------------------------------------------------------------------------
def thick_slice_notes(volume: Volume, source: dict, limit_mm: float) -> list[str]:
    """A warning when the slices are thicker than ``limit_mm`` (the largest voxel step,
    or the DICOM SliceThickness when it is larger), else nothing."""
    thickness = max(max(volume.spacing), float(source.get("slice_thickness_mm") or 0.0))
    if thickness <= limit_mm:
        return []
    return [f"warning: slices {thickness:.3g} mm thick (over {limit_mm:g} mm): thin "
            "structures (vessels, the bone between the brains) are blurred and the plan's "
            "surfaces and volumes are less exact; prefer a series of thinner slices"]


def _stored_geometry(path: Path) -> dict:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return {
        "origin": reader.GetOrigin(),
        "spacing": reader.GetSpacing(),
        "direction": reader.GetDirection(),
    }


def _hash_inputs(files: list[Path], progress: Progress | None) -> list[dict]:
    out = []
    for n, path in enumerate(files):
        if progress is not None:
            progress("hashing the input", n / max(len(files), 1))
        out.append({"sha256": sha256_file(path), "bytes": path.stat().st_size})
    if progress is not None:
        progress("hashing the input", 1.0)
    return out


def ingest(
    scan: Path,
    out: Path,
    *,
    series_uid: str | None = None,
    keep_phi: bool = False,
    overwrite: bool = False,
    memory_limit_gb: float = default("ingest.memory_limit_gb"),
    thick_slice_mm: float = default("ingest.thick_slice_mm"),
    progress: Progress | None = None,
) -> IngestResult:
    """Read a scan and write a new case folder.

    Parameters
    ----------
    scan : Path
        DICOM folder (searched recursively), DICOM file, NIfTI, NRRD or MHA/MHD file.
    out : Path
        The case folder to create (may exist if empty, or with ``overwrite``).
    series_uid : str or None
        SeriesInstanceUID to take from a folder holding several series; by default the
        largest (most voxels).
    keep_phi : bool
        Keep patient identifiers (name, ID, birth date, ..., source paths) in
        ``case.json["phi"]``. Off by default: nothing identifying is written.
    overwrite : bool
        Replace a case folder twinsep made (its own files only; a folder twinsep did not
        make is never written into).
    memory_limit_gb : float
        Largest voxel data (as the header declares it) read into memory, GiB; checked
        before allocating.
    thick_slice_mm : float
        Slices thicker than this (the slice step, or DICOM SliceThickness) get a warning
        in the notes, mm.
    progress : callable or None
        ``progress(message, fraction)``, called during long steps.

    Returns
    -------
    IngestResult

    Raises
    ------
    InputError
        Unreadable, truncated, 2-D or inconsistent input, unknown series UID, an ``out``
        that is not empty and not a twinsep case (or one without ``overwrite``), a
        read-only ``out``, or one inside the input or holding it. Nothing is left in
        ``out``.
    """
    scan = Path(scan)
    out = Path(out)
    with atomic_output_dir(out, overwrite=overwrite, inputs=(scan,)) as tmp:
        loaded = _load(scan, series_uid, progress, memory_limit_gb)
        volume = loaded.volume
        check_finite(volume.array, scan)
        loaded.notes.extend(thick_slice_notes(volume, loaded.source, thick_slice_mm))
        tmp_case = Case(tmp)
        if progress is not None:
            progress("writing scan.nii.gz", 0.0)
        dm = volume.direction_matrix
        if not np.allclose(dm.T @ dm, np.eye(3), atol=1e-4):
            raise InputError(f"{scan}: its direction matrix is not orthonormal (sheared "
                             "axes); NIfTI cannot store that geometry")
        with quiet_stderr():
            volume.write(tmp_case.scan)
        if progress is not None:
            progress("writing scan.nii.gz", 1.0)
        stored = _stored_geometry(tmp_case.scan)
        if not (
            np.allclose(stored["origin"], volume.origin, atol=_TOL_MM)
            and np.allclose(stored["spacing"], volume.spacing, atol=_TOL_MM)
            and np.allclose(stored["direction"], volume.direction, atol=1e-5)
        ):
            raise InputError(
                f"{scan}: its geometry cannot be stored in NIfTI without change "
                "(a non-orthogonal/sheared direction?)"
            )
        source, phi = deidentify(loaded.source, loaded.phi)
        stored_volume = Volume(volume.array, stored["origin"], stored["spacing"],
                               stored["direction"])
        info: dict[str, Any] = {
            "twinsep_version": __version__,
            "created_by": "twinsep ingest",
            "scan": tmp_case.scan.name,
            "source": source,
            "geometry": {**stored_volume.geometry(), "frame": "LPS", "units": "mm"},
            "pixel_type": np.dtype(volume.array.dtype).name,
            "value_range": [volume.array.min().item(), volume.array.max().item()],
            "rescale": loaded.rescale,
            "resampling": loaded.resampling,
            "hashes": {
                "input_files": _hash_inputs(loaded.files, progress),
                "scan_array_sha256": sha256_array(volume.array),
            },
        }
        digests = "".join(f["sha256"] for f in info["hashes"]["input_files"])
        info["hashes"]["input_sha256"] = hashlib.sha256(digests.encode()).hexdigest()
        if keep_phi:
            info["phi"] = phi
        write_json(tmp_case.case_json, info)
    return IngestResult(
        case=Case(out.absolute()),
        volume=stored_volume,
        info=info,
        notes=loaded.notes,
        series=loaded.series,
    )
