"""DICOM: a CT series writer and the helpers that ``ingest`` uses to read series.

Geometry follows :mod:`twinsep.image`: world coordinates are DICOM patient coordinates
(LPS, mm). For a volume with direction columns ``(d_i, d_j, d_k)``:

* ``ImageOrientationPatient`` = ``d_i`` (row direction: along a row, towards increasing
  column index) then ``d_j`` (column direction);
* ``PixelSpacing`` = ``[spacing_j, spacing_i]`` (spacing between rows, then between
  columns);
* ``ImagePositionPatient`` of slice ``k`` = world position of voxel ``(0, 0, k)``.

Pixels are read with SimpleITK (GDCM: it decodes the compressed transfer syntaxes and
applies the rescale slope/intercept); tags are read with pydicom.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinsep.image import Volume
from twinsep.progress import Progress

_IMPLEMENTATION_UID = "2.25.181302546911846722358213367014318090563"


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _uid(*parts: object) -> str:
    """A deterministic UID (``2.25.<decimal of 128 bits of a SHA-256>``)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode())
    return "2.25." + str(int.from_bytes(h.digest()[:16], "big"))


def _ds(values: Iterable[float]) -> list[str]:
    from pydicom.valuerep import format_number_as_ds

    return [format_number_as_ds(float(v)) for v in values]


def _stored_values(
    array: np.ndarray, intercept: float, slope: float
) -> tuple[np.ndarray, int]:
    """Stored pixel values (uint16 or int16) and the PixelRepresentation (0 or 1)."""
    if slope == 0:
        raise ValueError("rescale_slope must not be 0")
    stored = np.rint((np.asarray(array, dtype=np.float64) - intercept) / slope)
    lo, hi = (float(stored.min()), float(stored.max())) if stored.size else (0.0, 0.0)
    if lo >= 0 and hi <= 65535:
        return stored.astype("<u2"), 0
    if lo >= -32768 and hi <= 32767:
        return stored.astype("<i2"), 1
    raise ValueError(
        f"values {array.min()}..{array.max()} do not fit 16 bits with "
        f"intercept {intercept} and slope {slope}"
    )


def _base_dataset(
    volume: Volume,
    *,
    sop_class: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    patient_name: str,
    patient_id: str,
    series_description: str,
    study_date: str | None,
    pixel_representation: int,
):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.Modality = "CT"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = study_date or ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesNumber = 1
    ds.SeriesDescription = series_description
    ds.Manufacturer = "twinsep"
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = volume.shape[1]
    ds.Columns = volume.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = pixel_representation
    return ds


def _file_meta(sop_class: str, sop_instance: str):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    meta.ImplementationVersionName = "TWINSEP"
    return meta


def _content_key(volume: Volume, *extra: object) -> str:
    from twinsep.casefolder import sha256_array

    return "|".join(
        [sha256_array(volume.array), repr(volume.origin), repr(volume.spacing),
         repr(volume.direction), *(repr(e) for e in extra)]
    )


