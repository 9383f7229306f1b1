"""Shared anatomy of a craniopagus pair: shared vessels, brain contact, junction, volumes.

Everything is measured in world millimetres on the scan's own grid, so anisotropic and
oblique (non axis-aligned) voxels are handled: voxel edges are the columns of
``direction * spacing`` and every distance transform receives ``sampling=spacing_kji``.

Methods (what :func:`measure_shared` does)
------------------------------------------
Owner map
    Owner codes 1 (A) and 2 (B) are used as given inside the head (``tissues > 0``);
    head voxels with owner 0 or 3 (the phantom's *ambiguous* band) are given to the nearest
    twin (Euclidean distance in mm). Outside the head the owner is 0.
Junction surface (computed once, used for the areas and the vessel crossings)
    The surface equidistant from A and B voxels: zero level of the difference of their
    distance maps (EDT in mm), marching cubes in a box around the places where A and B
    voxels meet, vertices mapped to world mm. That surface is a staircase that follows the
    voxel faces: its raw area overstates a smooth interface by 6-10 % depending on how it
    lies on the grid. Each triangle's area is therefore *projected* on the local normal of
    the interface, the gradient of the same distance difference smoothed by a Gaussian of
    :data:`NORMAL_SIGMA_VOXELS` voxel: ``area = sum(a_i (n_i . N_i))``. For a staircase
    over a smooth surface this is the area of the smooth surface (the steps' risers
    project to nothing); folds cancel. Waviness on scales of a few voxels and more is
    kept (the normal follows it).
Shared vessels
    Connected components (26-connectivity, i.e. face, edge or corner neighbours) of the
    vessel label (``Tissue.VESSEL``), pieces one missing voxel apart joined (a thin sinus
    breaks up at 2-3 mm). A component is *shared* when it contains voxels of both
    twins and its minor twin holds at least :data:`MIN_MINOR_SHARE` of its volume **and** at
    least :data:`MIN_MINOR_VOLUME_MM3` mm^3 (so that a few vessel voxels mis-assigned by the
    identity stage do not create a shared vessel). Per structure: volume (ml), centreline
    length (a path through the vessel's middle between its two geodesically farthest
    voxels, in world mm; see ``_centreline``), smallest and largest diameter (2 x the
    equivalent-circle diameter of the local cross-section along the centreline, away from
    its rounded ends; see ``_diameters``), the share of its volume in each twin, and each
    place where it crosses the owner interface with the area of the vessel's cut there
    (the junction surface's triangles whose centres lie in the vessel, projected area).
Brain contact area and minimum distance
    The part of the junction surface where both brains reach it. Whether a twin's brain
    is present at a surface point is read from that twin's voxels (nearest voxel of the
    twin) at depths of 0.5 and 1.5 voxel (spacing along the normal) on its side; the
    contact area measured with each of the two layers is extrapolated linearly to depth 0
    (``1.5 A(0.5) - 0.5 A(1.5)``). Testing at the first layer alone overstates the area by
    ~20 % at 2 mm (brain surfaces meet the junction at shallow angles, so the contact rim
    moves out by several mm per mm of depth). Given the scan, the triangles where a thin
    CSF sheet shows across the junction are left out (:func:`sheet_between_brains`: labels
    segmented from a blurred CT read sheets under ~2.5 mm as brain).
    Minimum distance: the smallest gap between A-brain and B-brain voxels (centre distance
    less the voxel extent along the joining line), 0 when they touch (26-neighbours).
Junction area
    The projected area of the junction surface inside the head (``tissues > 0``, smoothed,
    sampled at triangle centres); its area-weighted centre is the junction centre.
Tissue volumes
    Voxel counts x voxel volume per twin and tissue (ml).

Accuracy on the phantoms (truth owner map, 2 mm; ``tests/identify/test_shared.py``):
junction area within +-2 % of the analytic truth (the staircase area was +6 to +10 %);
brain contact area within -12 to -2 % of ``truth.json``, whose value is itself 6-10 % above the
converged analytic area (it interpolates the brain probability on a 1.5 mm grid); against
the converged area within +-4 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import Volume, bounding_box, crop
from twinsep.labels import TISSUE_NAMES, Owner, Tissue, resolve_owner
from twinsep.mesh import iso_surface

#: A vessel component is shared only if its minor twin holds at least this share of it.
MIN_MINOR_SHARE = 0.02
#: ... and at least this volume (mm^3) of it.
MIN_MINOR_VOLUME_MM3 = 30.0
#: Smoothing (Gaussian sigma, voxels) of the distance difference whose gradient gives the
#: junction surface's normal for the projected area.
NORMAL_SIGMA_VOXELS = 1.0
#: The sheet test of the brain contact (:func:`sheet_between_brains`): smoothing (mm),
#: half widths of the window for the dip's centre and its sides (mm), sampling step (mm),
#: the least dip (image units, HU) and the quantile of the along-junction dips to exceed.
DIP_SMOOTH_MM = 0.7
DIP_CENTRE_MM = 2.0
DIP_SIDE_MM = 4.0
DIP_STEP_MM = 0.25
DIP_MIN = 6.0
DIP_QUANTILE = 0.95
#: Depths (voxels along the normal) at which each twin's brain is looked up for the brain
#: contact area; the two areas are extrapolated linearly to depth 0.
CONTACT_DEPTHS_VOXELS = (0.5, 1.5)
#: Margin (voxels) of the junction box around the places where A and B voxels meet.
JUNCTION_MARGIN_VOXELS = 8
#: Join vessel pieces separated by a one-voxel gap (see :func:`shared_vessels`).
BRIDGE_GAPS = True
#: Connectivity used for vessel components (26 = face, edge and corner neighbours).
VESSEL_CONNECTIVITY = 26


# --- result models -----------------------------------------------------------------------
class VesselCrossing(BaseModel):
    """One place where a shared vessel crosses the A/B owner interface."""

    point_mm: list[float] = Field(description="centre of the crossing, world mm (LPS)")
    cross_section_mm2: float = Field(description="area of the vessel's cut by the interface, mm^2")


class SharedVessel(BaseModel):
    """A vessel structure that runs from one twin into the other."""

    id: int
    volume_ml: float
    length_mm: float
    min_diameter_mm: float
    max_diameter_mm: float
    share_a: float
    share_b: float
    dominant: str = Field(description="twin holding most of the vessel's volume: 'A' or 'B'")
    crossings: list[VesselCrossing] = Field(default_factory=list)
    cross_section_mm2: float = Field(0.0, description="largest crossing cross-section, mm^2")


class SharedAnatomy(BaseModel):
    """Shared anatomy of the pair, ready for ``plan["shared"]`` via :meth:`to_plan`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vessels: list[SharedVessel] = Field(default_factory=list)
    brain_contact_area_cm2: float
    brain_min_distance_mm: float
    junction_area_cm2: float
    tissue_volumes_ml: dict[str, dict[str, float]]
    junction_centre_mm: list[float] | None = None
    method: dict[str, str] = Field(default_factory=dict)
    #: Boolean mask (array order ``[k, j, i]``) of all shared vessel voxels; not in plan.json.
    shared_vessel_mask: np.ndarray | None = Field(default=None, exclude=True, repr=False)
    #: Resolved owner map 0/1/2 (array order); not in plan.json.
    owner_resolved: np.ndarray | None = Field(default=None, exclude=True, repr=False)

    def to_plan(self) -> dict[str, Any]:
        """Plain JSON-ready dict for ``plan["shared"]`` (``vessels`` empty when none)."""
        return self.model_dump(mode="json", exclude={"shared_vessel_mask", "owner_resolved"})

    def vessel_mask(self) -> np.ndarray | None:
        """Boolean mask of shared vessel voxels (array order), or None if not kept."""
        return self.shared_vessel_mask


