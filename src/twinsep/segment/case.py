"""The case layer of ``twinsep segment``: reads the scan (and an imported label map),
writes ``labels/tissues.nii.gz`` and plan.json ``segmentation``.

The stage's settings (:class:`SegmentSettings`) are the command's options; the CT
segmentation's own parameters are its ``ct`` field (:class:`~twinsep.segment.core.CTSettings`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, ValidationError

from twinsep.casefolder import (
    Case,
    read_json,
    sha256_array,
    sha256_file,
    update_plan,
    write_volume,
)
from twinsep.errors import InputError
from twinsep.image import Volume, resample_like
from twinsep.progress import Progress
from twinsep.segment.core import NOT_CT_HINT, CTSettings, segment_ct, tissue_stats
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class SegmentSettings(Settings):
    """Options of ``twinsep segment`` (defaults: ``segment`` in defaults.yaml)."""

    tissues: Path | None = Field(default("segment.tissues"),
                                 description="Label map to import instead of segmenting.")
    label_map: Path | None = Field(default("segment.label_map"),
                                   description="JSON: the imported file's codes -> twinsep's.")
    resample: bool = Field(default("segment.resample"),
                           description="Resample an imported map on another grid.")
    ct: CTSettings = Field(default_factory=CTSettings,
                           description="Parameters of the CT segmentation.")


@dataclass
class SegmentResult:
    """What :func:`segment_case` produced."""

    tissues: Volume
    path: Path
    source: str
    section: dict[str, Any] = field(default_factory=dict)


# --- import ------------------------------------------------------------------------------------
def load_label_map(path: Path) -> dict[int, int]:
    """Read a label-map JSON file: an object from source code to twinsep code.

    Example: ``{"3": 4, "7": 5}`` (source 3 becomes brain, 7 vessel). Codes not listed are
    refused by :func:`import_label_map` unless they are 0 (background).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict) or not raw:
        raise InputError(
            f'{path}: a label map must be a non-empty JSON object like {{"3": 4, "7": 5}}'
        )
    out: dict[int, int] = {}
    for key, value in raw.items():
        try:
            src = int(str(key).strip())
        except ValueError:
            raise InputError(f"{path}: source code {key!r} is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
            raise InputError(
                f"{path}: code {key} maps to {value!r}; twinsep codes are integers 0-5 "
                "(0 background, 1 scalp, 2 bone, 3 CSF/dura, 4 brain, 5 vessel)"
            )
        out[src] = value
    return out


def _world_box(vol: Volume) -> np.ndarray:
    """World positions (mm) of the 8 outer corners of the grid (voxel edges)."""
    n = np.asarray(vol.shape, float)
    lo, hi = np.full(3, -0.5), n - 0.5
    corners = np.array([[(lo, hi)[a][0], (lo, hi)[b][1], (lo, hi)[c][2]]
                        for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    return vol.index_to_world(corners)


def _overlaps(moving: Volume, reference: Volume) -> bool:
    """True when the world extents of the two grids overlap (separating-axis test)."""
    a, b = _world_box(moving), _world_box(reference)
    axes = [moving.direction_matrix[:, c] for c in range(3)]
    axes += [reference.direction_matrix[:, c] for c in range(3)]
    for u in axes:
        pa, pb = a @ u, b @ u
        if pa.max() <= pb.min() + 1e-6 or pb.max() <= pa.min() + 1e-6:
            return False
    return True


def import_label_map(
    path: Path,
    reference: Volume,
    *,
    label_map: dict[int, int] | None = None,
    resample: bool = True,
) -> Volume:
    """Read a label map made elsewhere and put it on ``reference``'s grid as tissue codes.

    Parameters
    ----------
    path : Path
        NIfTI, NRRD or MHA label image (read only; never modified).
    reference : Volume
        The scan whose grid the result must share.
    label_map : dict, optional
        Source code -> twinsep code (0-5). Without it the file must already hold codes 0-5.
        With it, every non-zero source code must be listed.
    resample : bool
        If the grids differ, resample nearest-neighbour onto ``reference`` (when their
        world extents overlap). If False, a different grid is refused.

    Returns
    -------
    Volume
        uint8 tissue codes on ``reference``'s grid.

    Raises
    ------
    InputError
        Unreadable file, non-integer labels, unknown codes, an empty map, or a grid that
        does not overlap the scan (or differs from it with ``resample=False``).
    """
    path = Path(path)
    vol = Volume.read(path)
    arr = vol.array
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise InputError(f"{path}: holds non-integer values; a label map is needed")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{path}: pixel type {arr.dtype} is not a label map")
    codes = np.unique(arr).astype(np.int64)
    if label_map is None:
        bad = [int(c) for c in codes if not 0 <= c <= 5]
        if bad:
            shown = ", ".join(str(c) for c in bad[:8]) + (" ..." if len(bad) > 8 else "")
            raise InputError(
                f"{path}: labels {shown} are not twinsep tissue codes 0-5; give --label-map "
                'map.json (e.g. {"3": 4, "7": 5})'
            )
        lut = {int(c): int(c) for c in codes}
    else:
        missing = [int(c) for c in codes if c != 0 and int(c) not in label_map]
        if missing:
            shown = ", ".join(str(c) for c in missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise InputError(f"{path}: labels {shown} are not in the label map")
        lut = {int(c): (0 if c == 0 and 0 not in label_map else label_map[int(c)]) for c in codes}
    mapped = np.zeros(arr.shape, np.uint8)
    for src, dst in lut.items():
        if dst:
            mapped[arr == src] = dst
    if not mapped.any():
        raise InputError(f"{path}: the label map is empty (no tissue labelled)")
    moving = vol.with_array(mapped)
    if not moving.same_grid(reference):
        if not _overlaps(moving, reference):
            raise InputError(
                f"{path}: its grid does not overlap the scan's in world coordinates; "
                "was it made from another scan?"
            )
        if not resample:
            raise InputError(
                f"{path}: its grid differs from the scan's (size {list(moving.size_ijk)} "
                f"spacing {[round(v, 3) for v in moving.spacing]} vs "
                f"{list(reference.size_ijk)} {[round(v, 3) for v in reference.spacing]}) "
                "and --no-resample was given"
            )
        moving = resample_like(moving, reference, nearest=True, default=0)
        if not moving.array.any():
            raise InputError(
                f"{path}: no labelled voxel falls inside the scan after resampling"
            )
    return reference.with_array(np.ascontiguousarray(moving.array, dtype=np.uint8))


def scan_modality(case: Case) -> str | None:
    """The DICOM Modality of the case's scan (``case.json`` ``source.modality``), or None
    when it is not known (NIfTI/NRRD/MHA input, no case.json)."""
    if not case.case_json.is_file():
        return None
    try:
        info = read_json(case.case_json)
    except (OSError, ValueError):
        return None
    source = info.get("source") if isinstance(info, dict) else None
    modality = source.get("modality") if isinstance(source, dict) else None
    if not modality:
        return None
    return str(modality).strip().upper() or None


def check_modality(modality: str | None) -> None:
    """Refuse (InputError) a scan whose DICOM Modality is known and is not CT."""
    if modality is not None and modality != "CT":
        name = {"MR": "MR", "PT": "PET", "NM": "nuclear medicine", "US": "ultrasound",
                "CR": "radiograph", "DX": "radiograph", "XA": "angiogram (XA)"}.get(
                    modality, f"not CT ({modality})")
        raise InputError(
            f"the scan is {name} (DICOM Modality {modality}); twinsep segments CT by "
            f"Hounsfield units: {NOT_CT_HINT}"
        )


def segment_case(
    case: Case,
    *,
    tissues_file: Path | None = None,
    label_map_file: Path | None = None,
    resample: bool = True,
    settings: CTSettings | None = None,
    progress: Progress | None = None,
) -> SegmentResult:
    """Segment ``CASE/scan.nii.gz`` (or import a label map) into ``CASE/labels/tissues.nii.gz``.

    Parameters
    ----------
    case : Case
        The case folder (needs ``scan.nii.gz``).
    tissues_file : Path, optional
        Import this label map instead of segmenting the CT.
    label_map_file : Path, optional
        JSON object from the file's codes to twinsep codes (only with ``tissues_file``).
    resample : bool
        Allow nearest-neighbour resampling of an imported map on another grid.
    settings : CTSettings, optional
        Parameters of the CT segmentation (ignored on import).
    progress : callable, optional
        ``progress(description, fraction_done)``.

    Returns
    -------
    SegmentResult
        The label volume, where it was written and the ``segmentation`` plan section.

    Raises
    ------
    InputError
        Without ``tissues_file``: a scan whose DICOM Modality (case.json) is not CT, or
        whose values cannot be CT Hounsfield units (:func:`~twinsep.segment.core.check_ct_hu`).
    """
    case.require(case.scan, hint="run `twinsep ingest` first")
    if label_map_file is not None and tissues_file is None:
        raise InputError("--label-map needs --tissues FILE")
    scan = Volume.read(case.scan)
    inputs: dict[str, str] = {"scan_sha256": sha256_file(case.scan)}
    if tissues_file is not None:
        mapping = load_label_map(Path(label_map_file)) if label_map_file is not None else None
        if progress is not None:
            progress("importing label map", 0.0)
        tissues = import_label_map(Path(tissues_file), scan, label_map=mapping, resample=resample)
        inputs["tissues_sha256"] = sha256_file(Path(tissues_file))
        if label_map_file is not None:
            inputs["label_map_sha256"] = sha256_file(Path(label_map_file))
        section: dict[str, Any] = {
            "source": "import",
            "imported_from": Path(tissues_file).name,
            "label_map": {str(k): v for k, v in sorted(mapping.items())} if mapping else None,
        }
    else:
        check_modality(scan_modality(case))
        s = settings or CTSettings()
        tissues = segment_ct(scan, s, progress)
        section = {"source": "ct", "settings": s.model_dump(mode="json")}
    section["inputs"] = inputs
    section["tissues"] = tissue_stats(tissues)
    section["output_sha256"] = sha256_array(tissues.array)
    write_volume(tissues, case.tissues)
    update_plan(case, segmentation=section)
    return SegmentResult(
        tissues=tissues, path=case.tissues, source=section["source"], section=section
    )


def settings_from_json(path: Path) -> CTSettings:
    """Read :class:`CTSettings` overrides from a JSON object file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return CTSettings.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(v) for v in first["loc"])
        raise InputError(f"{path}: setting {loc}: {first['msg']}") from None


def _run(case: Case, settings: SegmentSettings, progress: Progress) -> StageResult:
    res = segment_case(case, tissues_file=settings.tissues, label_map_file=settings.label_map,
                       resample=settings.resample, settings=settings.ct, progress=progress)
    logger.info("tissues from %s: %s", res.source, ", ".join(
        f"{k} {v['volume_ml']:.1f} ml" for k, v in res.section["tissues"].items()))
    return StageResult(sections={"segmentation": res.section},
                       files=("labels/tissues.nii.gz",), summary=f"source {res.source}",
                       data=res)


def _input_files(settings: SegmentSettings) -> dict[str, Path]:
    out = {}
    if settings.tissues is not None:
        out["tissues_sha256"] = settings.tissues
    if settings.label_map is not None:
        out["label_map_sha256"] = settings.label_map
    return out


def _record(settings: SegmentSettings) -> dict[str, Any]:
    return {"source": "import" if settings.tissues is not None else "ct"}


STAGE = Stage(
    name="segment",
    title="tissue labels",
    settings=SegmentSettings,
    inputs=("scan.nii.gz",),
    outputs=("labels/tissues.nii.gz", "plan:segmentation"),
    run=_run,
    hint="check --tissues (label map on the scan's grid, codes 0-5) or the CT's Hounsfield "
    "units",
    input_files=_input_files,
    record=_record,
    described=("tissues",),
)

__all__ = [
    "STAGE",
    "SegmentResult",
    "SegmentSettings",
    "check_modality",
    "import_label_map",
    "load_label_map",
    "scan_modality",
    "segment_case",
    "settings_from_json",
]
