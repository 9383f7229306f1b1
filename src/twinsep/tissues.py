"""Tissue segmentation: a label map of tissue codes from a contrast CT, or an imported one.

Codes (see :class:`twinsep.labels.Tissue`)::

    0 background, 1 scalp/soft tissue, 2 bone, 3 CSF/dura, 4 brain, 5 vessel

:func:`segment_ct` works from Hounsfield units alone, with thresholds, morphology in
millimetres and a Hessian vesselness; every number it uses is a field of
:class:`SegmentSettings`. :func:`import_label_map` reads a label map made elsewhere (3D
Slicer, TotalSegmentator, a manual one), translates its codes and puts it on the scan's
grid. :func:`segment_case` does either for a case folder and records what it did in
``plan.json``.

All lengths are in mm and converted per axis with ``Volume.spacing_kji``, so anisotropic
and oblique grids are handled: morphology uses Euclidean distance transforms with
``sampling=``, Gaussian filters and Hessians use a per-axis sigma, and the Hessian is
taken in mm so that its eigenvalues do not depend on the grid's orientation.

Outline of :func:`segment_ct`:

1. Denoise with a Gaussian of ``smoothing_mm``.
2. Head = voxels above ``head_hu`` connected to the largest component, holes filled.
3. Bone = voxels above a partial-volume aware threshold: half way between soft tissue and
   the local peak of the bone (thin blurred infant bone peaks low), never below
   ``bone_min_hu``; small components dropped.
4. Inside of the skull = head voxels, not bone, that lie deeper below the head surface
   (Euclidean depth, mm) than the nearest voxel of the skull shell (bone no deeper than
   ``skull_max_depth_mm``). This needs no closed skull: gaps in the bone (fontanelles,
   thin bone lost to the grid) and the bone-free junction of a total craniopagus are
   handled, and a partial fusion's deep bone plate is not mistaken for the shell. With
   no skull at all, a shell of ``shell_depth_mm`` stands in for scalp and bone.
5. Bone spill: the bone's excess over soft tissue, blurred by ``bone_spill_mm``, is taken
   away from the neighbouring voxels before brain and CSF are told apart, and before the
   vessel seeds are tested (the blurred skull lifts the CSF next to it into the brain
   range and the inner table's edge into the contrast range).
6. Vessels = contrast-range voxels inside the skull grown from tubular seeds (Frangi
   measure of a Hessian in mm at ``vessel_sigmas_mm``, computed with the bone masked out),
   at most ``vessel_grow_mm`` from a seed; cores are looked for beyond
   ``bone_margin_mm`` from bone and grown back into that margin; small components dropped.
7. Brain = the rest of the inside at or above ``brain_hu`` (after the spill correction)
   and not within ``dura_margin_mm`` of bone, CSF/dura below; small brain islands become
   CSF and small CSF islands enclosed by brain become brain.
8. Scalp = the rest of the head.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twinsep.casefolder import Case, sha256_array, sha256_file, update_plan
from twinsep.errors import InputError
from twinsep.image import Volume, resample_like
from twinsep.labels import TISSUE_NAMES, Tissue

#: A progress callback: ``callback(description, fraction_done)`` with fraction in [0, 1].
ProgressCallback = Callable[[str, float], None]

__all__ = [
    "SegmentResult",
    "SegmentSettings",
    "import_label_map",
    "load_label_map",
    "segment_case",
    "segment_ct",
    "tissue_stats",
]


class SegmentSettings(BaseModel):
    """Every parameter of :func:`segment_ct` (HU for intensities, mm for lengths, ml for sizes).

    The defaults suit a contrast CT venogram of an infant (thin bone, contrast in the
    venous sinuses) at 0.5-2 mm voxels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    smoothing_mm: float = Field(
        0.7, ge=0, le=5,
        description="Gaussian sigma (mm) of the denoising applied before all thresholds.",
    )
    head_hu: float = Field(
        -450.0, description="Head = voxels above this (HU), largest component, holes filled."
    )
    soft_tissue_hu: float = Field(
        30.0, description="Typical soft-tissue value (HU): baseline of the bone threshold."
    )
    bone_min_hu: float = Field(
        400.0,
        description="Bone is never below this (HU): about half way between soft tissue and "
        "unblurred bone, where the edge of a thin blurred plate lies; well above contrast "
        "vessels (~280 HU) so that a sinus against the skull is not taken for bone.",
    )
    bone_peak_fraction: float = Field(
        0.5, gt=0, lt=1,
        description="Partial-volume rule: bone = above soft_tissue_hu + fraction x (local "
        "peak - soft_tissue_hu); 0.5 puts the edge at half maximum.",
    )
    bone_peak_radius_mm: float = Field(
        2.0, gt=0, description="Radius (mm) of the neighbourhood that defines the local peak."
    )
    min_bone_ml: float = Field(
        0.05, ge=0, description="Bone components smaller than this (ml) are dropped."
    )
    skull_max_depth_mm: float = Field(
        15.0, gt=0,
        description="Bone deeper than this (mm) below the head surface is not part of the "
        "skull shell (e.g. the bone plate between partially fused heads).",
    )
    shell_depth_mm: float = Field(
        6.0, gt=0,
        description="Scalp + bone depth (mm) taken as the outside when no skull is found.",
    )
    brain_hu: float = Field(
        15.0,
        description="Inside the skull: CSF/dura below, brain at or above (HU); midway "
        "between CSF (~5-10) and white matter (~28).",
    )
    vessel_hu: float = Field(
        150.0,
        description="Inside the skull: contrast-enhanced blood at or above (HU), midway "
        "between brain (~30) and contrast vessels (~280).",
    )
    vessel_seed_hu: float = Field(
        190.0, description="Vessel seeds must also reach this (HU) after denoising."
    )
    vessel_sigmas_mm: tuple[float, ...] = Field(
        (1.0, 2.0), min_length=1,
        description="Hessian scales (mm) of the vesselness (the largest response is kept).",
    )
    vesselness_threshold: float = Field(
        0.15, ge=0, le=1, description="Frangi measure (0-1) above which a voxel seeds a vessel."
    )
    frangi_alpha: float = Field(0.5, gt=0, description="Frangi plate-vs-line sensitivity.")
    frangi_beta: float = Field(0.5, gt=0, description="Frangi blob-vs-line sensitivity.")
    frangi_c_hu: float = Field(
        40.0, gt=0,
        description="Frangi structure scale (HU, scale-normalised Hessian norm).",
    )
    bone_margin_mm: float = Field(
        1.5, ge=0,
        description="Contrast-range voxels within this distance (mm) of bone (the blurred "
        "inner table) are vessel only within this distance of a vessel found further in.",
    )
    bone_spill_mm: float = Field(
        1.4, ge=0,
        description="Before vessels, brain and CSF are told apart, the spill of the blurred "
        "bone is estimated as the bone's excess over soft tissue blurred by this sigma (mm, "
        "combined with smoothing_mm) and taken away; 0 turns this off.",
    )
    bone_spill_gain: float = Field(
        1.0, ge=0, description="Fraction of the estimated bone spill that is taken away."
    )
    dura_margin_mm: float = Field(
        1.5, ge=0,
        description="Inside voxels this close (mm) to bone that are not vessel are CSF/dura "
        "(the blurred bone lifts them into the brain range).",
    )
    vessel_grow_mm: float = Field(
        4.0, ge=0,
        description="Vessels grow from tubular seeds through contrast-range voxels at most "
        "this far (mm): about the largest sinus radius.",
    )
    min_vessel_ml: float = Field(
        0.02, ge=0, description="Vessel components smaller than this (ml) are dropped."
    )
    min_brain_ml: float = Field(
        0.5, ge=0, description="Brain components smaller than this (ml) become CSF/dura."
    )
    max_csf_hole_ml: float = Field(
        0.01, ge=0,
        description="CSF islands enclosed by brain and smaller than this (ml) become brain.",
    )


