"""Tissue segmentation: a label map of tissue codes from a contrast CT, or an imported one.

Codes (see :class:`twinsep.labels.Tissue`)::

    0 background, 1 scalp/soft tissue, 2 bone, 3 CSF/dura, 4 brain, 5 vessel

:func:`segment_ct` works from Hounsfield units alone, with thresholds, morphology in
millimetres, an exact removal of the blurred bone's spill and a Hessian vesselness;
every threshold and size it uses is a field of :class:`CTSettings`.
:func:`import_label_map` reads a label map made elsewhere (3D Slicer, TotalSegmentator, a
manual one), translates its codes and puts it on the scan's grid. :func:`segment_case`
does either for a case folder and records what it did in ``plan.json``.

All lengths are in mm and converted per axis with ``Volume.spacing_kji``, so anisotropic
and oblique grids are handled: morphology uses Euclidean distances with per-axis spacing,
Gaussian filters and Hessians use a per-axis sigma, and the Hessian is taken in mm so that
its eigenvalues do not depend on the grid's orientation.

Outline of :func:`segment_ct`:

1. Head = voxels above ``head_hu`` after denoising (Gaussian of ``smoothing_mm``),
   connected to the largest component, holes filled. It is found first on a grid of about
   2 mm; everything else is done in its bounding box.
2. Bone = voxels above a partial-volume aware threshold: half way between soft tissue and
   the local peak of the bone (thin blurred infant bone peaks low), never below
   ``bone_min_hu``; small components dropped.
3. Inside of the skull = head voxels, not bone, that lie deeper below the head surface
   (Euclidean depth, mm) than the skull shell next to them (bone no deeper than
   ``skull_max_depth_mm``). This needs no closed skull: gaps in the bone (fontanelles,
   thin bone lost to the grid) and the bone-free junction of a total craniopagus are
   handled, and a partial fusion's deep bone plate is not mistaken for the shell. With
   no skull at all, a shell of ``shell_depth_mm`` stands in for scalp and bone.
4. Bone spill, taken out exactly for the vessels: each voxel holds ``(1 - g) x + g b``
   with ``g`` the bone mask blurred like the image (``psf_mm`` with ``smoothing_mm``),
   ``b`` the bone's level (fitted on the scalp side) and ``x`` the tissue's own value,
   which is solved for. Where the level across the skull's inner rim is contrast (a
   sinus lying against the skull, read ``rim_level_mm`` around), the bone's edge is moved
   to half way between bone and contrast, and the spill is updated.
5. Vessels = contrast-range voxels (``vessel_hu``, on the spill-free HU) inside the skull
   grown from tubular seeds (Frangi measure of a Hessian in mm at ``vessel_sigmas_mm``,
   with the bone masked out), at most ``vessel_grow_mm`` from a seed; cores are looked
   for beyond ``bone_margin_mm`` from bone and grown back into that margin; small
   components dropped.
6. Brain = the rest of the inside at or above ``brain_hu`` after a wide spill correction
   (``bone_spill_mm``) and not within ``dura_margin_mm`` of bone, CSF/dura below; small
   brain islands become CSF and small CSF islands enclosed by brain become brain.
7. Scalp = the rest of the head.

Speed: the work that only needs a mm-scale answer is done on coarser grids (the head's
box at about 2 mm, the depth below the head surface at about 2 mm and interpolated, the
nearest skull voxel at about 2 mm with the exact neighbours next to the skull, the
vesselness at two thirds of each sigma, the reach of the seeds and the level across the
rim at about 1 mm); full resolution is kept for every voxel-level decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from twinsep.errors import InputError
from twinsep.image import Volume, block_expand, block_reduce, bounding_box, fill_holes
from twinsep.labels import TISSUE_NAMES, Tissue
from twinsep.progress import Progress
from twinsep.settings import defaults

#: Grid (mm) on which the depth below the head surface is computed (then interpolated).
DEPTH_GRID_MM = 2.0


__all__ = [
    "NOT_CT_HINT",
    "CTSettings",
    "air_fraction",
    "check_ct_hu",
    "segment_ct",
    "tissue_stats",
]


#: Defaults of the CT segmentation, with their sources: ``segment.ct`` of defaults.yaml.
_CT = defaults("segment.ct")


class CTSettings(BaseModel):
    """Every parameter of :func:`segment_ct` (HU for intensities, mm for lengths, ml for sizes).

    The defaults suit a contrast CT venogram of an infant (thin bone, contrast in the
    venous sinuses) at 0.5-2 mm voxels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    smoothing_mm: float = Field(
        _CT["smoothing_mm"], ge=0, le=5,
        description="Gaussian sigma (mm) of the denoising applied before all thresholds.",
    )
    head_hu: float = Field(
        _CT["head_hu"],
        description="Head = voxels above this (HU), largest component, holes filled."
    )
    soft_tissue_hu: float = Field(
        _CT["soft_tissue_hu"],
        description="Typical soft-tissue value (HU): baseline of the bone threshold."
    )
    bone_min_hu: float = Field(
        _CT["bone_min_hu"],
        description="Bone is never below this (HU): about half way between soft tissue and "
        "unblurred bone, where the edge of a thin blurred plate lies; well above contrast "
        "vessels (~280 HU) so that a sinus against the skull is not taken for bone.",
    )
    bone_peak_fraction: float = Field(
        _CT["bone_peak_fraction"], gt=0, lt=1,
        description="Partial-volume rule: bone = above soft_tissue_hu + fraction x (local "
        "peak - soft_tissue_hu); 0.5 puts the edge at half maximum.",
    )
    bone_peak_radius_mm: float = Field(
        _CT["bone_peak_radius_mm"], gt=0,
        description="Radius (mm) of the neighbourhood that defines the local peak."
    )
    min_bone_ml: float = Field(
        _CT["min_bone_ml"], ge=0, description="Bone components smaller than this (ml) are dropped."
    )
    skull_max_depth_mm: float = Field(
        _CT["skull_max_depth_mm"], gt=0,
        description="Bone deeper than this (mm) below the head surface is not part of the "
        "skull shell (e.g. the bone plate between partially fused heads).",
    )
    shell_depth_mm: float = Field(
        _CT["shell_depth_mm"], gt=0,
        description="Scalp + bone depth (mm) taken as the outside when no skull is found.",
    )
    brain_hu: float = Field(
        _CT["brain_hu"],
        description="Inside the skull: CSF/dura below, brain at or above (HU); midway "
        "between CSF (~5-10) and white matter (~28).",
    )
    vessel_hu: float = Field(
        _CT["vessel_hu"],
        description="Inside the skull: contrast-enhanced blood at or above (HU), after the "
        "bone's spill is taken out: 40% of the way from brain (~30) to contrast (~280), "
        "where the edge of a blurred sinus (radius 2-3 mm) lies.",
    )
    vessel_seed_hu: float = Field(
        _CT["vessel_seed_hu"], description="Vessel seeds must also reach this (HU) after denoising."
    )
    vessel_sigmas_mm: tuple[float, ...] = Field(
        tuple(_CT["vessel_sigmas_mm"]), min_length=1,
        description="Hessian scales (mm) of the vesselness (the largest response is kept).",
    )
    vesselness_threshold: float = Field(
        _CT["vesselness_threshold"], ge=0, le=1,
        description="Frangi measure (0-1) above which a voxel seeds a vessel."
    )
    frangi_alpha: float = Field(
        _CT["frangi_alpha"], gt=0, description="Frangi plate-vs-line sensitivity."
    )
    frangi_beta: float = Field(
        _CT["frangi_beta"], gt=0, description="Frangi blob-vs-line sensitivity."
    )
    frangi_c_hu: float = Field(
        _CT["frangi_c_hu"], gt=0,
        description="Frangi structure scale (HU, scale-normalised Hessian norm).",
    )
    bone_margin_mm: float = Field(
        _CT["bone_margin_mm"], ge=0,
        description="Contrast-range voxels within this distance (mm) of bone (the blurred "
        "inner table) are vessel only within this distance of a vessel found further in.",
    )
    bone_spill_mm: float = Field(
        _CT["bone_spill_mm"], ge=0,
        description="Before brain and CSF are told apart, the spill of the blurred bone is "
        "estimated as the bone's excess over soft tissue blurred by this sigma (mm, combined "
        "with smoothing_mm) and taken away (a wide estimate: it keeps the CSF next to the "
        "skull CSF); 0 turns this off.",
    )
    psf_mm: float = Field(
        _CT["psf_mm"], ge=0,
        description="Gaussian sigma (mm) of the scanner's partial-volume blur. Before vessels "
        "are looked for, the spill of the blurred bone is taken out exactly: the bone mask "
        "blurred by this sigma (combined with smoothing_mm) gives each voxel's bone share, "
        "and the bone's level is fitted to the scalp side of the skull.",
    )
    bone_edge_model: bool = Field(
        _CT["bone_edge_model"],
        description="Once the bone's level is fitted, move the bone's edge to where a blurred "
        "plate with the local peak has it (half way to the level for thick bone, closer to "
        "the peak for thin bone) instead of half way to the peak.",
    )
    rim_level_mm: float = Field(
        _CT["rim_level_mm"], gt=0,
        description="Sigma (mm) of the local mean, over the inside voxels that the bone's "
        "spill barely reaches, that gives the level across the skull's inner rim: where it "
        "is contrast (a sinus against the skull) the bone's edge lies half way between the "
        "bone's level and it, not half way to soft tissue.",
    )
    bone_spill_gain: float = Field(
        _CT["bone_spill_gain"], ge=0,
        description="Fraction of the estimated bone spill that is taken away."
    )
    dura_margin_mm: float = Field(
        _CT["dura_margin_mm"], ge=0,
        description="Inside voxels this close (mm) to bone that are not vessel are CSF/dura "
        "(the blurred bone lifts them into the brain range).",
    )
    vessel_grow_mm: float = Field(
        _CT["vessel_grow_mm"], ge=0,
        description="Vessels grow from tubular seeds through contrast-range voxels at most "
        "this far (mm): about the largest sinus radius.",
    )
    min_vessel_ml: float = Field(
        _CT["min_vessel_ml"], ge=0,
        description="Vessel components smaller than this (ml) are dropped."
    )
    min_brain_ml: float = Field(
        _CT["min_brain_ml"], ge=0,
        description="Brain components smaller than this (ml) become CSF/dura."
    )
    max_csf_hole_ml: float = Field(
        _CT["max_csf_hole_ml"], ge=0,
        description="CSF islands enclosed by brain and smaller than this (ml) become brain.",
    )
    air_hu: float = Field(
        _CT["air_hu"],
        description="A CT in HU holds air (about -1000 HU) around the head: voxels below "
        "this (HU) count as air for the check that the scan is in Hounsfield units.",
    )
    min_air_fraction: float = Field(
        _CT["min_air_fraction"], ge=0, lt=1,
        description="Fewer voxels than this share below air_hu and the scan is refused as "
        "not CT Hounsfield units (an MR, a PET, a map of other units); 0 turns this off.",
    )


