"""Ingest a scan into a new case folder: ``CASE/scan.nii.gz`` and ``CASE/case.json``.

The scan may be a DICOM series folder (searched recursively), a single DICOM file (a
multi-frame file is read whole; a single-frame file brings its whole series from the same
folder), NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage
(``.mha``, ``.mhd``). Origin, spacing and direction are kept exactly (world = ITK LPS,
mm). A DICOM stack whose slices are unevenly spaced or tilted (gantry tilt) is resampled
linearly onto a regular grid, and the resampling is recorded.

``case.json`` holds no patient name, ID, birth date or other patient identifiers unless
``keep_phi`` is set (then they are kept under ``case.json["phi"]``). The input is only
read, never modified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinsep import __version__
from twinsep.casefolder import Case, atomic_output_dir, sha256_array, sha256_file, write_json
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.progress import Progress

_ITK_FORMATS = {
    ".nii": "nifti",
    ".nii.gz": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
}

#: Patient/study identifiers copied to ``case.json["phi"]`` only with ``keep_phi``.
_PHI_TAGS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "patient_age": "PatientAge",
    "other_patient_ids": "OtherPatientIDs",
    "accession_number": "AccessionNumber",
    "study_id": "StudyID",
    "study_instance_uid": "StudyInstanceUID",
    "institution_name": "InstitutionName",
    "referring_physician_name": "ReferringPhysicianName",
    "operators_name": "OperatorsName",
    "station_name": "StationName",
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


@dataclass
class _Loaded:
    volume: Volume
    source: dict
    files: list[Path]
    rescale: dict | None = None
    resampling: dict | None = None
    phi: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _itk_error(exc: Exception) -> str:
    """The useful part of an ITK/SimpleITK exception message, on one line."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception thrown in")] or lines[-1:]
    detail = lines[-1] if lines else ""
    for marker in ("ITK ERROR:", "sitk::ERROR:"):
        if marker in detail:
            detail = detail.split(marker, 1)[1]
            detail = detail.split("): ", 1)[1] if "): " in detail else detail
    return " ".join(detail.split())[:160]


def _check_3d(size: tuple[int, ...], path: Path) -> None:
    if len(size) < 3 or sum(1 for n in size[:3] if n > 1) < 3:
        dims = "x".join(str(n) for n in size)
        raise InputError(f"{path}: a 2-D image ({dims} voxels); a 3-D scan is needed")


def _data_files(path: Path, fmt: str) -> list[Path]:
    """The header file plus any detached data file (.mhd/.nhdr)."""
    files = [path]
    if _suffix(path) not in (".mhd", ".nhdr"):
        return files
    try:
        text = path.read_bytes()[:65536].decode("latin-1")
    except OSError:
        return files
    for line in text.splitlines():
        key, _, value = line.partition("=" if fmt == "metaimage" else ":")
        key = key.strip().lower().replace(" ", "")
        value = value.strip()
        if key in ("elementdatafile", "datafile") and value and value.upper() != "LOCAL":
            candidate = path.parent / value
            if candidate.is_file():
                files.append(candidate)
    return files


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[list[str]]:
    """Capture what C/C++ libraries (ITK, GDCM) print on file descriptor 2."""
    captured: list[str] = []
    fd = 2
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield captured
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            captured.append(tmp.read().decode("utf-8", "replace"))


def _check_nifti_complete(path: Path) -> None:
    """ITK reads a truncated NIfTI file without complaint (zero-filled): check it here."""
    import gzip
    import zlib

    import nibabel as nib

    try:
        header = nib.load(path).header
        expected = int(header.get_data_offset()) + int(
            np.prod(header.get_data_shape(), dtype=np.int64)
        ) * header.get_data_dtype().itemsize
    except Exception as exc:  # nibabel raises many types for a broken header
        raise InputError(f"{path}: not a readable NIfTI file ({type(exc).__name__})") from None
    if _suffix(path) == ".nii.gz":
        size = 0
        try:
            with gzip.open(path, "rb") as fh:
                while block := fh.read(1 << 22):
                    size += len(block)
        except (EOFError, OSError, zlib.error):
            raise InputError(f"{path}: truncated or corrupt gzip data (the file ends "
                             f"after {size} of {expected} bytes)") from None
    else:
        size = path.stat().st_size
    if size < expected:
        raise InputError(f"{path}: truncated (holds {size} of the {expected} bytes its "
                         "header announces)")


