"""DICOM readers: a series folder (searched recursively), one file of a series, or one
multi-frame file; stacks are placed by ImagePositionPatient and resampled when tilted or
unevenly spaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.ingest._shared import Loaded, itk_error, quiet_stderr
from twinsep.progress import Progress

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
        with quiet_stderr():
            image = reader.Execute()
    except RuntimeError as exc:
        from pydicom.uid import UID

        name = UID(ts).name if ts else "unknown transfer syntax"
        raise InputError(
            f"{path}: cannot decode the pixel data ({name}); the file may be truncated, "
            f"corrupt or compressed in a way no decoder handles"
            + (f": {itk_error(exc)}" if itk_error(exc) else "")
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


def _load_series(series, where: Path, progress: Progress | None) -> Loaded:
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
    return Loaded(
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


def read_dicom_folder(folder: Path, series_uid: str | None,
                      progress: Progress | None, *, limit_gb: float) -> Loaded:
    """Read one series of a DICOM folder (searched recursively); ``limit_gb`` bounds the
    voxel data read into memory."""
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


def read_dicom_file(path: Path, ds, series_uid: str | None,
                    progress: Progress | None, *, limit_gb: float) -> Loaded:
    """Read one DICOM file: a multi-frame file whole, a single-frame file with its
    series from the same folder; ``limit_gb`` bounds the voxel data read into memory."""
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