@dataclass
class SegmentResult:
    """What :func:`segment_case` produced."""

    tissues: Volume
    path: Path
    source: str
    section: dict[str, Any] = field(default_factory=dict)


# --- helpers -----------------------------------------------------------------------------
def _report(progress: ProgressCallback | None, text: str, frac: float) -> None:
    if progress is not None:
        progress(text, frac)


def _edt(mask: np.ndarray, sampling: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from each True voxel to the nearest False voxel (0 on False)."""
    from scipy import ndimage as ndi

    return ndi.distance_transform_edt(mask, sampling=sampling).astype(np.float32)


def _dilate(mask: np.ndarray, r_mm: float, sampling: tuple[float, ...]) -> np.ndarray:
    """Euclidean dilation by ``r_mm`` (mm); the array border is not a barrier."""
    if r_mm <= 0 or not mask.any():
        return mask.copy()
    return _edt(~mask, sampling) <= r_mm


def _erode(mask: np.ndarray, r_mm: float, sampling: tuple[float, ...]) -> np.ndarray:
    """Euclidean erosion by ``r_mm`` (mm); outside the array counts as background."""
    if r_mm <= 0:
        return mask.copy()
    pad = np.pad(mask, 1, constant_values=False)
    return (_edt(pad, sampling) > r_mm)[1:-1, 1:-1, 1:-1]


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage as ndi

    return ndi.label(mask, structure=np.ones((3, 3, 3), bool))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = _components(mask)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _drop_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """Drop 26-connected components with fewer than ``min_voxels`` voxels."""
    if min_voxels <= 1 or not mask.any():
        return mask.copy()
    lab, _ = _components(mask)
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.binary_fill_holes(mask)


def _bbox(mask: np.ndarray, margin: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    idx = np.nonzero(mask.any(axis=(1, 2))), np.nonzero(mask.any(axis=(0, 2))), np.nonzero(
        mask.any(axis=(0, 1))
    )
    out = []
    for (ax,), m, n in zip(idx, margin, mask.shape, strict=True):
        out.append(slice(max(int(ax[0]) - m, 0), min(int(ax[-1]) + m + 1, n)))
    return tuple(out)  # type: ignore[return-value]


def _vesselness(
    image: np.ndarray,
    candidates: np.ndarray,
    spacing_kji: tuple[float, float, float],
    s: SegmentSettings,
) -> np.ndarray:
    """Frangi measure (0-1) of bright tubes at the ``candidates`` voxels (0 elsewhere).

    The Hessian is taken in mm (derivatives divided by the spacing, per-axis sigma) and
    scale-normalised by sigma^2, so its eigenvalues are those of an orthonormal frame
    whatever the voxel size or orientation.
    """
    from scipy import ndimage as ndi

    out = np.zeros(image.shape, np.float32)
    if not candidates.any():
        return out
    smax = max(s.vessel_sigmas_mm)
    margin = tuple(int(np.ceil(3 * smax / sp)) + 1 for sp in spacing_kji)
    box = _bbox(candidates, margin)  # type: ignore[arg-type]
    sub = np.ascontiguousarray(image[box], dtype=np.float32)
    cand = candidates[box]
    n = int(cand.sum())
    best = np.zeros(n, np.float32)
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    for sigma in s.vessel_sigmas_mm:
        sig = [sigma / sp for sp in spacing_kji]
        hess = np.empty((n, 3, 3), np.float64)
        for a, b in pairs:
            order = [0, 0, 0]
            order[a] += 1
            order[b] += 1
            d = ndi.gaussian_filter(sub, sig, order=order, mode="nearest", truncate=3.0)
            v = d[cand] * (sigma * sigma / (spacing_kji[a] * spacing_kji[b]))
            hess[:, a, b] = v
            hess[:, b, a] = v
        lam = np.linalg.eigvalsh(hess)  # ascending
        order_abs = np.argsort(np.abs(lam), axis=1)
        lam = np.take_along_axis(lam, order_abs, axis=1)
        l1, l2, l3 = lam[:, 0], lam[:, 1], lam[:, 2]
        a2, a3 = np.abs(l2), np.abs(l3) + 1e-12
        ra = a2 / a3
        rb = np.abs(l1) / np.sqrt(a2 * a3 + 1e-12)
        ss = np.sqrt(l1 * l1 + l2 * l2 + l3 * l3)
        v = (
            (1 - np.exp(-(ra**2) / (2 * s.frangi_alpha**2)))
            * np.exp(-(rb**2) / (2 * s.frangi_beta**2))
            * (1 - np.exp(-(ss**2) / (2 * s.frangi_c_hu**2)))
        )
        v[(l2 > 0) | (l3 > 0)] = 0.0
        np.maximum(best, v.astype(np.float32), out=best)
    sub_out = np.zeros(cand.shape, np.float32)
    sub_out[cand] = best
    out[box] = sub_out
    return out


# --- segmentation from CT ------------------------------------------------------------------
def segment_ct(
    ct: Volume,
    settings: SegmentSettings | None = None,
    progress: ProgressCallback | None = None,
) -> Volume:
    """Tissue codes from a contrast CT in Hounsfield units.

    Parameters
    ----------
    ct : Volume
        CT in HU on any grid (anisotropic or oblique voxels are fine).
    settings : SegmentSettings, optional
        Thresholds (HU) and sizes (mm, ml); the defaults when omitted.
    progress : callable, optional
        ``progress(description, fraction_done)``, called between steps.

    Returns
    -------
    Volume
        uint8 tissue codes (0-5) on the CT's grid.

    Raises
    ------
    InputError
        If the image holds no head (nothing above ``head_hu``) or does not look like HU.
    """
    from scipy import ndimage as ndi

    s = settings or SegmentSettings()
    sp = ct.spacing_kji
    vox_ml = ct.voxel_volume_ml
    hu = np.asarray(ct.array, dtype=np.float32)
    if not np.isfinite(hu).all():
        raise InputError("the scan holds NaN or infinite values")
    if float(hu.min()) >= s.head_hu:
        raise InputError(
            f"the scan has no air (minimum {float(hu.min()):.0f}); is it a CT in Hounsfield units?"
        )

    _report(progress, "denoising", 0.0)
    if s.smoothing_mm > 0:
        hs = ndi.gaussian_filter(hu, [s.smoothing_mm / v for v in sp], mode="nearest", truncate=3.0)
    else:
        hs = hu.copy()

    # --- head (crop to it for everything else) ------------------------------------------
    _report(progress, "head", 0.1)
    head_full = hs > s.head_hu
    if not head_full.any():
        raise InputError(f"no voxel above {s.head_hu:.0f} HU: the scan holds no head")
    head_full = _largest_component(head_full)
    margin = tuple(int(np.ceil(2.0 / v)) + 1 for v in sp)
    box = _bbox(head_full, margin)  # type: ignore[arg-type]
    head = _fill_holes(head_full[box])
    h = hs[box]
    shape = head.shape

    # --- bone -----------------------------------------------------------------------------
    _report(progress, "bone", 0.2)
    size = [2 * round(s.bone_peak_radius_mm / v) + 1 for v in sp]
    # on the unsmoothed HU: noise matters little at these levels and smoothing would widen
    # the thin bone
    raw = hu[box]
    peak = ndi.maximum_filter(np.where(head, raw, s.head_hu), size=size, mode="nearest")
    base = s.soft_tissue_hu
    thr = np.maximum(s.bone_min_hu, base + s.bone_peak_fraction * (peak - base))
    bone = head & (raw >= thr)
    del raw, peak, thr
    bone = _drop_small(bone, s.min_bone_ml / vox_ml)

    # --- inside of the skull ----------------------------------------------------------------
    # a voxel is inside when it lies deeper below the head surface than the nearest voxel
    # of the skull shell: robust to gaps in the bone (fontanelles, thin bone lost to the
    # grid) and to the bone-free junction of a total craniopagus; bone deeper than
    # skull_max_depth_mm (a partial fusion's plate between the heads) is not shell
    _report(progress, "inside of the skull", 0.35)
    depth = _edt(np.pad(head, 1), sp)[1:-1, 1:-1, 1:-1]
    shell = bone & (depth <= s.skull_max_depth_mm)
    if shell.sum() * vox_ml >= s.min_bone_ml and shell.any():
        near = ndi.distance_transform_edt(
            ~shell, sampling=sp, return_distances=False, return_indices=True
        )
        shell_depth = depth[tuple(near)]
        del near
        inside = head & ~bone & (depth > shell_depth)
    else:  # no skull found: a shell of fixed depth stands in for scalp and bone
        inside = head & ~bone & (depth > s.shell_depth_mm)
    inside = _drop_small(inside, s.min_brain_ml / vox_ml)

    # --- spill of the blurred bone ----------------------------------------------------------
    # the bone's excess over soft tissue, blurred, is taken away from the other voxels
    # (``hb``): it lifts the CSF next to the skull into the brain range
    if s.bone_spill_mm > 0:
        excess = np.where(bone, np.maximum(h - s.soft_tissue_hu, 0), 0).astype(np.float32)
        sigma = float(np.hypot(s.bone_spill_mm, s.smoothing_mm))
        spill = ndi.gaussian_filter(excess, [sigma / v for v in sp], mode="constant",
                                    truncate=3.0)
        hb = np.where(bone, h, h - s.bone_spill_gain * spill)
        del excess, spill
    else:
        hb = h

    # --- vessels ------------------------------------------------------------------------------
    _report(progress, "vessels", 0.5)
    contrast = inside & (h >= s.vessel_hu)
    # the blurred inner table of the bone is contrast-range too: vessel cores are looked for
    # away from the bone, then grown back by at most bone_margin_mm into the margin
    near_bone = _dilate(bone, s.bone_margin_mm, sp) & ~bone
    # image for the Hessian: bone replaced by soft tissue, contrast clipped at the top, so
    # that the only bright tubes left are vessels
    img = np.minimum(h, s.bone_min_hu)
    img[bone] = s.soft_tissue_hu
    core_cand = contrast & ~near_bone
    vness = _vesselness(img, core_cand, sp, s)
    seeds = core_cand & (vness >= s.vesselness_threshold) & (hb >= s.vessel_seed_hu)
    # grow from the tubular seeds through contrast voxels, at most vessel_grow_mm away
    core_cand &= _dilate(seeds, s.vessel_grow_mm, sp)
    lab, n = _components(core_cand)
    vessel = np.zeros(shape, bool)
    if n:
        seeded = np.zeros(n + 1, bool)
        seeded[np.unique(lab[seeds])] = True
        seeded[0] = False
        vessel = seeded[lab]
    if vessel.any() and s.bone_margin_mm > 0:
        vessel |= contrast & near_bone & _dilate(vessel, s.bone_margin_mm, sp)
    vessel = _drop_small(vessel, s.min_vessel_ml / vox_ml)

    # --- brain and CSF -------------------------------------------------------------------------
    _report(progress, "brain and CSF", 0.75)
    rest = inside & ~vessel
    dura = _dilate(bone, s.dura_margin_mm, sp) if s.dura_margin_mm > 0 else np.zeros(shape, bool)
    brain = rest & (hb >= s.brain_hu) & ~dura
    brain = _drop_small(brain, s.min_brain_ml / vox_ml)
    csf = rest & ~brain
    if s.max_csf_hole_ml > 0:
        lab, n = _components(csf)
        if n:
            sizes = np.bincount(lab.ravel())
            small = sizes < s.max_csf_hole_ml / vox_ml
            small[0] = False
            # a small CSF island touching no bone and no scalp is a hole in the brain
            touch = np.zeros(n + 1, bool)
            border = _dilate(~inside, 1.01 * max(sp), sp) & csf
            touch[np.unique(lab[border])] = True
            flip = small & ~touch
            flip[0] = False
            brain |= flip[lab]
            csf &= ~flip[lab]

    _report(progress, "labels", 0.95)
    sub = np.zeros(shape, np.uint8)
    sub[head] = Tissue.SCALP
    sub[csf] = Tissue.CSF
    sub[brain] = Tissue.BRAIN
    sub[vessel] = Tissue.VESSEL
    sub[bone] = Tissue.BONE
    out = np.zeros(ct.shape, np.uint8)
    out[box] = sub
    _report(progress, "done", 1.0)
    return ct.with_array(out)


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


# --- case ---------------------------------------------------------------------------------------
def tissue_stats(tissues: Volume) -> dict[str, dict[str, float]]:
    """Voxel count and volume (ml) per tissue name."""
    counts = np.bincount(np.asarray(tissues.array, np.uint8).ravel(), minlength=6)
    return {
        name: {
            "voxels": int(counts[code]),
            "volume_ml": float(counts[code]) * tissues.voxel_volume_ml,
        }
        for code, name in TISSUE_NAMES.items()
    }


def _write_volume_atomic(vol: Volume, path: Path) -> None:
    """Write an image beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".nii.gz"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        vol.write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def segment_case(
    case: Case,
    *,
    tissues_file: Path | None = None,
    label_map_file: Path | None = None,
    resample: bool = True,
    settings: SegmentSettings | None = None,
    progress: ProgressCallback | None = None,
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
    settings : SegmentSettings, optional
        Parameters of the CT segmentation (ignored on import).
    progress : callable, optional
        ``progress(description, fraction_done)``.

    Returns
    -------
    SegmentResult
        The label volume, where it was written and the ``segmentation`` plan section.
    """
    case.require(case.scan, hint="run `twinsep ingest` first")
    if label_map_file is not None and tissues_file is None:
        raise InputError("--label-map needs --tissues FILE")
    scan = Volume.read(case.scan)
    inputs: dict[str, str] = {"scan_sha256": sha256_file(case.scan)}
    if tissues_file is not None:
        mapping = load_label_map(Path(label_map_file)) if label_map_file is not None else None
        _report(progress, "importing label map", 0.0)
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
        s = settings or SegmentSettings()
        tissues = segment_ct(scan, s, progress)
        section = {"source": "ct", "settings": s.model_dump(mode="json")}
    section["inputs"] = inputs
    section["tissues"] = tissue_stats(tissues)
    section["output_sha256"] = sha256_array(tissues.array)
    _write_volume_atomic(tissues, case.tissues)
    update_plan(case, segmentation=section)
    return SegmentResult(
        tissues=tissues, path=case.tissues, source=section["source"], section=section
    )


def settings_from_json(path: Path) -> SegmentSettings:
    """Read :class:`SegmentSettings` overrides from a JSON object file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return SegmentSettings.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(v) for v in first["loc"])
        raise InputError(f"{path}: setting {loc}: {first['msg']}") from None