def _read_itk(path: Path, fmt: str) -> _Loaded:
    import SimpleITK as sitk

    if fmt == "nifti":
        _check_nifti_complete(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _quiet_stderr():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable {fmt} image ({_itk_error(exc)})") from None
    size = reader.GetSize()
    if len(size) == 4 and size[3] == 1:
        size = size[:3]
    _check_3d(size, path)
    if len(size) > 3 or reader.GetDimension() > 4:
        raise InputError(f"{path}: a {reader.GetDimension()}-D image; a 3-D scan is needed")
    if reader.GetNumberOfComponents() != 1:
        raise InputError(f"{path}: a multi-component (colour/vector) image; a scalar scan "
                         "is needed")
    try:
        with _quiet_stderr() as said:
            image = reader.Execute()
    except RuntimeError as exc:
        detail = " ".join("".join(said).split())[:120] or _itk_error(exc)
        raise InputError(f"{path}: cannot read the voxels, the file may be truncated "
                         f"({detail})") from None
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    try:
        volume = Volume.from_sitk(image)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    files = _data_files(path, fmt)
    return _Loaded(
        volume=volume,
        source={"format": fmt, "file_count": len(files)},
        files=files,
        phi={"source_path": str(path.absolute())},
    )


# --------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------
def _tag(ds, name: str) -> str:
    value = ds.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__") and not hasattr(
        value, "family_name"
    ):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _rescale(ds) -> dict:
    from twinsep.exchange.dicom import functional_attr

    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    rtype = ds.get("RescaleType")
    if slope is None:
        slope = functional_attr(ds, "PixelValueTransformationSequence", "RescaleSlope", 0)
    if intercept is None:
        intercept = functional_attr(ds, "PixelValueTransformationSequence", "RescaleIntercept", 0)
    if rtype is None:
        rtype = functional_attr(ds, "PixelValueTransformationSequence", "RescaleType", 0)
    modality = str(ds.get("Modality", ""))
    return {
        "slope": float(slope) if slope not in (None, "") else 1.0,
        "intercept": float(intercept) if intercept not in (None, "") else 0.0,
        "type": str(rtype) if rtype else ("HU" if modality == "CT" else ""),
        "applied": True,
    }


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(
            folder).parts)
    )


def _choose_series(series: dict, series_uid: str | None, where: Path) -> tuple[Any, list[str]]:
    if series_uid is not None:
        if series_uid not in series:
            known = ", ".join(series) or "none"
            raise InputError(f"{where}: no series with UID {series_uid} (found: {known})")
        return series[series_uid], [f"took series {series_uid} (--series)"]
    if len(series) == 1:
        return next(iter(series.values())), []
    chosen = max(series.values(), key=lambda s: (s.n_voxels, s.n_images))
    return chosen, [
        f"{len(series)} series found; took the largest, {chosen.uid} "
        f"({chosen.n_images} slices); choose another with --series UID"
    ]


def _read_dicom_pixels(path: Path, ts: str) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        with _quiet_stderr():
            image = reader.Execute()
    except RuntimeError as exc:
        from pydicom.uid import UID

        name = UID(ts).name if ts else "unknown transfer syntax"
        raise InputError(
            f"{path}: cannot decode the pixel data ({name}); the file may be truncated, "
            f"corrupt or compressed in a way no decoder handles"
            + (f": {_itk_error(exc)}" if _itk_error(exc) else "")
        ) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: a colour image; a greyscale scan is needed")
    arr = sitk.GetArrayFromImage(image)
    if arr.ndim == 2:
        arr = arr[None]
    return arr


def _pixel_dtype(values: np.ndarray) -> np.dtype:
    """int16 when all values are integers that fit, then int32, else float32."""
    if values.size == 0:
        return np.dtype(np.int16)
    if np.issubdtype(values.dtype, np.integer) or np.all(np.mod(values, 1) == 0):
        lo, hi = float(values.min()), float(values.max())
        if -32768 <= lo and hi <= 32767:
            return np.dtype(np.int16)
        if -(2**31) <= lo and hi < 2**31:
            return np.dtype(np.int32)
    return np.dtype(np.float32)


