"""Loaded scans and helpers shared by the readers of :mod:`twinsep.ingest`."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume


@dataclass
class Loaded:
    """A scan as a reader returns it: the volume, its source description (no PHI), the
    files read, DICOM rescale and resampling records, PHI (kept only with keep_phi),
    notes for the user and one line per series found."""

    volume: Volume
    source: dict
    files: list[Path]
    rescale: dict | None = None
    resampling: dict | None = None
    phi: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)


def suffix(path: Path) -> str:
    """The lower-case suffix, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def itk_error(exc: Exception) -> str:
    """The useful part of an ITK/SimpleITK exception message, on one line."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception thrown in")] or lines[-1:]
    detail = lines[-1] if lines else ""
    for marker in ("ITK ERROR:", "sitk::ERROR:"):
        if marker in detail:
            detail = detail.split(marker, 1)[1]
            detail = detail.split("): ", 1)[1] if "): " in detail else detail
    return " ".join(detail.split())[:160]


def check_3d(size: tuple[int, ...], path: Path) -> None:
    if len(size) < 3 or sum(1 for n in size[:3] if n > 1) < 3:
        dims = "x".join(str(n) for n in size)
        raise InputError(f"{path}: a 2-D image ({dims} voxels); a 3-D scan is needed")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[list[str]]:
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


GIB = float(1 << 30)


def check_allocation(shape: tuple[int, ...], itemsize: int, where: Path | str,
                     limit_gb: float) -> None:
    """Refuse a scan whose declared voxel data exceeds ``limit_gb`` GiB, before allocating.

    >>> try:
    ...     check_allocation((1000, 1000, 1000), 2, "big.nrrd", 1.0)
    ... except InputError as exc:
    ...     print(str(exc)[:61])
    big.nrrd: its header declares 1000x1000x1000 voxels (1.86 GiB
    """
    n_bytes = float(np.prod([max(int(n), 0) for n in shape], dtype=np.float64)) * itemsize
    if n_bytes > limit_gb * GIB:
        dims = "x".join(str(int(n)) for n in shape)
        raise InputError(f"{where}: its header declares {dims} voxels "
                         f"({n_bytes / GIB:.3g} GiB), over the memory limit of "
                         f"{limit_gb:g} GiB (set ingest.memory_limit_gb to read it)")


def non_finite(array: np.ndarray) -> tuple[int, int]:
    """``(voxels not finite, of which NaN)`` of ``array`` (0, 0 for integer arrays)."""
    if array.dtype.kind not in "fc":
        return 0, 0
    return (int(array.size - np.count_nonzero(np.isfinite(array))),
            int(np.count_nonzero(np.isnan(array))))


def refuse_non_finite(bad: int, n_nan: int, total: int, where: Path | str) -> None:
    """Refuse a scan with ``bad`` of its ``total`` voxels NaN or infinite (``n_nan`` of them
    NaN): twinsep never reads them as 0 HU."""
    if bad:
        raise InputError(f"{where}: {bad} of {total} voxels are not numbers ({n_nan} NaN, "
                         f"{bad - n_nan} infinite); twinsep will not guess their values, "
                         "fix or mask them in the source")


def check_finite(array: np.ndarray, where: Path | str) -> None:
    """Refuse an array holding NaN or infinite voxels."""
    refuse_non_finite(*non_finite(array), array.size, where)