# --- helpers -----------------------------------------------------------------------------
def _report(progress: Progress | None, text: str, frac: float) -> None:
    if progress is not None:
        progress(text, frac)


def _distance_to(mask: np.ndarray, sampling: tuple[float, ...]) -> np.ndarray:
    """Euclidean distance (mm) from each voxel to the nearest True voxel (0 on True).

    Exact (Maurer's algorithm, SimpleITK, multi-threaded): the same values as
    ``scipy.ndimage.distance_transform_edt(~mask, sampling=...)`` at a fraction of the time.
    """
    import SimpleITK as sitk

    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(mask).view(np.uint8))
    img.SetSpacing(tuple(float(v) for v in sampling[::-1]))
    dist = sitk.SignedMaurerDistanceMap(
        img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    out = sitk.GetArrayFromImage(dist)
    np.maximum(out, 0, out=out)
    return out


#: The box of an empty mask (where :func:`bounding_box` gives None).
_EMPTY = (slice(0, 0),) * 3


def _shift_or(out: np.ndarray, src: np.ndarray, dk: int, dj: int) -> None:
    """``out[k, j, :] |= src[k - dk, j - dj, :]`` where both indices are in range."""
    n0, n1 = out.shape[:2]
    dst = (slice(max(dk, 0), n0 + min(dk, 0)), slice(max(dj, 0), n1 + min(dj, 0)))
    sub = (slice(max(-dk, 0), n0 - max(dk, 0)), slice(max(-dj, 0), n1 - max(dj, 0)))
    out[dst] |= src[sub]


def _dilate(mask: np.ndarray, r_mm: float, sampling: tuple[float, ...]) -> np.ndarray:
    """Euclidean dilation by ``r_mm`` (mm): True where a True voxel lies within ``r_mm``.

    Small radii are done exactly as a union of shifted 1-D dilations inside the mask's
    bounding box (a ball is a stack of discs, a disc a stack of segments); large ones with
    a distance map. The array border is not a barrier.
    """
    from scipy import ndimage as ndi

    if r_mm <= 0 or not mask.any():
        return mask.copy()
    rk, rj, ri = (int(np.floor(r_mm / v + 1e-9)) for v in sampling)
    if (2 * rk + 1) * (2 * rj + 1) > 121:
        return _distance_to(mask, sampling) <= r_mm
    box = bounding_box(mask, (rk, rj, ri)) or _EMPTY
    m = np.ascontiguousarray(mask[box])
    lines: dict[int, np.ndarray] = {0: m}
    out = np.zeros(m.shape, bool)
    r2 = r_mm * r_mm * (1 + 1e-9)
    for dk in range(-rk, rk + 1):
        for dj in range(-rj, rj + 1):
            rem = r2 - (dk * sampling[0]) ** 2 - (dj * sampling[1]) ** 2
            if rem < 0:
                continue
            w = int(np.floor(np.sqrt(rem) / sampling[2]))
            if w not in lines:
                lines[w] = ndi.maximum_filter1d(
                    m.view(np.uint8), 2 * w + 1, axis=2, mode="constant", cval=0
                ).view(bool)
            _shift_or(out, lines[w], dk, dj)
    full = np.zeros(mask.shape, bool)
    full[box] = out
    return full


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy import ndimage as ndi

    return ndi.label(mask, structure=np.ones((3, 3, 3), bool))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    box = bounding_box(mask) or _EMPTY
    lab, n = _components(mask[box])
    out = np.zeros(mask.shape, bool)
    if n <= 1:
        out[box] = lab > 0
        return out
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    out[box] = lab == int(np.argmax(sizes))
    return out


def _drop_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """Drop 26-connected components with fewer than ``min_voxels`` voxels."""
    from scipy import ndimage as ndi

    if min_voxels <= 1 or not mask.any():
        return mask.copy()
    box = bounding_box(mask) or _EMPTY
    lab, n = _components(mask[box])
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    small = np.flatnonzero(sizes < min_voxels)
    small = small[small > 0]
    out = mask.copy()
    if small.size == 0:
        return out
    sub = out[box]
    if small.size > 0.5 * n:
        keep = sizes >= min_voxels
        keep[0] = False
        sub[...] = keep[lab]
        return out
    objs = ndi.find_objects(lab)
    for c in small:
        sl = objs[c - 1]
        sub[sl] &= lab[sl] != c
    return out


def _factors(sampling: tuple[float, ...], target_mm: float) -> tuple[int, int, int]:
    """Integer block size per axis for a coarser working grid of about ``target_mm``."""
    return tuple(max(1, int(np.floor(target_mm / v + 1e-6))) for v in sampling)  # type: ignore[return-value]


def _deeper(depth: np.ndarray, c: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """``depth > c`` with ``c`` given per block of ``f`` voxels (no upsampled copy)."""
    if f == (1, 1, 1):
        return depth > c
    out = np.empty(depth.shape, bool)
    for x in range(f[0]):
        for y in range(f[1]):
            for z in range(f[2]):
                d = depth[x::f[0], y::f[1], z::f[2]]
                out[x::f[0], y::f[1], z::f[2]] = d > c[: d.shape[0], : d.shape[1], : d.shape[2]]
    return out


def _local_mean(values: np.ndarray, mask: np.ndarray, sigma_mm: float, sampling
                ) -> tuple[tuple[int, int, int], np.ndarray]:
    """Gaussian-weighted mean of ``values`` over the ``mask`` voxels (sigma ``sigma_mm``).

    Computed on blocks of about 1 mm; returns the block size and the block grid, for
    :func:`_gather` (NaN where no mask voxel is near).
    """
    f = _factors(sampling, 1.0)
    spc = tuple(v * b for v, b in zip(sampling, f, strict=True))
    num = block_reduce(np.where(mask, values, np.float32(0)), f, "sum")
    den = block_reduce(mask, f, "sum")
    num = _gaussian(num, sigma_mm, spc, mode="constant")
    den = _gaussian(den, sigma_mm, spc, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return f, np.where(den > 1e-3, num / den, np.nan).astype(np.float32)


def _gather(c: np.ndarray, f: tuple[int, int, int], mask: np.ndarray) -> np.ndarray:
    """Values of the block grid ``c`` at the ``mask`` voxels (in ``np.nonzero`` order)."""
    k, j, i = np.nonzero(mask)
    return c[k // f[0], j // f[1], i // f[2]]


def _upsample_linear(c: np.ndarray, f: tuple[int, int, int], shape) -> np.ndarray:
    """Linear interpolation of a grid sampled at every ``f``-th voxel back to ``shape``
    (the coarse grid must reach the last voxel: ``(n - 1) / f`` nodes and one more)."""
    out = np.asarray(c, np.float32)
    for ax, (b, n) in enumerate(zip(f, shape, strict=True)):
        if b == 1:
            continue
        src = np.moveaxis(out, ax, 0)
        full = np.empty(((src.shape[0] - 1) * b + 1, *src.shape[1:]), np.float32)
        full[::b] = src
        lo, hi = src[:-1], src[1:]
        for r in range(1, b):
            w = np.float32(r / b)
            full[r::b] = lo * (1 - w) + hi * w
        out = np.moveaxis(full[:n], 0, ax)
    return np.ascontiguousarray(out)


def _depth(head: np.ndarray, sampling, grid_mm: float) -> np.ndarray:
    """Distance (mm) from each head voxel to the nearest voxel outside the head (the array
    border counts as outside), computed on every f-th voxel (f for about ``grid_mm``) and
    interpolated linearly in between."""
    f = _factors(sampling, grid_mm)
    if f == (1, 1, 1):
        return _distance_to(np.pad(~head, 1, constant_values=True), sampling)[1:-1, 1:-1, 1:-1]
    m = [b * int(np.ceil((n - 1) / b)) + 1 for n, b in zip(head.shape, f, strict=True)]
    pad = [(1, mi - n + 1) for mi, n in zip(m, head.shape, strict=True)]
    out = np.pad(~head, pad, constant_values=True)[
        1:1 + m[0]:f[0], 1:1 + m[1]:f[1], 1:1 + m[2]:f[2]]
    spc = tuple(v * b for v, b in zip(sampling, f, strict=True))
    c = _distance_to(np.pad(out, 1, constant_values=True), spc)[1:-1, 1:-1, 1:-1]
    return _upsample_linear(c, f, head.shape)


def _nearest_shell_depth(shell: np.ndarray, depth: np.ndarray, where: np.ndarray,
                         sampling) -> tuple[np.ndarray, np.ndarray]:
    """The ``where`` voxels that touch ``shell`` (26-neighbours) and the weighted mean depth
    of the shell voxels among their neighbours (weights falling off with the distance in
    mm): the depth of the skull right next to them. Returns (flat indices, depths)."""
    r = float(np.sqrt(sum(v * v for v in sampling))) * 1.001
    n = shell.shape
    near = where & _dilate(shell, r, sampling)
    near[[0, -1]] = False
    near[:, [0, -1]] = False
    near[:, :, [0, -1]] = False
    lin = np.flatnonzero(near)
    del near
    flat_shell, flat_depth = shell.ravel(), depth.ravel()
    smin = min(sampling)
    ws = [float(np.exp(-0.5 * (v / smin) ** 2)) for v in sampling]
    num = np.zeros(lin.size, np.float32)
    den = np.zeros(lin.size, np.float32)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            for c in (-1, 0, 1):
                if a == b == c == 0:
                    continue
                w = np.float32((ws[0] if a else 1) * (ws[1] if b else 1) * (ws[2] if c else 1))
                idx = lin + ((a * n[1] + b) * n[2] + c)
                hit = flat_shell[idx]
                num += np.where(hit, w * flat_depth[idx], 0)
                den += np.where(hit, w, 0)
    ok = den > 0
    return lin[ok], num[ok] / den[ok]


def _vesselness(
    image: np.ndarray,
    candidates: np.ndarray,
    spacing_kji: tuple[float, float, float],
    s: CTSettings,
    min_ml: float = 0,
) -> np.ndarray:
    """Frangi measure (0-1) of bright tubes at the ``candidates`` voxels (0 elsewhere).

    The Hessian is taken in mm (derivatives divided by the spacing, per-axis sigma) and
    scale-normalised by sigma^2, so its eigenvalues are those of an orthonormal frame
    whatever the voxel size or orientation. Each sigma is computed on a grid of about
    2/3 sigma (block means of the image), in the bounding box of each candidate component of
    at least ``min_ml`` (the others get 0), or of all of them when that is less work.
    """
    from scipy import ndimage as ndi

    out = np.zeros(image.shape, np.float32)
    if not candidates.any():
        return out
    vox_ml = float(np.prod(spacing_kji)) / 1000.0
    for sigma in s.vessel_sigmas_mm:
        f = _factors(spacing_kji, sigma / 1.5)
        spc = tuple(v * b for v, b in zip(spacing_kji, f, strict=True))
        img = block_reduce(image, f, "mean")
        cands = block_reduce(candidates, f, "max", fill=False)
        margin = tuple(int(np.ceil(3 * sigma / v)) + 1 for v in spc)
        lab, n = _components(cands)
        sizes = np.bincount(lab.ravel())
        kept = [c for c in range(1, n + 1)
                if sizes[c] >= max(min_ml / (vox_ml * f[0] * f[1] * f[2]), 1)]
        if not kept:
            continue
        objs = ndi.find_objects(lab)
        boxes = [tuple(slice(max(sl.start - m, 0), min(sl.stop + m, dim))
                       for sl, m, dim in zip(objs[c - 1], margin, img.shape, strict=True))
                 for c in kept]
        union = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                      for a in range(3))
        vol = [np.prod([sl.stop - sl.start for sl in b]) for b in boxes]
        if sum(vol) >= np.prod([sl.stop - sl.start for sl in union]):
            keep = np.zeros(n + 1, bool)
            keep[kept] = True
            jobs = [(union, keep[lab[union]])]
        else:
            jobs = [(b, lab[b] == c) for b, c in zip(boxes, kept, strict=True)]
        del lab
        vc = np.zeros(img.shape, np.float32)
        for box, cand in jobs:
            best = _frangi(np.ascontiguousarray(img[box], dtype=np.float32), cand, spc,
                           sigma, s)
            sub = vc[box]
            sub[cand] = np.maximum(sub[cand], best)
        np.maximum(out, block_expand(vc, f, image.shape), out=out)
    out[~candidates] = 0
    return out


def _frangi(sub: np.ndarray, cand: np.ndarray, spacing_kji, sigma: float,
            s: CTSettings) -> np.ndarray:
    """Frangi measure at the ``cand`` voxels of ``sub`` at scale ``sigma`` (mm)."""
    from scipy import ndimage as ndi

    n = int(cand.sum())
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
    sig = [sigma / sp for sp in spacing_kji]
    hess = np.empty((n, 3, 3), np.float32)
    for a, b in pairs:
        order = [0, 0, 0]
        order[a] += 1
        order[b] += 1
        d = ndi.gaussian_filter(sub, sig, order=order, mode="nearest", truncate=3.0)
        v = d[cand] * np.float32(sigma * sigma / (spacing_kji[a] * spacing_kji[b]))
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
    return v.astype(np.float32)


def _gaussian(a: np.ndarray, sigma_mm: float, sampling, mode: str = "nearest") -> np.ndarray:
    """Gaussian filter (float32) with a sigma in mm converted per axis (3 sigma kernel)."""
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(
        np.asarray(a, np.float32), [sigma_mm / v for v in sampling], mode=mode, truncate=3.0
    )


def _plate_edge(peak: np.ndarray, level: float, base: float) -> np.ndarray:
    """HU at the edge of a blurred plate of bone whose blurred peak is ``peak``.

    A plate of level ``L`` and thickness ``t`` over ``base``, blurred by a Gaussian of sigma
    ``s``, peaks at ``base + (L - base) (2 Phi(t / 2s) - 1)`` and its edge lies at
    ``base + (L - base) (Phi(t / s) - 1/2)``: half way for thick bone, closer to the peak
    for thin bone. ``t / s`` is solved from the peak, so the blur need not be known. Where
    the peak is above ``level`` (denser bone) the edge is half way to the peak.
    """
    from scipy.special import ndtr, ndtri

    span = np.maximum(np.maximum(peak, np.float32(level)) - np.float32(base), 1.0)
    r = np.clip((peak - np.float32(base)) / span, 1e-6, 1 - 1e-6)
    x = 2.0 * ndtri((1.0 + r) / 2.0)
    return (base + span * (ndtr(x) - 0.5)).astype(np.float32)


def _bone_level(h: np.ndarray, g: np.ndarray, bone: np.ndarray, outside: np.ndarray,
                s: CTSettings) -> float:
    """The bone's level (HU) as this grid sees it: fitted by least squares to the spill
    on the scalp side of the skull (``outside``), where the tissue is uniform:
    ``h = a + (level - a) g`` with ``g`` the blurred bone mask."""
    band = outside & ~bone & (g > 0.05) & (g < 0.6)
    level = float(s.bone_min_hu)
    if band.sum() >= 50:
        gb = g[band].astype(np.float64)
        a = np.stack([np.ones_like(gb), gb], 1)
        c0, c1 = np.linalg.lstsq(a, h[band].astype(np.float64), rcond=None)[0]
        level = max(float(c0 + c1), level)
    return level


def _unmix(h: np.ndarray, g: np.ndarray, bone: np.ndarray, level: float,
           s: CTSettings) -> np.ndarray:
    """The smoothed HU with the blurred bone's spill taken out.

    Next to bone a voxel holds ``(1 - g) x + g b`` where ``g`` is the bone mask blurred
    like the image, ``b`` the bone's level and ``x`` the value of the tissue there; ``x``
    is solved for (``g`` capped at 0.75 so that noise is not blown up). Bone keeps ``h``.
    """
    ge = np.minimum(g * np.float32(s.bone_spill_gain), np.float32(0.75))
    x = (h - np.float32(level) * ge) / (1 - ge)
    x[bone] = h[bone]
    return x


# --- segmentation from CT ------------------------------------------------------------------
def segment_ct(
    ct: Volume,
    settings: CTSettings | None = None,
    progress: Progress | None = None,
) -> Volume:
    """Tissue codes from a contrast CT in Hounsfield units.

    Parameters
    ----------
    ct : Volume
        CT in HU on any grid (anisotropic or oblique voxels are fine).
    settings : CTSettings, optional
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
    s = settings or CTSettings()
    sp = ct.spacing_kji
    vox_ml = ct.voxel_volume_ml
    arr = np.asarray(ct.array)
    check_ct_hu(arr, s)
    _report(progress, "head", 0.0)
    box, head, h, raw = _head(arr, sp, s, progress)
    _report(progress, "bone", 0.15)
    bone, bone_idx, bone_peak = _bone(raw, head, sp, vox_ml, s)
    _report(progress, "inside of the skull", 0.3)
    inside = _inside(head, bone, sp, vox_ml, s)
    spill = _bone_spill(h, raw, head, bone, inside, bone_idx, bone_peak, sp, s)
    del bone_idx, bone_peak
    _report(progress, "vessels", 0.5)
    vessel, near_bone = _vessels(spill.hx, inside, bone, sp, vox_ml, s)
    _report(progress, "brain and CSF", 0.75)
    brain, csf = _brain_and_csf(spill.hb, inside, vessel, bone, near_bone, sp, vox_ml, s)
    _report(progress, "labels", 0.95)
    sub = np.zeros(head.shape, np.uint8)
    sub[head] = Tissue.SCALP
    sub[csf] = Tissue.CSF
    sub[brain] = Tissue.BRAIN
    sub[vessel] = Tissue.VESSEL
    sub[bone] = Tissue.BONE
    out = np.zeros(ct.shape, np.uint8)
    out[box] = sub
    _report(progress, "done", 1.0)
    return ct.with_array(out)


#: What to do with a scan that is not a CT in HU (the end of the refusal's line).
NOT_CT_HINT = ("give the CT series (ingest or plan --series, as the series list names it), "
               "or import a tissue label map with --tissues FILE")


def air_fraction(arr: np.ndarray, air_hu: float) -> float:
    """Share (0-1) of the voxels below ``air_hu`` (HU)."""
    return float(np.count_nonzero(arr < air_hu)) / max(arr.size, 1)


def check_ct_hu(arr: np.ndarray, s: CTSettings | None = None) -> None:
    """Refuse NaN/infinite voxels and a value range that cannot be CT Hounsfield units.

    A head CT holds the air around the head (about -1000 HU; -1024 to -3024 outside the
    reconstructed circle): 62 % of the phantom's voxels, 69-88 % of real head CTs
    (neurolabusc/dcm_qa_ct, GE and Philips) lie below -500 HU. An MR (Colin27 T1: 0-192),
    a PET or a map of other units has none. Refused when fewer than
    ``s.min_air_fraction`` (0.5 %) of the voxels lie below ``s.air_hu`` (-500 HU).

    Parameters
    ----------
    arr : ndarray
        The scan's values.
    s : CTSettings, optional
        ``air_hu`` (HU) and ``min_air_fraction``.

    Raises
    ------
    InputError
        One line: what was found and what to do.
    """
    s = s or CTSettings()
    if arr.dtype.kind not in "iub" and not np.isfinite(arr).all():
        raise InputError("the scan holds NaN or infinite values")
    if s.min_air_fraction <= 0:
        return
    frac = air_fraction(arr, s.air_hu)
    if frac < s.min_air_fraction:
        amin, p1 = float(arr.min()), float(np.percentile(arr, 1))
        raise InputError(
            f"the scan's values are not CT Hounsfield units: {100 * frac:.2g} % of the voxels "
            f"below {s.air_hu:.0f} HU (air), minimum {amin:.4g}, 1st percentile {p1:.4g}; "
            f"twinsep segments CT by Hounsfield units: {NOT_CT_HINT} (or --set "
            "ct.min_air_fraction=0 if it is a CT without air)"
        )


def _head(arr: np.ndarray, sp: tuple[float, ...], s: CTSettings, progress: Progress | None
          ) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray]:
    """The head, found on a coarse grid first; everything else is done in its box.

    Returns the box (slices of the CT), the head mask (holes filled), the smoothed HU and
    the unsmoothed HU in the CT's own type (integer types are cheaper to filter), all in
    the box.
    """
    from scipy import ndimage as ndi

    fc = _factors(sp, 2.0)
    coarse = arr[:: fc[0], :: fc[1], :: fc[2]] > s.head_hu
    if not coarse.any():
        raise InputError(f"no voxel above {s.head_hu:.0f} HU: the scan holds no head")
    coarse = ndi.binary_dilation(_largest_component(coarse), np.ones((3, 3, 3), bool))
    kernel = [int(3.0 * s.smoothing_mm / v + 0.5) for v in sp]
    margin = tuple(int(np.ceil(2.0 / v)) + 1 + b + r for v, b, r in zip(sp, fc, kernel,
                                                                          strict=True))
    cb = bounding_box(coarse) or _EMPTY
    lo = [max(sl.start * b - m, 0) for sl, b, m in zip(cb, fc, margin, strict=True)]
    hi = [min(sl.stop * b + m, n) for sl, b, m, n in zip(cb, fc, margin, arr.shape,
                                                          strict=True)]
    outer = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    hu_o = np.asarray(arr[outer], dtype=np.float32)
    _report(progress, "denoising", 0.05)
    if s.smoothing_mm > 0:
        hs_o = _gaussian(hu_o, s.smoothing_mm, sp)
    else:
        hs_o = hu_o
    head_o = _largest_component(hs_o > s.head_hu)
    if not head_o.any():
        raise InputError(f"no voxel above {s.head_hu:.0f} HU: the scan holds no head")
    inner = bounding_box(head_o, [int(np.ceil(2.0 / v)) + 1 for v in sp]) or _EMPTY
    box = tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner,
                                                                           strict=True))
    head = fill_holes(head_o[inner])
    h = np.ascontiguousarray(hs_o[inner])
    raw = np.ascontiguousarray(arr[box])
    return box, head, h, raw


def _bone(raw: np.ndarray, head: np.ndarray, sp: tuple[float, ...], vox_ml: float,
          s: CTSettings) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """Bone by the partial-volume rule on the unsmoothed HU (noise matters little at these
    levels and smoothing would widen the thin bone); its voxels and their local peaks."""
    from scipy import ndimage as ndi

    size = [2 * round(s.bone_peak_radius_mm / v) + 1 for v in sp]
    if raw.dtype.kind in "iu":
        info = np.iinfo(raw.dtype)
        fill = raw.dtype.type(min(max(s.head_hu, info.min), info.max))
    else:
        fill = raw.dtype.type(s.head_hu)
    peak = ndi.maximum_filter(np.where(head, raw, fill), size=size, mode="nearest")
    base = s.soft_tissue_hu
    frac = np.float32(s.bone_peak_fraction)
    thr = np.maximum(np.float32(s.bone_min_hu),
                     np.float32(base) + frac * (peak - np.float32(base)))
    bone = head & (raw >= thr)
    del thr
    bone = _drop_small(bone, s.min_bone_ml / vox_ml)
    bone_idx = np.nonzero(bone)
    return bone, bone_idx, peak[bone_idx].astype(np.float32)


def _inside(head: np.ndarray, bone: np.ndarray, sp: tuple[float, ...], vox_ml: float,
            s: CTSettings) -> np.ndarray:
    """The inside of the skull.

    A voxel is inside when it lies deeper below the head surface than the nearest voxel of
    the skull shell: robust to gaps in the bone (fontanelles, thin bone lost to the grid)
    and to the bone-free junction of a total craniopagus; bone deeper than
    skull_max_depth_mm (a partial fusion's plate between the heads) is not shell. The
    nearest shell voxel is looked up exactly for the voxels next to the shell, and further
    away on a grid of about 2 mm whose cells stand for the deepest shell voxel they hold.
    """
    from scipy import ndimage as ndi

    depth = _depth(head, sp, DEPTH_GRID_MM)
    shell = bone & (depth <= s.skull_max_depth_mm)
    if shell.sum() * vox_ml >= s.min_bone_ml:
        fs = _factors(sp, 2.0)
        sdepth = block_reduce(np.where(shell, depth, np.float32(-1)), fs, "max",
                              fill=np.float32(-1))
        near = ndi.distance_transform_edt(
            sdepth < 0, sampling=[v * b for v, b in zip(sp, fs, strict=True)],
            return_distances=False, return_indices=True,
        )
        sdepth = sdepth[tuple(near)]
        del near
        inside = head & ~bone & _deeper(depth, sdepth, fs)
        del sdepth
        if fs != (1, 1, 1):
            lin, sd = _nearest_shell_depth(shell, depth, head & ~bone, sp)
            inside.ravel()[lin] = depth.ravel()[lin] > sd
            del lin, sd
    else:  # no skull found: a shell of fixed depth stands in for scalp and bone
        inside = head & ~bone & (depth > s.shell_depth_mm)
    del depth
    return _drop_small(inside, s.min_brain_ml / vox_ml)


@dataclass
class _Spill:
    """The CT with the spill of the blurred bone taken out: ``hx`` for vessels (exact
    unmixing), ``hb`` for brain and CSF (a wide estimate)."""

    hx: np.ndarray
    hb: np.ndarray


def _bone_spill(h: np.ndarray, raw: np.ndarray, head: np.ndarray, bone: np.ndarray,
                inside: np.ndarray, bone_idx: tuple[np.ndarray, ...], bone_peak: np.ndarray,
                sp: tuple[float, ...], s: CTSettings) -> _Spill:
    """Thin-bone edges, bone against contrast and the spill of the blurred bone.

    ``bone`` and ``inside`` are updated in place: bone voxels that a blurred plate model or
    the rim against a sinus gives back go to the inside (or the scalp).
    """
    blur = float(np.hypot(s.psf_mm, s.smoothing_mm))
    g_bone, bone_level = _thin_bone_edges(h, raw, head, bone, inside, bone_idx, bone_peak,
                                          blur, sp, s)
    hx = _unmix(h, g_bone, bone, bone_level, s) if s.bone_spill_gain > 0 else h.copy()
    _rim_against_contrast(h, hx, raw, bone, inside, g_bone, bone_level, blur, sp, s)
    # for brain and CSF: the bone's excess over soft tissue, blurred by bone_spill_mm, is
    # taken away (a wide estimate of the spill: it keeps the CSF next to the skull CSF)
    if s.bone_spill_mm > 0:
        excess = np.where(bone, np.maximum(h - s.soft_tissue_hu, 0), 0).astype(np.float32)
        sigma = float(np.hypot(s.bone_spill_mm, s.smoothing_mm))
        hb = h - s.bone_spill_gain * _gaussian(excess, sigma, sp, mode="constant")
        hb[bone] = h[bone]
        del excess
    else:
        hb = h
    return _Spill(hx=hx, hb=hb)


def _thin_bone_edges(h: np.ndarray, raw: np.ndarray, head: np.ndarray, bone: np.ndarray,
                     inside: np.ndarray, bone_idx: tuple[np.ndarray, ...],
                     bone_peak: np.ndarray, blur: float, sp: tuple[float, ...],
                     s: CTSettings) -> tuple[np.ndarray, float]:
    """Thin blurred bone: with the bone's level known, its edge is where a blurred plate of
    the local peak has it (half way only for thick bone); the level is fitted again with
    the thinner bone (a too thick mask makes it low). Returns the blurred bone mask and
    the bone's level (HU); ``bone`` and ``inside`` change in place."""
    g_bone = _gaussian(bone, blur, sp, mode="constant")
    bone_level = _bone_level(h, g_bone, bone, head & ~inside, s)
    for _ in range(3 if s.bone_edge_model else 0):
        thr = _plate_edge(bone_peak, bone_level, s.soft_tissue_hu)
        k, j, i = bone_idx
        drop = raw[k, j, i] < np.maximum(thr, np.float32(s.bone_min_hu))
        del thr
        if drop.size == 0 or drop.sum() < 0.002 * drop.size:
            break
        lost = np.zeros(head.shape, bool)
        lost[k[drop], j[drop], i[drop]] = True
        bone &= ~lost
        # bone taken off the inner table joins the inside, off the outer table the scalp
        inside |= lost & _dilate(inside, 1.01 * max(sp), sp)
        del lost
        keep = ~drop
        bone_idx = (k[keep], j[keep], i[keep])
        bone_peak = bone_peak[keep]
        g_bone = _gaussian(bone, blur, sp, mode="constant")
        bone_level = _bone_level(h, g_bone, bone, head & ~inside, s)
    return g_bone, bone_level


def _rim_against_contrast(h: np.ndarray, hx: np.ndarray, raw: np.ndarray, bone: np.ndarray,
                          inside: np.ndarray, g_bone: np.ndarray, bone_level: float,
                          blur: float, sp: tuple[float, ...], s: CTSettings) -> None:
    """Bone against contrast: the edge lies half way between the bone's level and the level
    across the rim (not the soft tissue's), so the blurred rim of a sinus against the skull
    is not bone. The level across is a local mean (sigma rim_level_mm) of the inside voxels
    where the spill is small (the blurred bone adds < 5% of its level). ``bone``,
    ``inside``, ``g_bone`` and ``hx`` change in place."""
    sample = inside & (g_bone < 0.05)
    rim = bone & _dilate(inside, 1.01 * max(sp), sp)
    if not (sample.any() and rim.any()):
        return
    fl, level_x = _local_mean(h, sample, s.rim_level_mm, sp)
    lx = _gather(level_x, fl, rim)
    del level_x, sample
    k, j, i = np.nonzero(rim)
    flip = (lx >= 0.5 * s.vessel_hu) & (raw[k, j, i] < 0.5 * (bone_level + lx))
    cand = np.zeros(bone.shape, bool)
    cand[k[flip], j[flip], i[flip]] = True
    del k, j, i, lx, flip
    if not cand.any():
        return
    bone &= ~cand
    inside |= cand
    # the blurred mask and the unmixed HU change only near the flipped voxels
    rad = tuple(int(3.0 * blur / v + 0.5) + 1 for v in sp)
    cb = bounding_box(cand, rad) or _EMPTY
    g_bone[cb] -= _gaussian(cand[cb], blur, sp, mode="constant")
    np.maximum(g_bone[cb], 0, out=g_bone[cb])
    if s.bone_spill_gain > 0:
        hx[cb] = _unmix(h[cb], g_bone[cb], bone[cb], bone_level, s)


def _vessels(hx: np.ndarray, inside: np.ndarray, bone: np.ndarray, sp: tuple[float, ...],
             vox_ml: float, s: CTSettings) -> tuple[np.ndarray, np.ndarray]:
    """Contrast-filled vessels: tubular seeds (vesselness) grown through contrast voxels
    at most vessel_grow_mm away (measured on a grid of about 1 mm). Returns the vessel mask
    and the voxels near the bone (bone_margin_mm)."""
    shape = hx.shape
    contrast = inside & (hx >= s.vessel_hu)
    near_bone = _dilate(bone, s.bone_margin_mm, sp) & ~bone
    img = np.minimum(hx, s.bone_min_hu)
    img[bone] = s.soft_tissue_hu
    core_cand = contrast & ~near_bone
    vness = _vesselness(img, core_cand, sp, s, min_ml=s.min_vessel_ml)
    seeds = core_cand & (vness >= s.vesselness_threshold) & (hx >= s.vessel_seed_hu)
    del vness, img
    fg = _factors(sp, 1.0)
    spg = tuple(v * b for v, b in zip(sp, fg, strict=True))
    seeds_g = block_reduce(seeds, fg, "max", fill=False)
    gb = bounding_box(block_reduce(core_cand, fg, "max", fill=False)) or _EMPTY
    reach = np.zeros(seeds_g.shape, bool)
    if seeds_g.any():
        reach[gb] = _distance_to(seeds_g[gb], spg) <= s.vessel_grow_mm
    core_cand &= block_expand(reach, fg, shape)
    vessel = np.zeros(shape, bool)
    if seeds.any():
        vb = bounding_box(core_cand) or _EMPTY
        lab, n = _components(core_cand[vb])
        seeded = np.zeros(n + 1, bool)
        seeded[np.unique(lab[seeds[vb]])] = True
        seeded[0] = False
        vessel[vb] = seeded[lab]
        del lab
    if vessel.any() and s.bone_margin_mm > 0:
        vessel |= contrast & near_bone & _dilate(vessel, s.bone_margin_mm, sp)
    return _drop_small(vessel, s.min_vessel_ml / vox_ml), near_bone


def _brain_and_csf(hb: np.ndarray, inside: np.ndarray, vessel: np.ndarray, bone: np.ndarray,
                   near_bone: np.ndarray, sp: tuple[float, ...], vox_ml: float,
                   s: CTSettings) -> tuple[np.ndarray, np.ndarray]:
    """Brain (at or above brain_hu, off the dura margin) and CSF/dura (the rest of the
    inside); small CSF islands enclosed by brain become brain."""
    rest = inside & ~vessel
    if s.dura_margin_mm == s.bone_margin_mm:
        dura = near_bone | bone
    else:
        dura = _dilate(bone, s.dura_margin_mm, sp)
    brain = rest & (hb >= s.brain_hu) & ~dura
    brain = _drop_small(brain, s.min_brain_ml / vox_ml)
    csf = rest & ~brain
    if s.max_csf_hole_ml > 0 and csf.any():
        _fill_csf_holes(brain, csf, inside, sp, s.max_csf_hole_ml / vox_ml)
    return brain, csf


def _fill_csf_holes(brain: np.ndarray, csf: np.ndarray, inside: np.ndarray,
                    sp: tuple[float, ...], max_voxels: float) -> None:
    """A small CSF island touching no bone and no scalp is a hole in the brain (in place)."""
    from scipy import ndimage as ndi

    cbx = bounding_box(csf, 1) or _EMPTY
    lab, n = _components(csf[cbx])
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    small = sizes < max_voxels
    small[0] = False
    if not small.any():
        return
    touch = np.zeros(n + 1, bool)
    border = _dilate(~inside[cbx], 1.01 * max(sp), sp) & (lab > 0)
    touch[np.unique(lab[border])] = True
    del border
    objs = ndi.find_objects(lab)
    sub_b, sub_c = brain[cbx], csf[cbx]
    for c in np.flatnonzero(small & ~touch):
        sl = objs[c - 1]
        f = lab[sl] == c
        sub_b[sl] |= f
        sub_c[sl] &= ~f


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
