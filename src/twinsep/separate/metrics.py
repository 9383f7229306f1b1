"""Measure a cut given as an owner map: areas per tissue, risk, crossing vessels.

A cut face is a face between a voxel of twin A and a 6-neighbour of twin B. Each face
gives half its area to the tissue on each side, so the per-tissue areas add up to the
face-counted total area. Face counting overestimates oblique surfaces (a staircase; up
to sqrt(3) for a surface at 45 degrees to all three axes), so the reported
``cut_area_cm2`` is scaled by ``mesh area / face area`` where the mesh is the
marching-cubes surface of the owner boundary inside the head (:mod:`.mesh`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume
from twinsep.labels import Tissue
from twinsep.separate.risk import TISSUE_KEYS

_A, _B = 1, 2


def face_masks(owner: np.ndarray):
    """Yield ``(axis, lo_slices, hi_slices, mask)`` per axis: ``mask`` marks the A|B faces
    between ``owner[lo_slices]`` and ``owner[hi_slices]`` (6-neighbours along ``axis``)."""
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax] = slice(None, -1)
        hi[ax] = slice(1, None)
        a, b = owner[tuple(lo)], owner[tuple(hi)]
        yield ax, tuple(lo), tuple(hi), ((a == _A) & (b == _B)) | ((a == _B) & (b == _A))


def cut_faces(owner: np.ndarray):
    """Yield ``(axis, lo_index_tuple, hi_index_tuple)`` arrays of the A|B faces."""
    for ax, _, _, m in face_masks(owner):
        lo_idx = np.nonzero(m)
        hi_idx = list(lo_idx)
        hi_idx[ax] = lo_idx[ax] + 1
        yield ax, lo_idx, tuple(hi_idx)


def face_measures(
    owner: np.ndarray,
    tissues: np.ndarray,
    cost: np.ndarray,
    spacing_kji: tuple[float, float, float],
) -> dict:
    """Face-counted area (mm2) per tissue, total area and risk of the A|B faces."""
    area = {name: 0.0 for name in TISSUE_KEYS.values()}
    total = 0.0
    risk = 0.0
    for ax, lo, hi in cut_faces(owner):
        fa = float(np.prod([spacing_kji[b] for b in range(3) if b != ax]))
        n = lo[0].size
        if n == 0:
            continue
        total += fa * n
        risk += fa * 0.5 * float(
            cost[lo].astype(np.float64).sum() + cost[hi].astype(np.float64).sum()
        )
        for side in (lo, hi):
            counts = np.bincount(tissues[side], minlength=8)
            for code, name in TISSUE_KEYS.items():
                area[name] += 0.5 * fa * float(counts[code])
    return {"area_mm2": area, "total_mm2": total, "risk": risk}


def vessel_components(tissues: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected vessel components (26-connectivity), numbered in raster order."""
    lab, n = ndi.label(tissues == Tissue.VESSEL, structure=np.ones((3, 3, 3), bool))
    return lab, int(n)


