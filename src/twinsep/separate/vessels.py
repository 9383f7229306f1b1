"""Vessel geometry for the cut: local calibre, distance to the interface, cross-sections.

* :func:`local_calibre` - the local radius of every vessel voxel (the largest
  distance-to-wall within one radius), used by the risk model's cross-section factor;
* :func:`interface_distance` - distance (mm) of voxels to the identity interface, used by
  the risk model's division-site factor;
* :func:`perpendicular_section` - the cross-section (mm2) of a vessel perpendicular to its
  own axis through a point, measured where the cut divides it.

All work on the sparse vessel voxels (k-d trees) or on small boxes, never on the whole
volume, so that a 0.5 mm scan costs about as much as a 2 mm one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

_OFFS6 = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])


def _distance_to_wall(vessel: np.ndarray, spacing_kji) -> tuple[np.ndarray, np.ndarray]:
    """Vessel voxel indices ``(n, 3)`` and their distance (mm) to the nearest non-vessel
    voxel centre: the Euclidean distance transform, computed from the wall only.

    The nearest non-vessel voxel of a vessel voxel always has a 6-neighbour in the vessel
    (one step towards the vessel voxel is closer), so searching the non-vessel voxels
    6-adjacent to the vessel is exact.
    """
    from scipy.spatial import cKDTree

    vox = np.argwhere(vessel)
    if vox.size == 0:
        return vox, np.zeros(0, dtype=np.float32)
    shape = np.asarray(vessel.shape)
    nb = (vox[:, None, :] + _OFFS6[None]).reshape(-1, 3)
    inside = ((nb >= 0) & (nb < shape)).all(axis=1)
    wall_in = nb[inside]
    wall_in = wall_in[~vessel[tuple(wall_in.T)]]
    wall = np.concatenate([wall_in, nb[~inside]])  # outside the array counts as wall
    wall = np.unique(wall, axis=0)
    s = np.asarray(spacing_kji, dtype=float)
    d, _ = cKDTree(wall * s).query(vox * s)
    return vox, d.astype(np.float32)


def local_calibre(
    vessel: np.ndarray, spacing_kji: tuple[float, float, float]
) -> tuple[tuple[slice, ...] | None, np.ndarray]:
    """Local cross-section (mm2) of the vessels on their bounding box.

    The local radius of a vessel voxel is the largest distance-to-wall (Euclidean distance
    transform of the vessel mask, minus half a voxel) within one largest radius of it
    (a box window), so every voxel of a tube gets the radius of its centre line; the
    cross-section is ``pi r^2``. It is a cheap proxy of the vessel's calibre for the risk
    model; the cross-section reported at a crossing is measured by
    :func:`perpendicular_section`.

    Returns
    -------
    box : tuple of slices or None
        Bounding box of the vessels (None when there is none).
    xsec : ndarray float32
        Cross-section on the box (0 off the vessels).
    """
    from twinsep.image import bounding_box

    box = bounding_box(vessel, 1)
    if box is None:
        return None, np.zeros((0, 0, 0), dtype=np.float32)
    v = vessel[box]
    vox, d = _distance_to_wall(v, spacing_kji)
    edt = np.zeros(v.shape, dtype=np.float32)
    edt[tuple(vox.T)] = d
    s = np.asarray(spacing_kji, dtype=float)
    half = float(s.mean()) / 2.0
    rmax = float(d.max())
    size = tuple(int(2 * math.ceil(rmax / si) + 1) for si in s)
    local = ndi.maximum_filter(edt, size=size, mode="constant")
    r = np.maximum(local - half, half)
    return box, np.where(v, np.float32(np.pi) * r * r, np.float32(0)).astype(np.float32)


def interface_distance(
    points_kji: np.ndarray, interface: np.ndarray, spacing_kji: tuple[float, float, float]
) -> np.ndarray:
    """Distance (mm) of voxel indices ``(n, 3)`` to the nearest voxel of ``interface``
    (inf when the interface is empty)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(points_kji)
    if pts.size == 0:
        return np.zeros(0, dtype=np.float32)
    iv = np.argwhere(interface)
    if iv.size == 0:
        return np.full(len(pts), np.inf, dtype=np.float32)
    s = np.asarray(spacing_kji, dtype=float)
    d, _ = cKDTree(iv * s).query(pts * s)
    return d.astype(np.float32)