def _load_series(series, where: Path, progress: Progress | None) -> _Loaded:
    from twinsep.exchange.dicom import resample_stack, stack_geometry

    headers = series.headers
    uid = series.uid
    multi = any(h.frames > 1 for h in headers)
    if multi and len(headers) > 1:
        raise InputError(
            f"{where}: series {uid} has {len(headers)} files, some multi-frame; "
            "pass one multi-frame file"
        )
    if series.n_images < 2:
        h = headers[0]
        raise InputError(f"{h.path}: a 2-D image (one slice, {h.columns}x{h.rows}); "
                         "a 3-D scan is needed")
    first = headers[0]
    for h in headers:
        missing = [name for name, v in (("ImagePositionPatient", h.positions),
                                        ("ImageOrientationPatient", h.orientation),
                                        ("PixelSpacing", h.pixel_spacing)) if v is None]
        if missing:
            raise InputError(f"{h.path}: lacks {', '.join(missing)}; cannot place the image "
                             "in space")
    sizes = {(h.columns, h.rows) for h in headers}
    if len(sizes) > 1:
        dims = ", ".join(f"{c}x{r}" for c, r in sorted(sizes))
        raise InputError(f"{where}: series {uid} mixes images of different sizes ({dims}); "
                         "it is not one volume")
    for h in headers:
        if not np.allclose(h.orientation, first.orientation, atol=1e-4):
            raise InputError(f"{where}: series {uid} mixes images of different orientations "
                             f"({h.path.name} differs from {first.path.name}); it is not "
                             "one volume")
        if not np.allclose(h.pixel_spacing, first.pixel_spacing, rtol=1e-3):
            raise InputError(f"{where}: series {uid} mixes pixel spacings ({h.path.name} "
                             f"differs from {first.path.name}); it is not one volume")
    positions = np.concatenate([h.positions for h in headers])
    try:
        geom = stack_geometry(positions, first.orientation, first.pixel_spacing)
    except ValueError as exc:
        raise InputError(f"{where}: series {uid}: {exc}") from None

    slices = []
    for n, h in enumerate(headers):
        if progress is not None:
            progress("reading DICOM pixels", n / max(len(headers), 1))
        arr = _read_dicom_pixels(h.path, h.transfer_syntax)
        if arr.shape != (h.frames, h.rows, h.columns):
            raise InputError(f"{h.path}: pixel data holds {arr.shape[::-1]} voxels, the "
                             f"header says {(h.columns, h.rows, h.frames)}")
        slices.append(arr)
    if progress is not None:
        progress("reading DICOM pixels", 1.0)
    stack = np.concatenate(slices)[geom.order]
    dtype = _pixel_dtype(stack)
    resampling = None
    notes = []
    if geom.regular:
        array = stack.astype(dtype, copy=False)
        origin, spacing = geom.origin, geom.spacing
    else:
        if progress is not None:
            progress("resampling onto a regular grid", 0.0)
        fill = float(stack.min())
        out, origin, size = resample_stack(stack.astype(np.float64), geom, fill=fill)
        array = np.rint(out).astype(dtype) if dtype.kind == "i" else out.astype(dtype)
        spacing = geom.spacing
        reasons = []
        if geom.uneven:
            reasons.append("uneven slice spacing")
        if geom.tilted:
            reasons.append(f"gantry tilt ({geom.tilt_deg:.2f} deg)")
        resampling = {
            "reason": reasons,
            "method": "linear",
            "source_slice_count": len(geom.order),
            "source_slice_steps_mm": [float(s) for s in geom.steps_mm],
            "tilt_deg": geom.tilt_deg,
            "target_spacing_mm": [float(s) for s in spacing],
            "target_size_ijk": [int(s) for s in size],
        }
        steps = geom.steps_mm
        notes.append(
            f"resampled onto a regular grid ({' and '.join(reasons)}: slice steps "
            f"{steps.min():.3g}-{steps.max():.3g} mm) with linear interpolation, "
            f"{spacing[2]:.4g} mm between slices, {int(size[2])} slices"
        )
        if progress is not None:
            progress("resampling onto a regular grid", 1.0)
    volume = Volume(array, tuple(origin), tuple(spacing), tuple(geom.direction.ravel()))
    ds = first.dataset
    tss = sorted({h.transfer_syntax for h in headers if h.transfer_syntax})
    source = {
        "format": "dicom-multiframe" if multi else "dicom-series",
        "file_count": len(headers),
        "slice_count": int(series.n_images),
        "series_uid": uid,
        "modality": _tag(ds, "Modality"),
        "series_description": _tag(ds, "SeriesDescription"),
        "study_date": _tag(ds, "StudyDate"),
        "manufacturer": _tag(ds, "Manufacturer"),
        "manufacturer_model": _tag(ds, "ManufacturerModelName"),
        "convolution_kernel": _tag(ds, "ConvolutionKernel"),
        "sop_class_uid": _tag(ds, "SOPClassUID"),
        "transfer_syntaxes": tss,
        "slice_thickness_mm": _float_or_none(ds.get("SliceThickness")),
    }
    source = {k: v for k, v in source.items() if v not in ("", None)}
    phi = {key: _tag(ds, tag) for key, tag in _PHI_TAGS.items() if _tag(ds, tag)}
    phi["source_files"] = [str(h.path.absolute()) for h in headers]
    order = np.argsort([np.min(h.positions @ geom.direction[:, 2]) for h in headers],
                       kind="stable")
    return _Loaded(
        volume=volume,
        source=source,
        files=[headers[i].path for i in order],
        rescale=_rescale(ds),
        resampling=resampling,
        phi=phi,
        notes=notes,
    )