def write_ct_series(
    volume: Volume,
    folder: Path,
    *,
    patient_name: str = "ANONYMOUS",
    patient_id: str = "",
    series_description: str = "twinsep",
    study_date: str | None = None,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``volume`` as a CT Image Storage series, one file per k-slice.

    Parameters
    ----------
    volume : Volume
        Voxel values in Hounsfield units (any numeric dtype; rounded to the stored
        integers), with any origin, spacing (mm) and direction.
    folder : Path
        Output folder (created); files are named ``IM00001.dcm``, ``IM00002.dcm``, ...
    patient_name, patient_id : str
        Written to PatientName/PatientID (test data only; the default is anonymous).
    series_description : str
        SeriesDescription.
    study_date : str or None
        StudyDate ``YYYYMMDD``; empty when None (so that the output is deterministic).
    rescale_intercept, rescale_slope : float
        RescaleIntercept (HU) and RescaleSlope; stored value = (HU - intercept) / slope,
        as unsigned 16-bit when it fits, else signed 16-bit.
    series_uid : str or None
        SeriesInstanceUID; by default derived from a hash of the content, as are the
        study, frame-of-reference and SOP instance UIDs (same input, same files).

    Returns
    -------
    list of Path
        The files written, in k order.
    """
    from pydicom.dataset import FileDataset
    from pydicom.uid import CTImageStorage

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored, pixel_rep = _stored_values(volume.array, rescale_intercept, rescale_slope)
    key = _content_key(volume, patient_name, patient_id, series_description, study_date,
                       rescale_intercept, rescale_slope)
    series_uid = series_uid or _uid("series", key)
    study_uid = _uid("study", key)
    frame_uid = _uid("frame", key)
    d = volume.direction_matrix
    normal = d[:, 2]
    iop = _ds([*d[:, 0], *d[:, 1]])
    paths = []
    for k in range(volume.shape[0]):
        sop_uid = _uid("instance", series_uid, key, k)
        ds = _base_dataset(
            volume, sop_class=CTImageStorage, study_uid=study_uid, series_uid=series_uid,
            frame_uid=frame_uid, patient_name=patient_name, patient_id=patient_id,
            series_description=series_description, study_date=study_date,
            pixel_representation=pixel_rep,
        )
        position = volume.index_to_world(np.array([k, 0.0, 0.0]))
        ds.SOPInstanceUID = sop_uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = _ds(position)
        ds.ImageOrientationPatient = iop
        ds.SliceLocation = _ds([float(position @ normal)])[0]
        ds.PixelSpacing = _ds([volume.spacing[1], volume.spacing[0]])
        ds.SliceThickness = _ds([volume.spacing[2]])[0]
        ds.SpacingBetweenSlices = _ds([volume.spacing[2]])[0]
        ds.KVP = "120"
        ds.RescaleIntercept = _ds([rescale_intercept])[0]
        ds.RescaleSlope = _ds([rescale_slope])[0]
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = folder / f"IM{k + 1:05d}.dcm"
        fds = FileDataset(str(path), ds, file_meta=_file_meta(CTImageStorage, sop_uid),
                          preamble=b"\0" * 128)
        fds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced_ct(
    volume: Volume,
    path: Path,
    *,
    patient_name: str = "ANONYMOUS",
    patient_id: str = "",
    series_description: str = "twinsep",
    study_date: str | None = None,
    rescale_intercept: float = -1024.0,
    rescale_slope: float = 1.0,
    series_uid: str | None = None,
    frame_order: Sequence[int] | None = None,
) -> Path:
    """Write ``volume`` as one multi-frame Enhanced CT Image Storage file.

    Per-frame functional groups carry each frame's ImagePositionPatient; the shared
    groups carry orientation, pixel spacing (mm) and the rescale. Parameters as for
    :func:`write_ct_series`; ``frame_order`` lists the k-slices in the order the frames
    are stored (default ``0..nk-1``), for testing readers that must sort frames.

    Returns
    -------
    Path
        ``path``.
    """
    from pydicom.dataset import Dataset, FileDataset
    from pydicom.uid import EnhancedCTImageStorage

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored, pixel_rep = _stored_values(volume.array, rescale_intercept, rescale_slope)
    key = _content_key(volume, patient_name, patient_id, series_description, study_date,
                       rescale_intercept, rescale_slope, "enhanced",
                       None if frame_order is None else list(frame_order))
    series_uid = series_uid or _uid("series", key)
    sop_uid = _uid("instance", series_uid, key)
    order = list(range(volume.shape[0])) if frame_order is None else [int(k) for k in
                                                                         frame_order]
    ds = _base_dataset(
        volume, sop_class=EnhancedCTImageStorage, study_uid=_uid("study", key),
        series_uid=series_uid, frame_uid=_uid("frame", key), patient_name=patient_name,
        patient_id=patient_id, series_description=series_description,
        study_date=study_date, pixel_representation=pixel_rep,
    )
    d = volume.direction_matrix
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentDate = study_date or ""
    ds.ContentTime = ""
    ds.AcquisitionNumber = 1
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.BurnedInAnnotation = "NO"
    ds.NumberOfFrames = len(order)

    measures = Dataset()
    measures.PixelSpacing = _ds([volume.spacing[1], volume.spacing[0]])
    measures.SliceThickness = _ds([volume.spacing[2]])[0]
    measures.SpacingBetweenSlices = _ds([volume.spacing[2]])[0]
    orientation = Dataset()
    orientation.ImageOrientationPatient = _ds([*d[:, 0], *d[:, 1]])
    transform = Dataset()
    transform.RescaleIntercept = _ds([rescale_intercept])[0]
    transform.RescaleSlope = _ds([rescale_slope])[0]
    transform.RescaleType = "HU"
    frame_type = Dataset()
    frame_type.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelValueTransformationSequence = [transform]
    shared.CTImageFrameTypeSequence = [frame_type]
    ds.SharedFunctionalGroupsSequence = [shared]

    per_frame = []
    for n, k in enumerate(order):
        position = Dataset()
        position.ImagePositionPatient = _ds(volume.index_to_world(np.array([k, 0.0, 0.0])))
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.FrameAcquisitionNumber = n + 1
        item = Dataset()
        item.PlanePositionSequence = [position]
        item.FrameContentSequence = [content]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.ascontiguousarray(stored[order]).tobytes()
    fds = FileDataset(str(path), ds, file_meta=_file_meta(EnhancedCTImageStorage, sop_uid),
                      preamble=b"\0" * 128)
    fds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------------------
# reading: headers
# --------------------------------------------------------------------------------------
@dataclass
class Header:
    """Tags of one DICOM image file (read without its pixel data).

    Attributes
    ----------
    path : Path
        The file.
    dataset : pydicom.Dataset
        The header (everything before the pixel data).
    positions : (n, 3) ndarray
        ImagePositionPatient (mm) of each frame, in stored frame order.
    orientation : (6,) ndarray or None
        ImageOrientationPatient.
    pixel_spacing : (2,) ndarray or None
        PixelSpacing (mm): between rows, then between columns.
    """

    path: Path
    dataset: object
    series_uid: str
    rows: int
    columns: int
    frames: int
    positions: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: np.ndarray | None
    transfer_syntax: str = ""
    extra: dict = field(default_factory=dict)


def read_header(path: Path, *, force: bool = False):
    """The header of ``path`` as a pydicom Dataset, or None when it is not DICOM.

    Files without the 128-byte preamble are accepted only when ``force`` is set and the
    result looks like an image (has Rows and a SOP Class UID).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        if not force:
            return None
    except Exception:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if "Rows" in ds and "SOPClassUID" in ds:
            return ds
    except Exception:
        pass
    return None


def _floats(value, n: int) -> np.ndarray | None:
    try:
        out = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) else None