def _hemisphere(n: int) -> np.ndarray:
    """``n`` about evenly spread unit vectors on a hemisphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = i / n
    phi = np.pi * (1.0 + math.sqrt(5.0)) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


_DIRS = _hemisphere(800)


def _slab_areas(x: np.ndarray, dirs: np.ndarray, h: float, rin: float, vox: float) -> np.ndarray:
    """Area (mm2) of the points ``x`` (mm, relative to the point) in the plane normal to
    each direction: a tent of half-width ``h`` across the plane integrates to one, so the
    weighted voxel volume divided by nothing else is the area; limited to ``rin`` in the
    plane."""
    t = x @ dirs.T
    inplane = (x * x).sum(axis=1)[:, None] - t * t
    w = np.clip(1.0 - np.abs(t) / h, 0.0, None) * (inplane <= rin * rin)
    return w.sum(axis=0) * (vox / h)


def _refine(axis: np.ndarray, dirs: np.ndarray, area: np.ndarray, cone_deg: float = 30.0):
    """Minimum of a quadric fitted to ``area`` over the directions within ``cone_deg`` of
    ``axis`` (the area of an oblique section grows as ``1 / cos``): a sub-grid axis."""
    c = dirs @ axis
    sgn = np.where(c < 0, -1.0, 1.0)
    near = np.abs(c) >= math.cos(math.radians(cone_deg))
    dd = dirs[near] * sgn[near, None]
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis, ref)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    u, v = dd @ e1, dd @ e2
    a = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    coef, *_ = np.linalg.lstsq(a, area[near], rcond=None)
    hess = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
    if np.linalg.eigvalsh(hess).min() <= 0:
        return axis
    uv = -np.linalg.solve(hess, coef[1:3])
    if math.hypot(*uv) > math.sin(math.radians(cone_deg)):
        return axis
    n = axis + uv[0] * e1 + uv[1] * e2
    return n / np.linalg.norm(n)


def perpendicular_section(
    vessel: np.ndarray,
    spacing_kji: tuple[float, float, float],
    point_kji: np.ndarray,
    radius_mm: float,
) -> tuple[float, np.ndarray]:
    """Cross-section (mm2) of a vessel perpendicular to its axis through a point.

    The axis is the direction whose plane through the point cuts the least vessel (a
    tube's oblique sections are larger by ``1 / cos``): the area is evaluated for 800
    directions on a slab two voxels thick, refined by a quadric fit around the smallest,
    and measured again on a slab 2.5 voxels thick along the refined axis. Only vessel
    voxels within ``1.5 radius_mm + 1 voxel`` of the axis count, so a neighbouring vessel
    or a junction a little farther away does not. On straight digital tubes the error
    is a few % at 2 voxels per radius and below 2 % at 4.

    Parameters
    ----------
    vessel : ndarray bool
        Mask of the vessel (one component).
    spacing_kji : (3,) float
        Voxel spacing (mm) in array order.
    point_kji : (3,) float
        The point (fractional voxel indices).
    radius_mm : float
        Rough radius of the vessel (mm), for the in-plane reach.

    Returns
    -------
    area_mm2 : float
    axis_kji : ndarray (3,)
        Unit axis in array-index order, scaled to mm (``k, j, i`` components).
    """
    s = np.asarray(spacing_kji, dtype=float)
    step = float(s.max())
    rin = 1.5 * max(radius_mm, step) + step
    h_search, h_final = 2.0 * step, 2.5 * step
    reach = math.hypot(rin, h_final)
    pm = np.asarray(point_kji, dtype=float) * s
    lo = np.maximum(np.floor((pm - reach) / s).astype(int), 0)
    hi = np.minimum(np.ceil((pm + reach) / s).astype(int) + 1, vessel.shape)
    sub = vessel[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    x = (np.argwhere(sub) + lo) * s - pm
    x = x[(x * x).sum(axis=1) <= reach * reach]
    vox = float(np.prod(s))
    if len(x) == 0:
        return 0.0, np.array([1.0, 0.0, 0.0])
    area = _slab_areas(x, _DIRS, h_search, rin, vox)
    axis = _refine(_DIRS[int(np.argmin(area))], _DIRS, area)
    a = float(_slab_areas(x, axis[None], h_final, rin, vox)[0])
    return a, axis
