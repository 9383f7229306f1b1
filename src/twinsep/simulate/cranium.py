"""Patient-specific cranial implant across the bone defect, and its checks.

Design (on the scan's voxel grid, cropped to the box around the junction that
:mod:`twinsep.simulate.core` passes in; distances in world mm via ``sampling=``):

1. ``D`` (``opened``): the space of the other twin, i.e. its tissue and the air nearer to it
   than to this twin's tissue (the space that opens when the other child is taken away).
2. A sphere is fitted (least squares) to the outer surface of the child's own cranium in a
   band around the defect (``implant.fit_band_mm`` from the cut): it continues the local
   skull curvature across the defect.
3. The closed cranial envelope ``C`` = own cranium (bone and everything inside it) plus, in
   ``D``, the inside of the sphere and a cover of at least ``thickness + voxel`` mm over the
   exposed dura/brain, both within ``implant.max_bulge_mm`` of the intradural contents; the
   added part is smoothed (Gaussian, ``implant.smooth_mm``) and enclosed holes are filled.
4. The implant is the outer ``thickness`` mm of ``C`` that lies in ``D`` (never in the
   child's own tissue, so never in the brain), minus pieces under ``implant.min_piece_ml``.

Every distance is computed exactly where it is used: a distance threshold ``T`` around a
region only needs the voxels within ``T`` of that region, so each transform runs on the
smallest box that holds them (:func:`edt_box`), never on the whole scan.

Checks (:func:`closure_check`): the skull wall = own bone + implant + the cranium's voxels
that touch the child's own scalp or the air on its side (a 2 mm skull sampled at 2-3 mm is
not a face-tight voxel wall, so the native vault is taken as closed; the exposed dura at the
cut, which touches only the opened space, is not wall: the implant must close it). The
outside is flood-filled through the voxels that are not wall (6-connectivity, from the
border of the child's bounding box grown by a voxel: no wall lies beyond it); the cranial cavity
(CSF/dura, brain, vessels) must not be reached. Any opening at least one voxel wide (the
voxel spacing) connects the cavity to the outside, so the test detects holes of the spacing
and larger; smaller ones are below the scan's resolution.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume, block_reduce, border_labels, bounding_box, fill_holes

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


# --- boxes -----------------------------------------------------------------------------
def bbox(mask: np.ndarray) -> Box | None:
    """Index box ``((k0, k1), (j0, j1), (i0, i1))`` (half open) of ``mask``: the
    :func:`twinsep.image.bounding_box` as bounds; None if empty."""
    box = bounding_box(mask)
    return None if box is None else tuple((b.start, b.stop) for b in box)  # type: ignore[return-value]


def grow(box: Box, mm: float, spacing, shape) -> Box:
    """``box`` grown by ``mm`` (rounded up to whole voxels, plus one) on every side."""
    out = []
    for (lo, hi), sp, n in zip(box, spacing, shape, strict=True):
        m = int(np.ceil(mm / sp)) + 1
        out.append((max(0, lo - m), min(n, hi + m)))
    return tuple(out)  # type: ignore[return-value]


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple((min(p[0], q[0]), max(p[1], q[1])) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


def sl(box: Box, within: Box | None = None) -> tuple[slice, slice, slice]:
    """Slices of ``box`` in the full grid, or relative to the box ``within``."""
    off = [0, 0, 0] if within is None else [w[0] for w in within]
    return tuple(slice(lo - o, hi - o) for (lo, hi), o in zip(box, off, strict=True))  # type: ignore[return-value]


def edt_box(features: np.ndarray, box: Box, limit_mm: float, spacing, *,
            region: Box | None = None) -> np.ndarray:
    """Distance (mm) to the ``True`` voxels of ``features`` over ``box``, exact up to
    ``limit_mm``.

    ``features`` is indexed like the full grid (or like ``region`` when given). The
    transform runs on ``box`` grown by ``limit_mm``: every feature within ``limit_mm`` of a
    voxel of ``box`` lies in it, so values <= ``limit_mm`` are exact and larger values are
    at least ``limit_mm`` (``inf`` where no feature is near).
    """
    shape = features.shape
    full = region if region is not None else tuple((0, n) for n in shape)
    outer = grow(box, limit_mm, spacing, [f[1] for f in full])
    outer = tuple((max(o[0], f[0]), min(o[1], f[1])) for o, f in zip(outer, full, strict=True))
    sub = features[sl(outer, region)]
    if not sub.any():
        return np.full([b[1] - b[0] for b in box], np.inf, np.float32)
    d = ndi.distance_transform_edt(~sub, sampling=spacing).astype(np.float32)
    return d[sl(box, outer)]


def coarse_factor(spacing) -> int:
    """Integer block size that brings the voxel spacing to about 2 mm (1 at >= 1.5 mm)."""
    return max(1, round(2.0 / max(spacing)))


def coarse_error(spacing, factor: int) -> float:
    """Largest error (mm) of :func:`coarse_edt` with this ``factor``."""
    return float(np.sqrt(sum(((factor - 1) * v) ** 2 for v in spacing)))


def coarse_edt(features: np.ndarray, spacing, factor: int) -> np.ndarray:
    """Distance (mm) to ``features`` on blocks of ``factor**3`` voxels, given back on the fine
    grid: within :func:`coarse_error` of the exact distance. For thresholds far above the
    voxel size (the fit band, the largest bulge) and to find where an exact transform is
    needed."""
    if factor <= 1:
        if not features.any():
            return np.full(features.shape, np.inf, np.float32)
        return ndi.distance_transform_edt(~features, sampling=spacing).astype(np.float32)
    f = factor
    shp = features.shape
    c = block_reduce(features, (f, f, f), "any")
    if not c.any():
        return np.full(shp, np.inf, np.float32)
    d = ndi.distance_transform_edt(~c, sampling=[v * f for v in spacing]).astype(np.float32)
    for ax in range(3):
        d = np.repeat(d, f, axis=ax)
    return np.ascontiguousarray(d[: shp[0], : shp[1], : shp[2]])


def near_box(coarse: np.ndarray, where: np.ndarray, limit_mm: float, err_mm: float) -> Box | None:
    """Box of the voxels of ``where`` that may lie within ``limit_mm`` of the features of the
    coarse distance map ``coarse`` (error ``err_mm``)."""
    return bbox(where & (coarse <= limit_mm + err_mm))


# --- geometry --------------------------------------------------------------------------
def to_world(vol: Volume, kji: np.ndarray) -> np.ndarray:
    """World mm of array indices ``(n, 3)``: :meth:`Volume.index_to_world` computed column by
    column (numpy's small-matrix product is slow on millions of points)."""
    kji = np.asarray(kji, np.float64)
    a = vol.affine
    k, j, i = kji[:, 0], kji[:, 1], kji[:, 2]
    return np.stack([a[r, 0] * i + a[r, 1] * j + a[r, 2] * k + a[r, 3] for r in range(3)], 1)


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through ``points`` (n, 3) mm: centre (3,) and radius (mm)."""
    p = np.asarray(points, float)
    a = np.c_[2 * p, np.ones(len(p))]
    b = (p**2).sum(1)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    centre = sol[:3]
    radius = float(np.sqrt(max(sol[3] + centre @ centre, 0.0)))
    return centre, radius


def boundary(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it."""
    return mask & ~ndi.binary_erosion(mask, border_value=0)


def design_implant(vol: Volume, cran: np.ndarray, intra: np.ndarray, opened: np.ndarray,
                   d_cut: np.ndarray, thickness_mm: float, s) -> dict:
    """Implant mask and design data for one twin, on the working box ``vol``.

    Parameters
    ----------
    vol : Volume
        Grid of the working box (geometry only; arrays below have its shape). The box must
        reach ``max(fit_band_mm[1], max_bulge_mm)`` plus a few voxels beyond the cut.
    cran, intra : bool arrays
        The twin's cranium (bone and inside) and its intradural contents (CSF/dura, brain,
        vessels).
    opened : bool array
        ``D``: the other twin's space (its tissue and the air nearer to it).
    d_cut : float array
        Distance (mm) from the cut (the voxels of either twin that touch the other), for the
        fit band (may come from :func:`coarse_edt`).
    thickness_mm : float
        Implant thickness (mm).
    s : ImplantSettings

    Returns
    -------
    dict
        ``implant`` (bool array), ``closed`` (the closed envelope), ``opened``,
        ``sphere_centre_mm``, ``sphere_radius_mm``, ``fit_points``, ``touches_border``
        (the added part reaches the edge of the box: the caller must retry on a larger one).
    """
    sp = vol.spacing_kji
    smin = float(min(sp))
    lo, hi = s.fit_band_mm
    rim = boundary(cran) & (d_cut >= lo) & (d_cut <= hi)
    pts = to_world(vol, np.argwhere(rim))
    if len(pts) >= 20:
        centre, radius = fit_sphere(pts)
    else:  # no usable rim: cover only
        centre, radius = np.full(3, np.nan), float("nan")
    # the added part lies in D within max_bulge of the intradural contents: ``reach`` (tens
    # of mm) on blocks of about 2 mm; the cover (a few mm) exactly, on the box where the
    # blocks say it can be
    t_cover = thickness_mm + smin
    f = coarse_factor(sp)
    err = coarse_error(sp, f)
    d_c = coarse_edt(intra, sp, f)
    reach = opened & (d_c <= s.max_bulge_mm)
    cover = np.zeros(cran.shape, bool)
    cbox = near_box(d_c, opened, t_cover, err)
    del d_c
    if cbox is not None:
        cover[sl(cbox)] = opened[sl(cbox)] & (edt_box(intra, cbox, t_cover, sp) <= t_cover)
    cand = np.argwhere(reach)
    if len(cand) and np.isfinite(radius):
        w = to_world(vol, cand)
        inside_c = ((w - centre) ** 2).sum(1) < radius**2
        inside = np.zeros(cran.shape, bool)
        inside[tuple(cand[inside_c].T)] = True
        del w
    else:
        inside = np.zeros(cran.shape, bool)
    capsule = reach & (inside | cover)
    closed = cran | capsule
    if s.smooth_mm > 0 and reach.any():
        # the smoothed envelope is only used in ``reach``: filter a box that holds it and
        # every voxel the Gaussian (truncated at 4 sigma) draws on
        inner = bbox(reach)
        outer = grow(inner, 4.0 * s.smooth_mm, sp, cran.shape)
        g = ndi.gaussian_filter(closed[sl(outer)].astype(np.float32),
                                [s.smooth_mm / v for v in sp])[sl(inner, outer)]
        add = np.zeros(cran.shape, bool)
        add[sl(inner)] = g > 0.5
        closed = cran | (reach & add) | cover
    closed = fill_holes(closed)
    implant = np.zeros(cran.shape, bool)
    added = closed & ~cran & opened
    abox = bbox(added)
    touches = False
    if abox is not None:
        touches = any(a[0] == 0 or a[1] == n for a, n in zip(abox, cran.shape, strict=True))
        t_in = thickness_mm + 0.5 * smin
        depth = edt_box(~closed, abox, t_in, sp)
        implant[sl(abox)] = added[sl(abox)] & (depth <= t_in)
        lab, n = ndi.label(implant[sl(abox)], structure=np.ones((3, 3, 3), bool))  # 26-conn.
        if n:
            sizes = np.bincount(lab.ravel())[1:] * vol.voxel_volume_ml
            keep = np.zeros(n + 1, bool)
            keep[1:] = sizes >= s.min_piece_ml
            implant[sl(abox)] = keep[lab]
    return {"implant": implant, "closed": closed, "opened": opened,
            "sphere_centre_mm": centre, "sphere_radius_mm": radius, "fit_points": len(pts),
            "touches_border": touches}


def closure_check(bone: np.ndarray, implant: np.ndarray, cran: np.ndarray, intra: np.ndarray,
                  opened: np.ndarray) -> dict:
    """Is the cranial cavity closed by the skull plus the implant? (see module docstring)

    The arrays cover the child's bounding box (and the implant's) grown by at least one
    voxel, so that no wall touches their border.

    Returns
    -------
    dict
        ``closed`` (bool), ``leak_voxels`` (cavity voxels reached from outside with the
        implant), ``leak_voxels_without_implant`` (the same without it: > 0 shows the test
        sees the open defect).
    """
    native = cran & ndi.binary_dilation(~cran & ~opened)

    def leak(wall: np.ndarray) -> int:
        lab, n = ndi.label(~wall)
        out = border_labels(lab, n)
        out[0] = False
        return int(out[lab[intra & ~wall]].sum())

    with_implant = leak(bone | implant | native)
    without = leak(bone | native)
    return {"closed": with_implant == 0, "leak_voxels": with_implant,
            "leak_voxels_without_implant": without}
