"""DICOM readers: a series folder (searched recursively), one file of a series, or one
multi-frame file; stacks are placed by ImagePositionPatient and resampled when tilted or
unevenly spaced."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from twinsep.deid import pseudonym
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.ingest._shared import Loaded, check_allocation, itk_error, quiet_stderr
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


def _stack_problem(series) -> tuple[Path | None, str] | None:
    """Why ``series`` cannot be stacked into one 3-D volume, or None when it can.

    Returns the file at fault (None: the series as a whole) and one line without PHI.
    """
    from twinsep.exchange.dicom import stack_geometry

    headers = series.headers
    uid = series.name
    if any(h.frames > 1 for h in headers) and len(headers) > 1:
        return None, (f"series {uid} has {len(headers)} files, some multi-frame; pass one "
                      "multi-frame file")
    if series.n_images < 2:
        h = headers[0]
        return h.path, (f"a 2-D image (one slice, {h.columns}x{h.rows}); a 3-D scan is "
                        "needed")
    first = headers[0]
    for h in headers:
        missing = [name for name, v in (("ImagePositionPatient", h.positions),
                                        ("ImageOrientationPatient", h.orientation),
                                        ("PixelSpacing", h.pixel_spacing)) if v is None]
        if missing:
            return h.path, (f"lacks {', '.join(missing)}; cannot place the image in "
                            "space")
    sizes = {(h.columns, h.rows) for h in headers}
    if len(sizes) > 1:
        dims = ", ".join(f"{c}x{r}" for c, r in sorted(sizes))
        return None, (f"series {uid} mixes images of different sizes ({dims}); it is not "
                      "one volume")
    for h in headers:
        if not np.allclose(h.orientation, first.orientation, atol=1e-4):
            return None, (f"series {uid} mixes images of different orientations "
                          f"({h.path.name} differs from {first.path.name}); it is not one "
                          "volume")
        if not np.allclose(h.pixel_spacing, first.pixel_spacing, rtol=1e-3):
            return None, (f"series {uid} mixes pixel spacings ({h.path.name} differs from "
                          f"{first.path.name}); it is not one volume")
    try:
        stack_geometry(np.concatenate([h.positions for h in headers]), first.orientation,
                       first.pixel_spacing)
    except ValueError as exc:
        return None, f"series {uid}: {exc}"
    return None


def _thickness_mm(series) -> float:
    """SliceThickness (mm) of the series' first file, else its median slice step, else
    infinity (unknown sorts last among thin-first)."""
    thick = _float_or_none(series.headers[0].dataset.get("SliceThickness"))
    if thick is not None and thick > 0:
        return thick
    pos = [h.positions for h in series.headers if h.positions is not None]
    o = series.headers[0].orientation
    if len(pos) and o is not None and sum(len(p) for p in pos) > 1:
        normal = np.cross(o[:3], o[3:])
        steps = np.diff(np.sort(np.concatenate(pos) @ normal))
        steps = steps[steps > 1e-6]
        if steps.size:
            return float(np.median(steps))
    return float("inf")


_MODALITY_RANK = {"CT": 0, "MR": 1}


def _series_list(series: dict) -> str:
    return "; ".join(s.summary() for s in series.values())


_HINT = ("choose one with --series ID (its pseudonym or series number as listed, or its "
         "SeriesInstanceUID)")


def _names(uid: str, ds) -> set[str]:
    """What ``--series`` may say to name a series: its UID, its pseudonym or its number."""
    number = str(ds.get("SeriesNumber", "") or "").strip()
    return {uid, pseudonym(uid)} | ({number} if number else set())


def find_series(series: dict, wanted: str):
    """The series that ``wanted`` names (UID, pseudonym, or a series number that only
    one series has), or None."""
    wanted = str(wanted).strip()
    hits = [s for s in series.values() if wanted in _names(s.uid, s.headers[0].dataset)]
    exact = [s for s in hits if wanted in (s.uid, s.name)]
    return (exact or hits)[0] if len(exact) == 1 or len(hits) == 1 else None


def _choose_series(series: dict, series_uid: str | None, where: Path) -> tuple[Any, list[str]]:
    """The series to read: the one named, the only one, or the best: one that can be
    stacked, CT before MR before others, thinnest slices, then the most voxels."""
    hint = _HINT
    if series_uid is not None:
        wanted = find_series(series, series_uid)
        if wanted is None:
            raise InputError(f"{where}: no one series matches --series (found: "
                             f"{_series_list(series) or 'none'}); {hint}")
        return wanted, [f"took series {wanted.name} (--series)"]
    if len(series) == 1:
        return next(iter(series.values())), []
    problems = {uid: _stack_problem(s) for uid, s in series.items()}
    stackable = [s for s in series.values() if problems[s.uid] is None]
    if not stackable:
        why = "; ".join(f"series {s.tag('SeriesNumber') or '-'} {s.tag('Modality') or '?'}: "
                        f"{problems[s.uid][1]}" for s in series.values())
        raise InputError(f"{where}: none of its {len(series)} series can be stacked into a "
                         f"3-D volume ({why}); series found: {_series_list(series)}; {hint}")

    def rank(s) -> tuple:
        return (-_MODALITY_RANK.get(s.tag("Modality").upper(), 2), -_thickness_mm(s),
                s.n_voxels, s.n_images)

    chosen = max(stackable, key=rank)
    thick = _thickness_mm(chosen)
    thick_text = f", {thick:.3g} mm" if np.isfinite(thick) else ""
    return chosen, [
        f"{len(series)} series found ({len(stackable)} can be stacked); took "
        f"{chosen.name} ({chosen.tag('Modality') or '?'}, {chosen.n_images} slices"
        f"{thick_text}: CT before MR, the thinnest slices, then the largest); "
        f"{_HINT.replace('one', 'another', 1)}"
    ]


def _read_dicom_pixels(path: Path, ts: str) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
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


def _held_itemsize(ds) -> int:
    """Bytes per voxel of the pixels as read (GDCM applies the rescale: float64 when
    the slope or intercept is not a whole number)."""
    r = _rescale(ds)
    if r["slope"] != int(r["slope"]) or r["intercept"] != int(r["intercept"]):
        return 8
    bits = _float_or_none(ds.get("BitsAllocated")) or 16
    return max(1, int(bits) // 8)


def _load_series(series, where: Path, progress: Progress | None, *,
                 limit_gb: float) -> Loaded:
    from twinsep.exchange.dicom import resample_grid, resample_stack, stack_geometry

    headers = series.headers
    uid = series.uid
    multi = any(h.frames > 1 for h in headers)
    first = headers[0]
    # the declared size, before anything else: a header may claim 10^9 frames
    check_allocation((series.n_images, first.rows, first.columns),
                     _held_itemsize(first.dataset), where, limit_gb)
    problem = _stack_problem(series)
    if problem is not None:
        path, text = problem
        raise InputError(f"{path if path is not None else where}: {text}")
    positions = np.concatenate([h.positions for h in headers])
    try:
        geom = stack_geometry(positions, first.orientation, first.pixel_spacing)
    except ValueError as exc:
        raise InputError(f"{where}: series {series.name}: {exc}") from None
    if not geom.regular:  # the stack as float64, and the grid it is resampled onto
        check_allocation((series.n_images, first.rows, first.columns), 8, where, limit_gb)
        _o, size, _low = resample_grid(geom, first.rows, first.columns)
        check_allocation(tuple(int(n) for n in size[::-1]), 8, where, limit_gb)

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
    """Read one series of a DICOM folder (searched recursively).

    Files with malformed headers are skipped and repeated SOPInstanceUIDs dropped, with
    a note each. Without ``series_uid`` the series is chosen by :func:`_choose_series`;
    when it cannot be read, the error lists every series (number, modality, size,
    slice thickness; no free text) with the ``--series`` hint. ``limit_gb`` (GiB)
    bounds the declared voxel data, checked before any pixel is read.
    """
    from twinsep.exchange.dicom import scan_files

    files = _dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: empty folder (no files)")
    scan_notes: list[str] = []
    series, _skipped = scan_files(files, force=True, progress=progress, notes=scan_notes,
                                  root=folder)
    if not series:
        raise InputError(f"{folder}: no DICOM images among its {len(files)} file(s)")
    chosen, notes = _choose_series(series, series_uid, folder)
    try:
        loaded = _load_series(chosen, folder, progress, limit_gb=limit_gb)
    except InputError as exc:
        if len(series) < 2:
            raise
        raise InputError(f"{exc}; series found: {_series_list(series)}; "
                         f"{_HINT.replace('one', 'another', 1)}") from None
    loaded.source["files_in_scan"] = len(files)
    loaded.source["series_in_scan"] = len(series)
    loaded.notes[:0] = scan_notes + notes
    loaded.series = [s.summary() for s in series.values()]
    return loaded


def read_dicom_file(path: Path, ds, series_uid: str | None,
                    progress: Progress | None, *, limit_gb: float) -> Loaded:
    """Read one DICOM file: a multi-frame file whole, a single-frame file with its
    series from the same folder; ``limit_gb`` (GiB) bounds the declared voxel data."""
    from twinsep.exchange.dicom import Series, header_of, read_header, scan_files

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = header_of(path, ds)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "malformed header"
        raise InputError(f"{path}: a malformed DICOM header ({reason})") from None
    if header is None:
        raise InputError(f"{path}: a DICOM file without an image")
    if series_uid is not None and series_uid not in _names(header.series_uid, header.dataset):
        raise InputError(f"{path}: belongs to series {pseudonym(header.series_uid)}, not "
                         "to the one --series names")
    if header.frames > 1:
        return _load_series(Series(header.series_uid, [header]), path, progress,
                            limit_gb=limit_gb)
    # a single-frame file: its whole series from the same folder
    siblings = sorted(p for p in path.parent.iterdir() if p.is_file()
                      and not p.name.startswith("."))
    scan_notes: list[str] = []
    series, _ = scan_files(siblings, force=True, progress=progress, notes=scan_notes,
                           root=path.parent)
    chosen = series.get(header.series_uid)
    if chosen is None:  # the file itself was not recognised in the folder scan
        full = read_header(path, force=True)
        chosen = Series(header.series_uid, [header_of(path, full)])
    loaded = _load_series(chosen, path, progress, limit_gb=limit_gb)
    loaded.notes[:0] = [f"read series {chosen.name} ({len(chosen.headers)} file(s) in "
                        "the folder of the given file)", *scan_notes]
    return loaded
