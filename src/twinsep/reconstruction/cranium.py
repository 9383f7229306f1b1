"""Patient-specific cranial implant across the bone defect, and its checks.

Design (all on the scan's voxel grid, distances in world mm via ``sampling=``):

1. ``D``: the voxels nearer the other twin's tissue than this twin's (the space that opens
   when the other child is taken away).
2. A sphere is fitted (least squares) to the outer surface of the child's own cranium in a
   band around the defect (``implant.fit_band_mm`` from the cut): it continues the local
   skull curvature across the defect.
3. The closed cranial envelope ``C`` = own cranium (bone and everything inside it) plus, in
   ``D``, the inside of the sphere and a cover of at least ``thickness + voxel`` mm over the
   exposed dura/brain; the added part is smoothed (Gaussian, ``implant.smooth_mm``).
4. The implant is the outer ``thickness`` mm of ``C`` that lies in ``D`` (never in the
   child's own tissue, so never in the brain), minus pieces under ``implant.min_piece_ml``.

Checks (:func:`closure_check`): the skull wall = own bone + implant + the cranium's voxels
that touch the child's own scalp or the air on its side (a 2 mm skull sampled at 2-3 mm is
not a face-tight voxel wall, so the native vault is taken as closed; the exposed dura at the
cut, which touches only the opened space, is not wall: the implant must close it). The
outside is flood-filled through the voxels that are not wall (6-connectivity, from the
grid border); the cranial cavity (CSF/dura, brain, vessels) must not be reached. Any opening
at least one voxel wide (the voxel spacing) connects the cavity to the outside, so the test
detects holes of the spacing and larger; smaller ones are below the scan's resolution.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume


def world_grid(vol: Volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z (mm, float32) of every voxel, as three arrays shaped like the volume."""
    nk, nj, ni = vol.shape
    a = vol.affine
    k = np.arange(nk, dtype=np.float32)[:, None, None]
    j = np.arange(nj, dtype=np.float32)[None, :, None]
    i = np.arange(ni, dtype=np.float32)[None, None, :]
    return tuple(  # type: ignore[return-value]
        (a[r, 0] * i + a[r, 1] * j + a[r, 2] * k + a[r, 3]).astype(np.float32)
        for r in range(3)
    )


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


def design_implant(vol: Volume, cran: np.ndarray, intra: np.ndarray, d_own: np.ndarray,
                   d_other: np.ndarray, thickness_mm: float, s) -> dict:
    """Implant mask and design data for one twin.

    Parameters
    ----------
    vol : Volume
        Grid (geometry only).
    cran, intra : bool arrays
        The twin's cranium (bone and inside) and its intradural contents (CSF/dura, brain,
        vessels).
    d_own, d_other : float arrays
        Distance (mm) to the twin's own tissue and to the other twin's tissue.
    thickness_mm : float
        Implant thickness (mm).
    s : ImplantSettings

    Returns
    -------
    dict
        ``implant`` (bool array), ``closed`` (the closed envelope), ``sphere_centre_mm``,
        ``sphere_radius_mm``, ``fit_points``.
    """
    sp = vol.spacing_kji
    smin = float(min(sp))
    opened = d_other < d_own  # D: the space of the other twin
    d_intra = ndi.distance_transform_edt(~intra, sampling=sp)
    lo, hi = s.fit_band_mm
    rim = boundary(cran) & (d_other >= lo) & (d_other <= hi)
    pts = vol.index_to_world(np.argwhere(rim))
    x, y, z = world_grid(vol)
    if len(pts) >= 20:
        centre, radius = fit_sphere(pts)
        inside = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) < radius**2
    else:  # no usable rim: cover only
        centre, radius = np.full(3, np.nan), float("nan")
        inside = np.zeros(vol.shape, bool)
    del x, y, z
    reach = d_intra <= s.max_bulge_mm
    cover = opened & (d_intra <= thickness_mm + smin)
    capsule = opened & reach & (inside | cover)
    closed = cran | capsule
    if s.smooth_mm > 0:
        g = ndi.gaussian_filter(closed.astype(np.float32), [s.smooth_mm / v for v in sp])
        closed = cran | (opened & reach & (g > 0.5)) | cover
    closed = ndi.binary_fill_holes(closed)
    depth = ndi.distance_transform_edt(closed, sampling=sp)
    implant = closed & (depth <= thickness_mm + 0.5 * smin) & ~cran & opened
    lab, n = ndi.label(implant, structure=np.ones((3, 3, 3), bool))  # 26-connected pieces
    if n:
        sizes = np.bincount(lab.ravel())[1:] * vol.voxel_volume_ml
        keep = np.flatnonzero(sizes >= s.min_piece_ml) + 1
        implant = np.isin(lab, keep)
    return {"implant": implant, "closed": closed, "opened": opened,
            "sphere_centre_mm": centre, "sphere_radius_mm": radius, "fit_points": len(pts)}


def closure_check(bone: np.ndarray, implant: np.ndarray, cran: np.ndarray, intra: np.ndarray,
                  opened: np.ndarray) -> dict:
    """Is the cranial cavity closed by the skull plus the implant? (see module docstring)

    Returns
    -------
    dict
        ``closed`` (bool), ``leak_voxels`` (cavity voxels reached from outside with the
        implant), ``leak_voxels_without_implant`` (the same without it: > 0 shows the test
        sees the open defect).
    """
    native = cran & ndi.binary_dilation(~cran & ~opened)

    def leak(wall: np.ndarray) -> int:
        lab, _ = ndi.label(~wall)
        border = np.unique(np.concatenate([
            lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(), lab[:, -1].ravel(),
            lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
        border = border[border > 0]
        outside = np.isin(lab, border)
        return int((outside & intra & ~wall).sum())

    with_implant = leak(bone | implant | native)
    without = leak(bone | native)
    return {"closed": with_implant == 0, "leak_voxels": with_implant,
            "leak_voxels_without_implant": without}