def _float_or_none(value) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _read_dicom_folder(folder: Path, series_uid: str | None,
                       progress: Progress | None) -> _Loaded:
    from twinsep.exchange.dicom import scan_files

    files = _dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: empty folder (no files)")
    series, _skipped = scan_files(files, force=True, progress=progress)
    if not series:
        raise InputError(f"{folder}: no DICOM images among its {len(files)} file(s)")
    chosen, notes = _choose_series(series, series_uid, folder)
    loaded = _load_series(chosen, folder, progress)
    loaded.source["files_in_scan"] = len(files)
    loaded.source["series_in_scan"] = len(series)
    loaded.notes[:0] = notes
    loaded.series = [s.summary() for s in series.values()]
    return loaded


def _read_dicom_file(path: Path, ds, series_uid: str | None,
                     progress: Progress | None) -> _Loaded:
    from twinsep.exchange.dicom import Series, header_of, read_header, scan_files

    header = header_of(path, ds)
    if header is None:
        raise InputError(f"{path}: a DICOM file without an image")
    if series_uid is not None and series_uid != header.series_uid:
        raise InputError(f"{path}: belongs to series {header.series_uid}, not {series_uid}")
    if header.frames > 1:
        return _load_series(Series(header.series_uid, [header]), path, progress)
    # a single-frame file: its whole series from the same folder
    siblings = sorted(p for p in path.parent.iterdir() if p.is_file()
                      and not p.name.startswith("."))
    series, _ = scan_files(siblings, force=True, progress=progress)
    chosen = series.get(header.series_uid)
    if chosen is None:  # the file itself was not recognised in the folder scan
        full = read_header(path, force=True)
        chosen = Series(header.series_uid, [header_of(path, full)])
    loaded = _load_series(chosen, path, progress)
    loaded.notes.insert(0, f"read series {chosen.uid} ({len(chosen.headers)} file(s) in "
                           "the folder of the given file)")
    return loaded


def _load(scan: Path, series_uid: str | None, progress: Progress | None) -> _Loaded:
    from twinsep.exchange.dicom import read_header

    if not scan.exists():
        raise InputError(f"{scan}: no such file or folder")
    if scan.is_dir():
        return _read_dicom_folder(scan, series_uid, progress)
    fmt = _ITK_FORMATS.get(_suffix(scan))
    if fmt is not None:
        if series_uid is not None:
            raise InputError(f"{scan}: --series applies to DICOM input only")
        return _read_itk(scan, fmt)
    if scan.stat().st_size == 0:
        raise InputError(f"{scan}: empty file")
    ds = read_header(scan, force=True)
    if ds is None:
        raise InputError(f"{scan}: not an image (neither DICOM nor NIfTI, NRRD or MHA); "
                         "or a truncated DICOM file")
    return _read_dicom_file(scan, ds, series_uid, progress)


# --------------------------------------------------------------------------------------
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
        Replace a non-empty ``out``.
    progress : callable or None
        ``progress(message, fraction)``, called during long steps.

    Returns
    -------
    IngestResult

    Raises
    ------
    InputError
        Unreadable, truncated, 2-D or inconsistent input, unknown series UID, or a
        non-empty ``out``. Nothing is left in ``out``.
    """
    scan = Path(scan)
    out = Path(out)
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        loaded = _load(scan, series_uid, progress)
        volume = loaded.volume
        tmp_case = Case(tmp)
        if progress is not None:
            progress("writing scan.nii.gz", 0.0)
        dm = volume.direction_matrix
        if not np.allclose(dm.T @ dm, np.eye(3), atol=1e-4):
            raise InputError(f"{scan}: its direction matrix is not orthonormal (sheared "
                             "axes); NIfTI cannot store that geometry")
        with _quiet_stderr():
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
        stored_volume = Volume(volume.array, stored["origin"], stored["spacing"],
                               stored["direction"])
        info: dict[str, Any] = {
            "twinsep_version": __version__,
            "created_by": "twinsep ingest",
            "scan": tmp_case.scan.name,
            "source": loaded.source,
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
            info["phi"] = loaded.phi
        write_json(tmp_case.case_json, info)
    return IngestResult(
        case=Case(out.absolute()),
        volume=stored_volume,
        info=info,
        notes=loaded.notes,
        series=loaded.series,
    )