def functional_attr(ds, seq: str, attr: str, frame: int | None = None):
    """An attribute from the per-frame (``frame``) or shared functional groups of an
    enhanced (multi-frame) DICOM dataset, or None."""
    groups = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        pf = ds.PerFrameFunctionalGroupsSequence
        if frame < len(pf):
            groups.append(pf[frame])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        if seq in group and len(group[seq].value) and attr in group[seq].value[0]:
            return group[seq].value[0][attr].value
    return None


def _count(ds, name: str, default: int) -> int:
    """A count tag (NumberOfFrames, Rows, Columns) as an int; ValueError naming the tag
    when it is not a non-negative whole number (e.g. NumberOfFrames "1A")."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of invalid IS values when read
        value = ds.get(name, default)
    if value in (None, ""):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} {str(value)[:16]!r} is not a number") from None
    if number < 0:
        raise ValueError(f"{name} {number} is negative")
    return number


def header_of(path: Path, ds) -> Header | None:
    """Geometry tags of an image file, or None when it holds no image pixels.

    Raises
    ------
    ValueError
        A malformed count (NumberOfFrames, Rows or Columns that is not a whole number).
    """
    if "Rows" not in ds or "Columns" not in ds:
        return None
    frames = max(_count(ds, "NumberOfFrames", 1), 1)
    rows, columns = _count(ds, "Rows", 0), _count(ds, "Columns", 0)
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
    if frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        # only as many frames as the per-frame groups describe: a header claiming a huge
        # NumberOfFrames must not cost a loop over them (it fails on size later)
        pf = ds.get("PerFrameFunctionalGroupsSequence") or []
        positions = []
        for f in range(min(frames, max(len(pf), 1))):
            p = functional_attr(ds, "PlanePositionSequence", "ImagePositionPatient", f)
            positions.append(_floats(p, 3) if p is not None else None)
        pos = (None if len(positions) != frames or any(p is None for p in positions)
               else np.array(positions))
        iop = functional_attr(ds, "PlaneOrientationSequence", "ImageOrientationPatient", 0)
        if iop is None:
            iop = ds.get("ImageOrientationPatient")
        ps = functional_attr(ds, "PixelMeasuresSequence", "PixelSpacing", 0)
        if ps is None:
            ps = ds.get("PixelSpacing")
    else:
        ipp = ds.get("ImagePositionPatient")
        p = _floats(ipp, 3) if ipp is not None else None
        pos = None if p is None else p[None, :]
        iop = ds.get("ImageOrientationPatient")
        ps = ds.get("PixelSpacing")
    return Header(
        path=Path(path),
        dataset=ds,
        series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
        rows=rows,
        columns=columns,
        frames=frames,
        positions=pos,
        orientation=None if iop is None else _floats(iop, 6),
        pixel_spacing=None if ps is None else _floats(ps, 2),
        transfer_syntax=ts,
    )


@dataclass
class Series:
    """The image files of one SeriesInstanceUID found in a scan."""

    uid: str
    headers: list[Header]

    @property
    def n_images(self) -> int:
        """Number of slices (frames) in the series."""
        return sum(h.frames for h in self.headers)

    @property
    def n_voxels(self) -> int:
        return sum(h.frames * h.rows * h.columns for h in self.headers)

    def tag(self, name: str) -> str:
        """A tag of the first file as text ('' when absent)."""
        value = self.headers[0].dataset.get(name, "")
        return "" if value is None else str(value)

    @property
    def name(self) -> str:
        """The series' pseudonym (:func:`twinsep.deid.pseudonym` of its UID): what twinsep
        shows instead of the UID, and what ``--series`` accepts."""
        from twinsep.deid import pseudonym

        return pseudonym(self.uid)

    def summary(self) -> str:
        """One line for listing series to the user: pseudonym, number, modality, size,
        slice thickness. No UID, no free text (a SeriesDescription can hold a patient's
        name)."""
        h = self.headers[0]
        number = self.tag("SeriesNumber") or "-"
        thick = self.tag("SliceThickness")
        thick = f"{float(thick):g} mm" if _is_number(thick) else "- mm"
        return (f"{self.name}  series {number}  {self.tag('Modality') or '?'}  {h.columns}x"
                f"{h.rows}x{self.n_images}  {thick}  {len(self.headers)} file(s)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when inside it (folder names often hold a patient's
    name; the user gave ``root``), else its file name."""
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return Path(path).name


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes (compared in 1 MiB blocks)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def scan_files(
    paths: Sequence[Path],
    *,
    force: bool = False,
    progress: Progress | None = None,
    notes: list[str] | None = None,
    root: Path | None = None,
) -> tuple[dict[str, Series], int]:
    """Read the headers of ``paths`` and group the image files by SeriesInstanceUID.

    A file whose header is malformed (e.g. NumberOfFrames "1A") is skipped, and a file
    that is a byte-for-byte copy of one already seen in its series (same
    SOPInstanceUID) is dropped; each gets
    one line in ``notes`` (file named relative to ``root``; no tag values that identify).

    Returns
    -------
    series : dict
        SeriesInstanceUID -> :class:`Series`, in the order first seen.
    skipped : int
        Files that are not DICOM images (other files, DICOMDIR, reports, malformed
        headers, duplicates).
    """
    import warnings

    series: dict[str, Series] = {}
    seen: dict[str, dict[str, Path]] = {}
    skipped = 0
    for n, path in enumerate(paths):
        if progress is not None:
            progress("reading DICOM headers", n / max(len(paths), 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings of odd values
            ds = read_header(path, force=force)
            try:
                h = None if ds is None else header_of(path, ds)
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                if notes is not None:
                    reason = str(exc) if isinstance(exc, ValueError) else "malformed header"
                    notes.append(f"skipped {_name(path, root)}: {reason}")
                skipped += 1
                continue
        if h is None:
            skipped += 1
            continue
        sop = str(ds.get("SOPInstanceUID", "") or "")
        uids = seen.setdefault(h.series_uid, {})
        if sop and sop in uids and _same_bytes(uids[sop], Path(path)):
            if notes is not None:
                notes.append(f"dropped {_name(path, root)}: a copy of "
                             f"{_name(uids[sop], root)} (same SOPInstanceUID and bytes)")
            skipped += 1
            continue
        # a file sharing a SOPInstanceUID but not its bytes is kept: the series then
        # fails on its geometry (two slices at one position) rather than guess
        uids.setdefault(sop, Path(path))
        series.setdefault(h.series_uid, Series(h.series_uid, [])).headers.append(h)
    if progress is not None:
        progress("reading DICOM headers", 1.0)
    return series, skipped


# --------------------------------------------------------------------------------------
# reading: geometry of a stack of slices
# --------------------------------------------------------------------------------------
@dataclass
class StackGeometry:
    """Where a stack of parallel slices lies, and whether it is a regular grid.

    Attributes
    ----------
    order : (n,) int ndarray
        Slice order (indices into the input slices) sorted along the slice normal.
    positions : (n, 3) ndarray
        ImagePositionPatient (mm) of the sorted slices.
    origin, spacing, direction
        Geometry of the regular grid (ITK order, mm); for an irregular stack, the grid
        to resample onto (spacing along k = the median slice step).
    regular : bool
        True when the slices are evenly spaced (to ``tolerance``) and not tilted.
    tilt_deg : float
        Gantry tilt: angle between the slice normal and the line through the slices.
    steps_mm : (n-1,) ndarray
        Distances between neighbouring slices along the normal.
    in_plane_offsets_mm : (n, 2) ndarray
        Offsets of each slice position from the first along the row and column
        directions.
    """

    order: np.ndarray
    positions: np.ndarray
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    regular: bool
    tilt_deg: float
    steps_mm: np.ndarray
    in_plane_offsets_mm: np.ndarray
    uneven: bool = False
    tilted: bool = False


def orthonormal_frame(orientation: np.ndarray) -> np.ndarray:
    """3x3 direction matrix (columns: row dir, column dir, normal) from IOP values."""
    r = np.asarray(orientation[:3], dtype=float)
    c = np.asarray(orientation[3:], dtype=float)
    if np.linalg.norm(r) < 1e-6 or np.linalg.norm(c) < 1e-6:
        raise ValueError("ImageOrientationPatient has a zero vector")
    r = r / np.linalg.norm(r)
    c = c - (c @ r) * r
    if np.linalg.norm(c) < 1e-6:
        raise ValueError("ImageOrientationPatient row and column directions are parallel")
    c = c / np.linalg.norm(c)
    return np.column_stack([r, c, np.cross(r, c)])


def stack_geometry(
    positions: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: np.ndarray,
    *,
    tolerance: float = 0.01,
) -> StackGeometry:
    """Sort slices along their normal and check that they form a regular grid.

    Parameters
    ----------
    positions : (n, 3) ndarray
        ImagePositionPatient (mm) of each slice, n >= 2.
    orientation : (6,) ndarray
        ImageOrientationPatient (shared by all slices).
    pixel_spacing : (2,) ndarray
        PixelSpacing (mm): between rows, then between columns.
    tolerance : float
        Allowed deviation, as a fraction of the median slice step, of each slice's
        distance along the normal from its place on the regular grid, and of each
        slice's in-plane offset (as a fraction of the pixel spacing).

    Raises
    ------
    ValueError
        Two slices at the same position.
    """
    positions = np.asarray(positions, dtype=float)
    d = orthonormal_frame(orientation)
    normal = d[:, 2]
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    positions = positions[order]
    along = along[order]
    steps = np.diff(along)
    if steps.size == 0:
        raise ValueError("a single slice")
    step = float(np.median(steps))
    if steps.min() <= 1e-6 * max(1.0, abs(step)) or step <= 0:
        _, counts = np.unique(np.round(along, 3), return_counts=True)
        if len(counts) > 1 and counts.min() == counts.max() > 1:
            raise ValueError(f"{counts[0]} images at each of its {len(counts)} slice "
                             "positions: several volumes (time points, echoes or "
                             "b-values: a 4-D series); twinsep needs one 3-D volume")
        raise ValueError("two or more slices at the same position")
    rel = positions - positions[0]
    in_plane = np.column_stack([rel @ d[:, 0], rel @ d[:, 1]])
    ps_col, ps_row = float(pixel_spacing[1]), float(pixel_spacing[0])
    n = len(along)
    span = along[-1] - along[0]
    uneven = bool(np.any(np.abs(steps - step) > tolerance * step))
    if not uneven:
        step = span / (n - 1)  # the mean step of an even stack
    tilted = bool(
        np.any(np.abs(in_plane[:, 0]) > tolerance * ps_col)
        or np.any(np.abs(in_plane[:, 1]) > tolerance * ps_row)
    )
    line = positions[-1] - positions[0]
    tilt = float(np.degrees(np.arccos(np.clip(abs(line @ normal) / np.linalg.norm(line),
                                              -1, 1))))
    return StackGeometry(
        order=order,
        positions=positions,
        origin=positions[0].copy(),
        spacing=np.array([ps_col, ps_row, step]),
        direction=d,
        regular=not (uneven or tilted),
        tilt_deg=tilt,
        steps_mm=steps,
        in_plane_offsets_mm=in_plane,
        uneven=uneven,
        tilted=tilted,
    )


def resample_grid(geom: StackGeometry, rows: int, columns: int
                  ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The regular grid :func:`resample_stack` fills, known before any pixel is read.

    Returns
    -------
    origin : (3,) ndarray
        World position (mm) of the first voxel.
    size_ijk : (3,) int ndarray
        Columns, rows and slices of the grid (in-plane extended to cover every tilted
        slice; slices ``spacing[2]`` mm apart along the normal).
    low : (2,) int tuple
        Column and row index, on the first slice's pixel grid, of the grid's first voxel.
    """
    d = geom.direction
    sx, sy, sz = (float(v) for v in geom.spacing)
    along = (geom.positions - geom.positions[0]) @ d[:, 2]
    nk = round(along[-1] / sz) + 1
    off = geom.in_plane_offsets_mm
    lo_i = int(np.floor(off[:, 0].min() / sx + 1e-6))
    hi_i = int(np.ceil(off[:, 0].max() / sx - 1e-6))
    lo_j = int(np.floor(off[:, 1].min() / sy + 1e-6))
    hi_j = int(np.ceil(off[:, 1].max() / sy - 1e-6))
    origin = geom.positions[0] + lo_i * sx * d[:, 0] + lo_j * sy * d[:, 1]
    size = np.array([columns + hi_i - lo_i, rows + hi_j - lo_j, nk])
    return origin, size, (lo_i, lo_j)


def resample_stack(
    array: np.ndarray, geom: StackGeometry, *, fill: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample an irregular stack (sorted, ``array[n, row, col]``) onto a regular grid.

    The grid's slices are parallel to the source slices, ``geom.spacing[2]`` mm apart
    along their normal. Each grid slice lies between the two source slices that bracket
    it along the normal (distances from each slice's own ImagePositionPatient, so uneven
    steps are followed); each of the two is sampled bilinearly at the grid voxels'
    in-plane position relative to its own ImagePositionPatient (which handles gantry
    tilt), and the two are blended linearly by distance along the normal.

    Returns
    -------
    out : ndarray, float64, shape (nk, rows', cols')
        Resampled values (``fill`` outside the slices).
    origin : (3,) ndarray
        World position (mm) of the first voxel of the grid.
    size_ijk : (3,) int ndarray
    """
    from scipy import ndimage

    d = geom.direction
    sx, sy, sz = (float(v) for v in geom.spacing)
    along = (geom.positions - geom.positions[0]) @ d[:, 2]
    origin, size, (lo_i, lo_j) = resample_grid(geom, array.shape[1], array.shape[2])
    ni, nj, nk = (int(n) for n in size)
    off = geom.in_plane_offsets_mm
    jj, ii = np.meshgrid(np.arange(nj, dtype=float), np.arange(ni, dtype=float),
                         indexing="ij")
    eps = 1e-6 * max(1.0, sz)

    def sample(s: int) -> np.ndarray:
        # row and column index in source slice s of every grid voxel; rounded so that
        # points on the edge (float noise) count as inside
        v = np.round(jj + lo_j - off[s, 1] / sy, 6)
        u = np.round(ii + lo_i - off[s, 0] / sx, 6)
        return ndimage.map_coordinates(array[s], np.stack([v, u]), order=1,
                                       mode="constant", cval=fill)

    out = np.empty((nk, nj, ni), dtype=np.float64)
    n = len(along)
    for k in range(nk):
        t = k * sz  # distance of grid slice k from the first source slice, mm
        if t > along[-1] + eps:
            out[k] = fill
            continue
        a = int(np.clip(np.searchsorted(along, t, side="right") - 1, 0, n - 2))
        w = float(np.clip((t - along[a]) / (along[a + 1] - along[a]), 0.0, 1.0))
        if w <= 1e-9:
            out[k] = sample(a)
        elif w >= 1 - 1e-9:
            out[k] = sample(a + 1)
        else:
            out[k] = (1 - w) * sample(a) + w * sample(a + 1)
    return out, origin, size