# --- helpers -----------------------------------------------------------------------------
def _check(tissues: Volume, owner: Volume) -> None:
    if tissues.shape != owner.shape:
        raise InputError(f"tissue map {tissues.shape} and owner map {owner.shape} differ in shape")
    if not tissues.same_grid(owner, tol_mm=1e-2):
        raise InputError("tissue map and owner map are not on the same grid")


def _edge_vectors(vol: Volume) -> np.ndarray:
    """World vectors (mm) of one voxel step along array axes 0, 1, 2 (k, j, i); rows."""
    m = vol.direction_matrix * np.asarray(vol.spacing)[None, :]  # columns i, j, k
    return np.stack([m[:, 2], m[:, 1], m[:, 0]])


def _dilate26(mask: np.ndarray) -> np.ndarray:
    """Binary dilation by the full 3x3x3 cube (26-neighbours), separable."""
    return ndi.maximum_filter(mask.view(np.uint8), size=3, mode="constant", cval=0) > 0


def _wall_distance(comp: np.ndarray, vol: Volume) -> np.ndarray:
    """Distance (mm) from each voxel of ``comp`` to the nearest voxel outside it.

    Same as ``distance_transform_edt(comp, sampling)`` on the voxels of ``comp`` (the
    nearest outside voxel always touches ``comp``), with a k-d tree over those touching
    voxels instead of a transform of the whole box. Zero outside ``comp``; voxels on the
    box edge count the outside of the box as outside.
    """
    from scipy.spatial import cKDTree

    padded = np.pad(comp, 1)
    wall = np.argwhere(_dilate26(padded) & ~padded) - 1
    inside = np.argwhere(comp)
    out = np.zeros(comp.shape)
    if len(inside) == 0 or len(wall) == 0:
        return out
    d, _ = cKDTree(vol.index_to_world(wall)).query(vol.index_to_world(inside))
    out[tuple(inside.T)] = d
    return out