def vessels_of_both(lab: np.ndarray, n: int, owner: np.ndarray,
                    counts: tuple[np.ndarray, np.ndarray] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (1..n) of the vessel components with voxels of both twins, and the voxels of
    A and of B per component (``counts`` when given, else counted on ``owner``)."""
    if counts is None:
        va = np.bincount(lab[owner == _A], minlength=n + 1)
        vb = np.bincount(lab[owner == _B], minlength=n + 1)
    else:
        va, vb = counts
    both = np.flatnonzero((va > 0) & (vb > 0))
    return both[both > 0], va, vb


def crossings(
    owner: np.ndarray,
    tissues: np.ndarray,
    xsec: np.ndarray | None,
    volume: Volume,
    vessel_labels: tuple[np.ndarray, int] | None = None,
    *,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
    window: tuple[slice, ...] | None = None,
) -> list[dict]:
    """Every place where the cut divides a vessel.

    A vessel component (26-connected vessel voxels) is crossed when it holds voxels of
    both twins; each cluster of its cut faces (26-connected, a 1-voxel gap allowed) is
    one crossing. Cross-section (mm2): the vessel's cross-section perpendicular to its own
    axis through the centroid of the cut faces
    (:func:`~twinsep.separate.vessels.perpendicular_section`); equivalent diameter
    ``2 sqrt(A / pi)``; ``cut_face_area_mm2`` the face-counted area of the cut inside the
    vessel; position = centroid of the cut faces (world mm); ``kept_by`` = the twin with
    the larger part (volume) of the vessel component.

    Parameters
    ----------
    owner, tissues : ndarray
        Owner map and tissue codes (the whole volume, or a box of it).
    xsec : ndarray or None
        Local vessel calibre (mm2, :func:`~twinsep.separate.vessels.local_calibre`) on
        the same grid: the rough radius for the measurement (2 voxels when None).
    volume : Volume
        Geometry of the arrays (a box has its own origin).
    vessel_labels : (ndarray, int), optional
        Vessel components on the same grid and their number.
    counts : (ndarray, ndarray), optional
        Voxels of twin A and of twin B per component over the whole volume, when the
        arrays are a box (default: counted on the arrays).
    window : tuple of slices, optional
        The part of the arrays holding every cut face (default: all of them).
    """
    from twinsep.separate.vessels import perpendicular_section

    lab, n = vessel_labels if vessel_labels is not None else vessel_components(tissues)
    if n == 0:
        return []
    sk = volume.spacing_kji
    vox_ml = volume.voxel_volume_ml
    crossed, va, vb = vessels_of_both(lab, n, owner, counts)
    if crossed.size == 0:
        return []
    # faces between two voxels of the same crossed component
    cen_list, comp_list, r_list, a_list = [], [], [], []
    is_crossed = np.zeros(n + 1, dtype=bool)
    is_crossed[crossed] = True
    win = window if window is not None else tuple(slice(0, n) for n in owner.shape)
    offs0 = [w.start for w in win]
    for ax, lo_w, hi_w in cut_faces(owner[win]):
        lo = tuple(x + o for x, o in zip(lo_w, offs0, strict=True))
        hi = tuple(x + o for x, o in zip(hi_w, offs0, strict=True))
        la, lb = lab[lo], lab[hi]
        m = (la == lb) & is_crossed[la]
        if not m.any():
            continue
        lo_m = tuple(x[m] for x in lo)
        hi_m = tuple(x[m] for x in hi)
        centre = np.stack(lo_m, axis=1).astype(float)
        centre[:, ax] += 0.5
        cen_list.append(centre)
        comp_list.append(la[m])
        if xsec is not None:
            r_list.append(np.maximum(xsec[lo_m], xsec[hi_m]))
        else:
            r_list.append(np.full(int(m.sum()), math.pi * (2.0 * max(sk)) ** 2))
        fa = float(np.prod([sk[b] for b in range(3) if b != ax]))
        a_list.append(np.full(int(m.sum()), fa))
    if not cen_list:
        return []
    centres = np.concatenate(cen_list)
    comps = np.concatenate(comp_list)
    xs = np.concatenate(r_list)
    fareas = np.concatenate(a_list)
    # cluster the faces: rasterise their lower voxels, dilate by one, label
    lo_vox = np.floor(centres).astype(int)
    mark = np.zeros(owner.shape, dtype=bool)
    mark[tuple(lo_vox.T)] = True
    bb = [slice(max(int(v.min()) - 2, 0), int(v.max()) + 3) for v in lo_vox.T]
    sub = ndi.binary_dilation(mark[tuple(bb)], structure=np.ones((3, 3, 3), bool))
    clab, _ = ndi.label(sub, structure=np.ones((3, 3, 3), bool))
    offs = np.array([s.start for s in bb])
    fclu = clab[tuple((lo_vox - offs).T)]
    out = []
    keys = sorted(set(zip(comps.tolist(), fclu.tolist(), strict=True)))
    s_arr = np.asarray(sk, dtype=float)
    for comp, clu in keys:
        m = (comps == comp) & (fclu == clu)
        p = centres[m].mean(axis=0)
        r_hint = math.sqrt(float(xs[m].max()) / math.pi)
        # the component's voxels on a box around the point, for the measurement
        reach = (3.0 * max(r_hint, float(s_arr.max())) + 3.0 * float(s_arr.max())) / s_arr
        lo_b = np.maximum(np.floor(p - reach).astype(int), 0)
        hi_b = np.minimum(np.ceil(p + reach).astype(int) + 1, owner.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo_b, hi_b, strict=True))
        a, _ = perpendicular_section(lab[box] == comp, sk, p - lo_b, r_hint)
        pos = volume.index_to_world(p)
        out.append({
            "vessel_id": int(comp),
            "cross_section_mm2": a,
            "equivalent_diameter_mm": 2.0 * math.sqrt(a / math.pi),
            "cut_face_area_mm2": float(fareas[m].sum()),
            "world_mm": [float(v) for v in pos],
            "volume_a_ml": float(va[comp]) * vox_ml,
            "volume_b_ml": float(vb[comp]) * vox_ml,
            "kept_by": "A" if va[comp] >= vb[comp] else "B",
        })
    out.sort(key=lambda d: (d["vessel_id"], d["world_mm"]))
    for i, d in enumerate(out, start=1):
        d["id"] = i
    return out