@dataclass
class JunctionSurface:
    """The A/B junction surface (see the module docstring): per-triangle arrays.

    ``kji`` are fractional indices of the triangle centres on the full grid, ``mm`` the
    same in world mm; ``area`` the projected areas (mm^2, see the module docstring),
    ``in_head`` whether the centre lies inside the head and ``contact`` the weight of the
    triangle in the brain contact area (extrapolated, see :func:`brain_contact`).
    """

    kji: np.ndarray
    mm: np.ndarray
    area: np.ndarray
    in_head: np.ndarray
    contact: np.ndarray
    normal: np.ndarray  # unit, world, from A towards B

    @classmethod
    def empty(cls) -> JunctionSurface:
        z3 = np.zeros((0, 3))
        return cls(z3, z3, np.zeros(0), np.zeros(0, bool), np.zeros(0), z3)


def _meeting_box(a: np.ndarray, b: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Bounding box (with ``margin`` voxels) of the voxels where A and B are face neighbours."""
    lo = np.array(a.shape)
    hi = np.full(3, -1)
    for ax in range(3):
        head = [slice(None)] * 3
        tail = [slice(None)] * 3
        head[ax], tail[ax] = slice(1, None), slice(None, -1)
        meet = (a[tuple(head)] & b[tuple(tail)]) | (b[tuple(head)] & a[tuple(tail)])
        box = bounding_box(meet)
        if box is None:
            continue
        for d in range(3):
            lo[d] = min(lo[d], box[d].start)
            hi[d] = max(hi[d], box[d].stop - 1 + (1 if d == ax else 0))
    if (hi < 0).any():
        return None
    return tuple(slice(max(int(lo[d]) - margin, 0), min(int(hi[d]) + margin + 1, a.shape[d]))
                 for d in range(3))


def junction_surface(tissues: Volume, own: np.ndarray) -> JunctionSurface:
    """The surface equidistant from A and B voxels, with projected triangle areas.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (geometry, head and brain labels).
    own : ndarray
        Resolved owner codes 0/1/2 (see :func:`twinsep.labels.resolve_owner`).
    """
    a_all, b_all = own == Owner.A, own == Owner.B
    box = _meeting_box(a_all, b_all, JUNCTION_MARGIN_VOXELS)
    if box is None:
        return JunctionSurface.empty()
    a, b = a_all[box], b_all[box]
    sampling = tissues.spacing_kji
    dist_a, ia = ndi.distance_transform_edt(~a, sampling=sampling, return_indices=True)
    dist_b, ib = ndi.distance_transform_edt(~b, sampling=sampling, return_indices=True)
    field = (dist_b - dist_a).astype(np.float32)  # > 0 in A, < 0 in B
    del dist_a, dist_b
    if field.min() >= 0 or field.max() <= 0 or min(field.shape) < 2:
        return JunctionSurface.empty()
    verts, faces = iso_surface(field, 0.0)
    edges = _edge_vectors(tissues)  # rows: world step (mm) of k, j, i
    start = np.array([sl.start for sl in box], float)
    tri = (verts[faces] + start) @ edges + tissues.index_to_world(np.zeros(3))
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ckji = verts[faces].mean(axis=1)  # box indices
    # smoothed normal, A -> B (the field decreases towards B)
    smooth = ndi.gaussian_filter(field, NORMAL_SIGMA_VOXELS)
    grad = np.empty((len(ckji), 3))
    for ax in range(3):
        step = np.zeros(3)
        step[ax] = 0.5
        grad[:, ax] = (_sample(smooth, ckji + step) - _sample(smooth, ckji - step))
    del smooth
    normal = -np.linalg.solve(edges, grad.T).T  # world gradient of the field, negated
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    dot = np.einsum("ij,ij->i", cross, normal) * 0.5
    proj = dot if dot.sum() >= 0 else -dot  # marching cubes' winding is global
    t = np.asarray(tissues.array)[box]
    head = ndi.gaussian_filter((t > 0).astype(np.float32), 0.7)
    in_head = _sample(head, ckji) >= 0.5
    del head
    # brain contact: is each twin's brain present at depth d (voxels along the normal)?
    brain = t == Tissue.BRAIN
    near_a = brain[tuple(ia)].astype(np.float32)  # 1 where the nearest A voxel is brain
    near_b = brain[tuple(ib)].astype(np.float32)
    del ia, ib
    unit = edges / np.linalg.norm(edges, axis=1, keepdims=True)
    h_n = np.sqrt(((normal @ unit.T) ** 2 * np.square(sampling)[None, :]).sum(1))
    to_index = np.linalg.inv(edges)  # world offset (mm) -> index offset
    d1, d2 = CONTACT_DEPTHS_VOXELS
    both = []
    for d in (d1, d2):
        off = (normal * (d * h_n)[:, None]) @ to_index
        pa = _sample(near_a, ckji - off, order=0) > 0.5
        pb = _sample(near_b, ckji + off, order=0) > 0.5
        both.append((pa & pb & in_head).astype(float))
    contact = (d2 * both[0] - d1 * both[1]) / (d2 - d1)
    return JunctionSurface(ckji + start, tri.mean(axis=1), proj, in_head, contact, normal)


def _sample(array: np.ndarray, kji: np.ndarray, order: int = 1) -> np.ndarray:
    if len(kji) == 0:
        return np.zeros(0)
    arr = array if array.dtype == np.float32 else array.astype(np.float32)
    return ndi.map_coordinates(arr, kji.T, order=order, mode="nearest")


# --- vessels -----------------------------------------------------------------------------
def _voxel_graph(mask: np.ndarray, vol: Volume, weight: np.ndarray | None = None):
    """Sparse 26-neighbour graph of the voxels of ``mask``; edge weights in world mm.

    With ``weight`` (per voxel), each edge length is multiplied by the mean weight of its
    two ends.
    """
    from scipy.sparse import coo_matrix

    pts = np.argwhere(mask)
    lut = -np.ones(mask.shape, dtype=np.int64)
    lut[tuple(pts.T)] = np.arange(len(pts))
    e = _edge_vectors(vol)
    rows, cols, w = [], [], []
    for step in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(
        3, -1
    ).T:
        if tuple(step) <= (0, 0, 0):
            continue
        nb = pts + step
        ok = np.all((nb >= 0) & (nb < np.array(mask.shape)), axis=1)
        src = np.nonzero(ok)[0]
        dst = lut[tuple(nb[ok].T)]
        keep = dst >= 0
        src, dst = src[keep], dst[keep]
        length = np.full(len(src), float(np.linalg.norm(step @ e)))
        if weight is not None:
            length = length * 0.5 * (weight[src] + weight[dst])
        rows.append(src)
        cols.append(dst)
        w.append(length)
    n = len(pts)
    r_, c_, w_ = (np.concatenate(x) if x else np.zeros(0) for x in (rows, cols, w))
    graph = coo_matrix((w_, (r_.astype(int), c_.astype(int))), shape=(n, n)).tocsr()
    return pts, graph


def _centreline(comp: np.ndarray, vol: Volume, edt: np.ndarray) -> tuple[float, np.ndarray]:
    """Centreline of a vessel component and its length.

    The two ends are the geodesically farthest voxels of the component (two Dijkstra
    passes in world mm); the centreline is the path between them that minimises
    ``sum(step_mm / r^2)`` (``r``: distance to the wall), so it keeps to the middle of the
    vessel; its length is measured on the path smoothed over 5 voxels, in world mm.

    Returns
    -------
    length_mm : float
    path_idx : (m, 3) array indices of the path voxels, in order
    """
    from scipy.sparse.csgraph import connected_components, dijkstra

    pts, graph = _voxel_graph(comp, vol)
    if len(pts) == 1:
        return float(2.0 * edt[tuple(pts[0])]), pts
    _, lab = connected_components(graph, directed=False)
    nodes = np.nonzero(lab == np.bincount(lab).argmax())[0]
    d0 = dijkstra(graph, directed=False, indices=int(nodes[0]))
    a = int(nodes[np.argmax(d0[nodes])])
    da = dijkstra(graph, directed=False, indices=a)
    b = int(nodes[np.argmax(da[nodes])])
    r = edt[tuple(pts.T)]
    _, wgraph = _voxel_graph(comp, vol, weight=1.0 / np.maximum(r, 1e-3) ** 2)
    _, pred = dijkstra(wgraph, directed=False, indices=a, return_predecessors=True)
    path = [b]
    while path[-1] != a and pred[path[-1]] >= 0:
        path.append(int(pred[path[-1]]))
    idx = pts[np.array(path[::-1])]
    world = vol.index_to_world(idx)
    if len(world) >= 5:
        kernel = np.ones(5) / 5.0
        inner = np.stack([np.convolve(world[:, c], kernel, mode="valid") for c in range(3)], 1)
        world = np.vstack([world[:1], inner, world[-1:]])
    return float(np.linalg.norm(np.diff(world, axis=0), axis=1).sum()), idx


def _diameters(
    comp: np.ndarray, vol: Volume, path: np.ndarray, length_mm: float
) -> tuple[float, float]:
    """Smallest and largest equivalent diameter (mm) along a vessel's centreline.

    Each vessel voxel is given to its nearest centreline voxel (world mm); the local
    cross-section at a centreline point is the vessel volume given to the centreline within
    a window of ``w`` mm around it divided by ``w``; the diameter is that of a circle of the
    same area. ``w`` = max(4 x mean radius, 3 voxels). Points within ``w / 2`` of either end
    are left out (the rounded ends). Voxel-count based, so it is unbiased at coarse
    resolution where distance-to-wall estimates are off by up to a voxel.
    """
    vvox = vol.voxel_volume_mm3
    volume = comp.sum() * vvox
    if len(path) < 2 or length_mm <= 0:
        d = 2.0 * (3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0)
        return float(d), float(d)
    from scipy.spatial import cKDTree

    # each vessel voxel goes to its nearest centreline voxel (world mm)
    _, nearest = cKDTree(vol.index_to_world(path)).query(vol.index_to_world(np.argwhere(comp)))
    per_node = np.bincount(nearest, minlength=len(path)) * vvox
    world = vol.index_to_world(path)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(world, axis=0), axis=1))])
    r_mean = np.sqrt(volume / (np.pi * length_mm))
    w = max(4.0 * r_mean, 3.0 * max(vol.spacing))
    cum = np.concatenate([[0.0], np.cumsum(per_node)])
    lo = np.searchsorted(arc, arc - w / 2, side="left")
    hi = np.searchsorted(arc, arc + w / 2, side="right")
    span = np.minimum(arc + w / 2, arc[-1]) - np.maximum(arc - w / 2, 0.0)
    area = (cum[hi] - cum[lo]) / np.maximum(span, 1e-6)
    inner = (arc >= w / 2) & (arc <= arc[-1] - w / 2)
    if not inner.any():
        d = 2.0 * r_mean
        return float(d), float(d)
    diam = 2.0 * np.sqrt(area[inner] / np.pi)
    return float(diam.min()), float(diam.max())


def _crossings(comp: np.ndarray, box: tuple[slice, ...], surface: JunctionSurface
               ) -> list[VesselCrossing]:
    """Places where a vessel crosses the A/B interface, with the area of its cut there.

    The junction surface's triangles whose centres lie inside the vessel (nearest voxel)
    make up the cut (projected areas). Triangles are grouped into crossings by the
    26-connected pieces of the vessel voxels they fall in. ``comp`` is the vessel mask in
    ``box`` (full-grid slices).
    """
    if len(surface.area) == 0:
        return []
    start = np.array([sl.start for sl in box])
    vox = np.rint(surface.kji).astype(int) - start
    inside = np.all((vox >= 0) & (vox < np.array(comp.shape)), axis=1)
    sel = np.flatnonzero(inside)
    sel = sel[comp[tuple(vox[sel].T)]]
    if len(sel) == 0:
        return []
    vox = vox[sel]
    areas, cmm = surface.area[sel], surface.mm[sel]
    hit = np.zeros(comp.shape, dtype=bool)
    hit[tuple(vox.T)] = True
    lab, n = ndi.label(_dilate26(hit))
    ids = lab[tuple(vox.T)]
    out = []
    for c in range(1, n + 1):
        pick = ids == c
        if not pick.any():
            continue
        w = areas[pick]
        total = float(w.sum())
        wts = np.abs(w) if total == 0 else w
        centre = (cmm[pick] * wts[:, None]).sum(0) / max(float(wts.sum()), 1e-12)
        out.append(
            VesselCrossing(
                point_mm=[float(v) for v in centre], cross_section_mm2=max(total, 0.0)
            )
        )
    out.sort(key=lambda x: (-x.cross_section_mm2, x.point_mm))
    return out


def shared_vessels(
    tissues: Volume, own: np.ndarray, surface: JunctionSurface | None = None
) -> tuple[list[SharedVessel], np.ndarray]:
    """Vessel structures that run from one twin into the other.

    Parameters
    ----------
    tissues : Volume
        Tissue codes.
    own : ndarray
        Resolved owner codes 0/1/2 on the same grid (see :func:`twinsep.labels.resolve_owner`).
    surface : JunctionSurface, optional
        From :func:`junction_surface` (computed here when not given and needed).

    Returns
    -------
    vessels : list of SharedVessel
        Ordered by volume, largest first; ids 1..n.
    mask : ndarray of bool
        All voxels of the shared structures.
    """
    vessel_all = np.asarray(tissues.array) == Tissue.VESSEL
    mask = np.zeros(vessel_all.shape, dtype=bool)
    if not vessel_all.any():
        return [], mask
    # everything below happens in the vessels' bounding box (2 voxels of margin)
    vbox = bounding_box(vessel_all, 2)
    vessel, own_v = vessel_all[vbox], own[vbox]
    del vessel_all
    structure = np.ones((3, 3, 3), bool) if VESSEL_CONNECTIVITY == 26 else None
    # pieces of one vessel broken by a single missing voxel (thin sinus at 2-3 mm) are
    # joined: components are those of the vessel mask dilated by one voxel, restricted
    # back to the vessel voxels
    bridged = _dilate26(vessel) if BRIDGE_GAPS else vessel
    lab, n = ndi.label(bridged, structure=structure)
    lab[~vessel] = 0
    vvox = tissues.voxel_volume_mm3
    n_a = np.bincount(lab[own_v == Owner.A], minlength=n + 1)
    n_b = np.bincount(lab[own_v == Owner.B], minlength=n + 1)
    found = []
    for c in range(1, n + 1):
        total = n_a[c] + n_b[c]
        minor = min(n_a[c], n_b[c])
        if total == 0 or minor == 0:
            continue
        if minor / total < MIN_MINOR_SHARE or minor * vvox < MIN_MINOR_VOLUME_MM3:
            continue
        found.append((int(total), c))
    found.sort(key=lambda x: (-x[0], x[1]))
    surf = surface
    if surf is None:
        surf = junction_surface(tissues, own) if found else JunctionSurface.empty()
    margin = int(np.ceil(2.0 * max(tissues.spacing) / min(tissues.spacing))) + 2
    result = []
    objects = ndi.find_objects(lab)
    vstart = [sl.start for sl in vbox]
    for rank, (total, c) in enumerate(found, start=1):
        box = tuple(
            slice(max(s.start + o - margin, 0), min(s.stop + o + margin, n_))
            for s, o, n_ in zip(objects[c - 1], vstart, own.shape, strict=True)
        )
        local = tuple(slice(bx.start - o, bx.stop - o) for bx, o in zip(box, vstart, strict=True))
        comp = np.zeros(tuple(bx.stop - bx.start for bx in box), bool)
        # the component box may reach past the vessel box: copy the overlap
        src = tuple(slice(max(sl.start, 0), min(sl.stop, m)) for sl, m in
                    zip(local, lab.shape, strict=True))
        dst = tuple(slice(s_.start - sl.start, s_.stop - sl.start) for s_, sl in
                    zip(src, local, strict=True))
        comp[dst] = lab[src] == c
        mask[box] |= comp
        sub = crop(tissues, box, comp)
        length, path = _centreline(comp, sub, _wall_distance(comp, sub))
        dmin, dmax = _diameters(comp, sub, path, length)
        crossings = _crossings(comp, box, surf)
        share_a = float(n_a[c] / total)
        result.append(
            SharedVessel(
                id=rank,
                volume_ml=total * vvox / 1000.0,
                length_mm=length,
                min_diameter_mm=dmin,
                max_diameter_mm=dmax,
                share_a=share_a,
                share_b=1.0 - share_a,
                dominant="A" if n_a[c] >= n_b[c] else "B",
                crossings=crossings,
                cross_section_mm2=max((x.cross_section_mm2 for x in crossings), default=0.0),
            )
        )
    return result, mask


# --- surfaces ----------------------------------------------------------------------------
def junction_area_cm2(tissues: Volume, own: np.ndarray, surface: JunctionSurface | None = None
                      ) -> tuple[float, list[float] | None]:
    """Area (cm^2) of the A/B interface inside the head, and its area-weighted centre (mm).

    The projected area of the junction surface (see the module docstring); ``surface``
    from :func:`junction_surface` is computed when not given.
    """
    surf = junction_surface(tissues, own) if surface is None else surface
    keep = surf.in_head
    if not keep.any():
        return 0.0, None
    w = surf.area[keep]
    total = float(w.sum())
    wts = np.clip(w, 0.0, None)
    if wts.sum() <= 0:
        return max(total, 0.0) / 100.0, None
    centre = (surf.mm[keep] * wts[:, None]).sum(0) / wts.sum()
    return max(total, 0.0) / 100.0, [float(v) for v in centre]


def _touching(ba: np.ndarray, bb: np.ndarray) -> bool:
    """True when some A-brain voxel and B-brain voxel are 26-neighbours."""
    box = bounding_box(bb, 1)
    grown = ndi.binary_dilation(ba[box], structure=np.ones((3, 3, 3), bool))
    return bool((grown & bb[box]).any())


def _min_gap(tissues: Volume, ba: np.ndarray, bb: np.ndarray) -> float:
    """Smallest gap (mm) between two voxel sets that do not touch.

    Centre distance of the closest pair of boundary voxels (world mm, k-d tree) less the
    voxel extent along the joining line (``d (1 - 1/c)``, ``c`` their Chebyshev distance
    in voxels).
    """
    from scipy.spatial import cKDTree

    def boundary(mask: np.ndarray) -> np.ndarray:
        box = bounding_box(mask, 1)
        m = mask[box]
        edge = m & ~ndi.binary_erosion(m, structure=np.ones((3, 3, 3), bool))
        return np.argwhere(edge) + np.array([sl.start for sl in box])

    pa, pb = boundary(ba), boundary(bb)
    dist, idx = cKDTree(tissues.index_to_world(pa)).query(tissues.index_to_world(pb))
    best = int(np.argmin(dist))
    cheb = float(np.abs(pa[idx[best]] - pb[best]).max())
    return float(dist[best] * (1.0 - 1.0 / cheb)) if cheb > 1 else 0.0


def _profile_dips(sm: np.ndarray, vol: Volume, points: np.ndarray, dirs: np.ndarray
                  ) -> np.ndarray:
    """Depth (image units) of the dip of ``sm`` at each point along its direction: the
    lowest value within ``DIP_CENTRE_MM`` of the point, below the lower of the highest
    values on either side of it (from 0.5 to ``DIP_SIDE_MM`` mm away)."""
    ts = np.arange(-DIP_CENTRE_MM - DIP_SIDE_MM, DIP_CENTRE_MM + DIP_SIDE_MM + 1e-9,
                   DIP_STEP_MM)
    pts = points[:, None, :] + ts[None, :, None] * dirs[:, None, :]
    kji = vol.world_to_index(pts.reshape(-1, 3))
    prof = ndi.map_coordinates(sm, kji.T, order=1, mode="nearest").reshape(len(points), -1)
    centre = np.flatnonzero(np.abs(ts) <= DIP_CENTRE_MM + 1e-9)
    i0 = centre[np.argmin(prof[:, centre], axis=1)]
    rows = np.arange(len(points))
    off = ts[None, :] - ts[i0][:, None]
    left = np.where((off <= -0.5) & (off >= -DIP_SIDE_MM), prof, -np.inf).max(axis=1)
    right = np.where((off >= 0.5) & (off <= DIP_SIDE_MM), prof, -np.inf).max(axis=1)
    return np.minimum(left, right) - prof[rows, i0]


def sheet_between_brains(surface: JunctionSurface, image: Volume) -> np.ndarray:
    """Contact triangles where the image shows a dark sheet along the junction (bool).

    A thin CSF sheet between two brains is lost by a tissue threshold once the scanner has
    blurred it, but it still dips the image *across* the junction. The image, smoothed by
    ``DIP_SMOOTH_MM``, is sampled along each contact triangle's normal and along two tangent
    directions; a triangle is a sheet when its dip across the junction is at least
    ``DIP_MIN`` and beyond the ``DIP_QUANTILE`` of the dips along the tangents at the same
    triangles (noise and texture of this very scan: so the threshold follows the noise).
    """
    sel = np.flatnonzero(surface.contact > 0)
    out = np.zeros(len(surface.area), bool)
    if len(sel) < 10:
        return out
    pts = surface.mm[sel]
    n = surface.normal[sel]
    # the smoothing only on the box the profiles reach
    reach = DIP_CENTRE_MM + DIP_SIDE_MM + 4 * DIP_SMOOTH_MM
    lo_w, hi_w = pts.min(0) - reach, pts.max(0) + reach
    corners = np.array([[x, y, z] for x in (lo_w[0], hi_w[0]) for y in (lo_w[1], hi_w[1])
                        for z in (lo_w[2], hi_w[2])])
    kji = image.world_to_index(corners)
    lo = np.clip(np.floor(kji.min(0)).astype(int), 0, None)
    hi = np.minimum(np.ceil(kji.max(0)).astype(int) + 1, image.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sub = crop(image, box, np.asarray(image.array[box], np.float32))
    sm = ndi.gaussian_filter(sub.array, [DIP_SMOOTH_MM / v for v in image.spacing_kji])
    axis = np.eye(3)[np.argmin(np.abs(n), axis=1)]
    t1 = np.cross(n, axis)
    t1 /= np.maximum(np.linalg.norm(t1, axis=1, keepdims=True), 1e-12)
    t2 = np.cross(n, t1)
    across = _profile_dips(sm, sub, pts, n)
    along = np.concatenate([_profile_dips(sm, sub, pts, t1), _profile_dips(sm, sub, pts, t2)])
    thr = max(DIP_MIN, float(np.quantile(along, DIP_QUANTILE)))
    out[sel] = across >= thr
    return out


def brain_contact(tissues: Volume, own: np.ndarray, surface: JunctionSurface | None = None,
                  image: Volume | None = None) -> tuple[float, float]:
    """Brain-to-brain contact area (cm^2) and minimum gap (mm, 0 when touching).

    The contact area is the part of the junction surface where both brains reach it
    (extrapolated from the first two voxel layers on each side, see the module docstring);
    ``surface`` from :func:`junction_surface` is computed when not given. With the scan
    (``image``, CT in HU on the same grid) the triangles where a thin CSF sheet shows across
    the junction (:func:`sheet_between_brains`) are not counted.
    """
    brain = np.asarray(tissues.array) == Tissue.BRAIN
    ba, bb = brain & (own == Owner.A), brain & (own == Owner.B)
    if not ba.any() or not bb.any():
        return 0.0, float("nan")
    if not _touching(ba, bb):
        return 0.0, _min_gap(tissues, ba, bb)
    surf = junction_surface(tissues, own) if surface is None else surface
    weight = surf.contact
    if image is not None and image.same_grid(tissues, tol_mm=1e-2):
        weight = np.where(sheet_between_brains(surf, image), 0.0, weight)
    return max(float((surf.area * weight).sum()), 0.0) / 100.0, 0.0


def tissue_volumes_ml(tissues: Volume, own: np.ndarray) -> dict[str, dict[str, float]]:
    """Volume (ml) of each tissue per twin: ``{"A": {"scalp": ..}, "B": {..}}``."""
    t = np.asarray(tissues.array)
    out: dict[str, dict[str, float]] = {}
    for name, code in (("A", Owner.A), ("B", Owner.B)):
        counts = np.bincount(t[own == code].ravel().astype(np.int64), minlength=6)
        out[name] = {
            tname: float(counts[int(tcode)] * tissues.voxel_volume_ml)
            for tcode, tname in TISSUE_NAMES.items()
        }
    return out


METHOD = {
    "vessels": (
        f"{VESSEL_CONNECTIVITY}-connected components of the vessel label (one-voxel gaps "
        "bridged) holding both twins, "
        f"minor share >= {MIN_MINOR_SHARE:.0%} and >= {MIN_MINOR_VOLUME_MM3:g} mm3; length: "
        "minimum-cost centre path between the geodesically farthest voxels; diameters: "
        "equivalent-circle diameter of the local cross-section along it; cross-section: "
        "projected area of the junction surface inside the vessel"
    ),
    "brain_contact_area_cm2": (
        "projected area of the junction surface where both brains reach it (brain looked "
        f"up at {CONTACT_DEPTHS_VOXELS[0]:g} and {CONTACT_DEPTHS_VOXELS[1]:g} voxel on each "
        "side, extrapolated to the surface); with the scan, less the triangles where the "
        f"image dips across the junction (a CSF sheet: >= {DIP_MIN:g} HU and beyond the "
        f"{DIP_QUANTILE:.0%} quantile of the dips along it)"
    ),
    "brain_min_distance_mm": "smallest gap between A- and B-brain voxels (world mm)",
    "junction_area_cm2": (
        "area of the surface equidistant from A and B voxels (marching cubes) inside the "
        "head, each triangle projected on the interface normal smoothed over "
        f"{NORMAL_SIGMA_VOXELS:g} voxel (removes the voxel staircase)"
    ),
    "tissue_volumes_ml": "voxel counts x voxel volume per twin and tissue",
    "owner": "owner 0/3 inside the head resolved to the nearest twin",
}


def measure_shared(tissues: Volume, owner: Volume, image: Volume | None = None
                   ) -> SharedAnatomy:
    """Measure the anatomy the twins share.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (0 background .. 5 vessel).
    owner : Volume
        Owner codes on the same grid (0 background, 1 A, 2 B; 3 = ambiguous is resolved
        to the nearest twin).
    image : Volume, optional
        The scan (CT, HU) on the same grid: thin CSF sheets between the brains that the
        labels miss are then left out of the brain contact area (:func:`brain_contact`).

    Returns
    -------
    SharedAnatomy
        Shared vessels (``vessels`` empty when none), brain contact area (cm^2) and minimum
        distance (mm), junction area (cm^2), per-twin tissue volumes (ml), the junction
        centre (world mm) and a mask of the shared vessel voxels.
    """
    _check(tissues, owner)
    own = resolve_owner(tissues, owner)
    surface = junction_surface(tissues, own)
    vessels, vmask = shared_vessels(tissues, own, surface)
    contact, gap = brain_contact(tissues, own, surface, image)
    junction, centre = junction_area_cm2(tissues, own, surface)
    return SharedAnatomy(
        vessels=vessels,
        brain_contact_area_cm2=contact,
        brain_min_distance_mm=gap if np.isfinite(gap) else 0.0,
        junction_area_cm2=junction,
        tissue_volumes_ml=tissue_volumes_ml(tissues, own),
        junction_centre_mm=centre,
        method=dict(METHOD),
        shared_vessel_mask=vmask,
        owner_resolved=own,
    )
