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
    (the A/B equidistant surface, below, clipped to the vessel).
Brain contact area and minimum distance
    The surface equidistant from A-brain and B-brain voxels (zero level of the difference
    of their distance maps, marching cubes, vertices mapped to world mm) kept where it lies
    within :data:`CONTACT_VOXELS` voxel of both brains, i.e. where the two brains touch.
    Minimum distance: the smallest gap between A-brain and B-brain voxels (centre distance
    less the voxel extent along the joining line), 0 when they touch.
Junction area
    The same equidistant-surface construction between all A and all B voxels (the A/B
    owner interface), clipped to the head (``tissues > 0``, smoothed, sampled at triangle
    centres).
Tissue volumes
    Voxel counts x voxel volume per twin and tissue (ml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import TISSUE_NAMES, Owner, Tissue

#: A vessel component is shared only if its minor twin holds at least this share of it.
MIN_MINOR_SHARE = 0.02
#: ... and at least this volume (mm^3) of it.
MIN_MINOR_VOLUME_MM3 = 30.0
#: Brains touch where the equidistant surface is within this many (largest) voxel spacings
#: of both brains' voxel centres (touching faces lie 0.5 voxel from both; 0.65 matches the
#: phantom's analytic contact area within ~15 % at 2-3 mm).
CONTACT_VOXELS = 0.65
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


def resolve_owner(tissues: Volume, owner: Volume) -> np.ndarray:
    """Owner codes 0/1/2 inside the head; 0 and 3 in the head go to the nearest twin.

    Returns
    -------
    ndarray of uint8, shape ``tissues.shape``
        0 outside the head (``tissues == 0``), else 1 (A) or 2 (B).
    """
    t = np.asarray(tissues.array)
    o = np.asarray(owner.array).astype(np.int16)
    head = t > 0
    known = head & ((o == Owner.A) | (o == Owner.B))
    out = np.where(known, o, 0).astype(np.uint8)
    todo = head & ~known
    if todo.any():
        if not known.any():
            raise InputError("the owner map gives no voxel to twin A or twin B")
        _, idx = ndi.distance_transform_edt(
            ~known, sampling=tissues.spacing_kji, return_indices=True
        )
        kk, jj, ii = (idx[a][todo] for a in range(3))
        out[todo] = out[kk, jj, ii]
    return out


def _edge_vectors(vol: Volume) -> np.ndarray:
    """World vectors (mm) of one voxel step along array axes 0, 1, 2 (k, j, i); rows."""
    m = vol.direction_matrix * np.asarray(vol.spacing)[None, :]  # columns i, j, k
    return np.stack([m[:, 2], m[:, 1], m[:, 0]])


def _crop_box(mask: np.ndarray, margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    nz = np.nonzero(mask)
    return tuple(
        slice(max(int(ax.min()) - margin, 0), min(int(ax.max()) + margin + 1, n))
        for ax, n in zip(nz, shape, strict=True)
    )


def _sub_volume(vol: Volume, box: tuple[slice, ...], array: np.ndarray) -> Volume:
    """A volume for ``array`` = ``vol.array[box]`` with the matching origin."""
    start = np.array([s.start for s in box], dtype=float)
    origin = vol.index_to_world(start)
    return Volume(array, tuple(origin), vol.spacing, vol.direction)


def _equidistant_surface(
    vol: Volume, set_a: np.ndarray, set_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of the surface equidistant from two voxel sets.

    Returns
    -------
    areas_mm2 : (n,) area of each triangle, mm^2
    centres_kji : (n, 3) triangle centres, fractional array indices
    centres_mm : (n, 3) triangle centres, world mm
    dist_a, dist_b : distance maps (mm) to the two sets
    """
    from skimage.measure import marching_cubes

    sampling = vol.spacing_kji
    dist_a = ndi.distance_transform_edt(~set_a, sampling=sampling)
    dist_b = ndi.distance_transform_edt(~set_b, sampling=sampling)
    field = (dist_b - dist_a).astype(np.float32)
    if field.min() >= 0 or field.max() <= 0 or min(field.shape) < 2:
        empty = np.zeros((0, 3))
        return np.zeros(0), empty, empty, dist_a, dist_b
    verts, faces, _, _ = marching_cubes(field, level=0.0, allow_degenerate=False)
    world = vol.index_to_world(verts)
    tri = world[faces]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    centres_kji = verts[faces].mean(axis=1)
    return areas, centres_kji, tri.mean(axis=1), dist_a, dist_b


def _sample(array: np.ndarray, kji: np.ndarray, order: int = 1) -> np.ndarray:
    if len(kji) == 0:
        return np.zeros(0)
    return ndi.map_coordinates(array.astype(np.float32), kji.T, order=order, mode="nearest")


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
    marker = np.ones(comp.shape, dtype=bool)
    marker[tuple(path.T)] = False
    _, idx = ndi.distance_transform_edt(marker, sampling=vol.spacing_kji, return_indices=True)
    node_of = -np.ones(comp.shape, dtype=np.int64)
    node_of[tuple(path.T)] = np.arange(len(path))
    nearest = node_of[idx[0][comp], idx[1][comp], idx[2][comp]]
    per_node = np.bincount(nearest[nearest >= 0], minlength=len(path)) * vvox
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


def _crossings(comp: np.ndarray, own: np.ndarray, vol: Volume) -> list[VesselCrossing]:
    """Places where a vessel crosses the A/B interface, with the area of its cut there.

    The A/B interface is the surface equidistant from A and B voxels (marching cubes in
    world mm, as for the junction); its triangles whose centres lie inside the vessel
    (nearest voxel is vessel) make up the cut. Triangles are grouped into
    crossings by the 26-connected pieces of the vessel voxels they fall in.
    ``vol`` is the geometry of ``comp``/``own`` (a cropped box).
    """
    a, b = own == Owner.A, own == Owner.B
    if not a.any() or not b.any():
        return []
    areas, ckji, cmm, _, _ = _equidistant_surface(vol, a, b)
    if len(areas) == 0:
        return []
    keep = _sample(comp.astype(np.float32), ckji, order=0) > 0.5
    if not keep.any():
        return []
    areas, ckji, cmm = areas[keep], ckji[keep], cmm[keep]
    vox = np.clip(np.rint(ckji).astype(int), 0, np.array(comp.shape) - 1)
    hit = np.zeros(comp.shape, dtype=bool)
    hit[tuple(vox.T)] = True
    lab, n = ndi.label(ndi.binary_dilation(hit, structure=np.ones((3, 3, 3), bool)))
    ids = lab[tuple(vox.T)]
    out = []
    for c in range(1, n + 1):
        sel = ids == c
        if not sel.any():
            continue
        w = areas[sel]
        centre = (cmm[sel] * w[:, None]).sum(0) / w.sum()
        out.append(
            VesselCrossing(
                point_mm=[float(v) for v in centre], cross_section_mm2=float(w.sum())
            )
        )
    out.sort(key=lambda x: (-x.cross_section_mm2, x.point_mm))
    return out


def shared_vessels(
    tissues: Volume, own: np.ndarray
) -> tuple[list[SharedVessel], np.ndarray]:
    """Vessel structures that run from one twin into the other.

    Parameters
    ----------
    tissues : Volume
        Tissue codes.
    own : ndarray
        Resolved owner codes 0/1/2 on the same grid (see :func:`resolve_owner`).

    Returns
    -------
    vessels : list of SharedVessel
        Ordered by volume, largest first; ids 1..n.
    mask : ndarray of bool
        All voxels of the shared structures.
    """
    vessel = np.asarray(tissues.array) == Tissue.VESSEL
    mask = np.zeros(vessel.shape, dtype=bool)
    if not vessel.any():
        return [], mask
    structure = np.ones((3, 3, 3), bool) if VESSEL_CONNECTIVITY == 26 else None
    # pieces of one vessel broken by a single missing voxel (thin sinus at 2-3 mm) are
    # joined: components are those of the vessel mask dilated by one voxel, restricted
    # back to the vessel voxels
    bridged = ndi.binary_dilation(vessel, structure=structure) if BRIDGE_GAPS else vessel
    lab, n = ndi.label(bridged, structure=structure)
    lab[~vessel] = 0
    vvox = tissues.voxel_volume_mm3
    n_a = np.bincount(lab[own == Owner.A], minlength=n + 1)
    n_b = np.bincount(lab[own == Owner.B], minlength=n + 1)
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
    margin = int(np.ceil(2.0 * max(tissues.spacing) / min(tissues.spacing))) + 2
    result = []
    objects = ndi.find_objects(lab)
    for rank, (total, c) in enumerate(found, start=1):
        box = tuple(
            slice(max(s.start - margin, 0), min(s.stop + margin, n_))
            for s, n_ in zip(objects[c - 1], lab.shape, strict=True)
        )
        comp = lab[box] == c
        mask[box] |= comp
        sub = _sub_volume(tissues, box, comp)
        edt = ndi.distance_transform_edt(comp, sampling=tissues.spacing_kji)
        length, path = _centreline(comp, sub, edt)
        dmin, dmax = _diameters(comp, sub, path, length)
        crossings = _crossings(comp, own[box], sub)
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
def junction_area_cm2(tissues: Volume, own: np.ndarray) -> tuple[float, list[float] | None]:
    """Area (cm^2) of the A/B interface inside the head, and its area-weighted centre (mm)."""
    a, b = own == Owner.A, own == Owner.B
    if not a.any() or not b.any():
        return 0.0, None
    # crop to where A and B are within a few voxels of each other
    near = ndi.binary_dilation(a, iterations=3) & ndi.binary_dilation(b, iterations=3)
    if not near.any():
        return 0.0, None
    box = _crop_box(near, 4, own.shape)
    sub = _sub_volume(tissues, box, own[box])
    areas, ckji, cmm, _, _ = _equidistant_surface(sub, a[box], b[box])
    if len(areas) == 0:
        return 0.0, None
    head = ndi.gaussian_filter((np.asarray(tissues.array)[box] > 0).astype(np.float32), 0.7)
    keep = _sample(head, ckji) >= 0.5
    if not keep.any():
        return 0.0, None
    centre = (cmm[keep] * areas[keep, None]).sum(0) / areas[keep].sum()
    return float(areas[keep].sum() / 100.0), [float(v) for v in centre]


def brain_contact(tissues: Volume, own: np.ndarray) -> tuple[float, float]:
    """Brain-to-brain contact area (cm^2) and minimum gap (mm, 0 when touching)."""
    brain = np.asarray(tissues.array) == Tissue.BRAIN
    ba, bb = brain & (own == Owner.A), brain & (own == Owner.B)
    if not ba.any() or not bb.any():
        return 0.0, float("nan")
    sampling = tissues.spacing_kji
    d_a, idx = ndi.distance_transform_edt(~ba, sampling=sampling, return_indices=True)
    pos_b = np.argwhere(bb)
    db = d_a[tuple(pos_b.T)]
    best = int(np.argmin(db))
    step = np.asarray(idx[:, *pos_b[best]], dtype=float) - pos_b[best]
    cheb = np.abs(step).max()
    gap = 0.0 if cheb <= 1 else float(db[best] * (1.0 - 1.0 / cheb))
    if gap > 0:
        return 0.0, gap
    tau = CONTACT_VOXELS * max(tissues.spacing)
    near = (d_a <= 2 * tau) & ndi.binary_dilation(bb, iterations=2)
    box = _crop_box(near, 3, brain.shape)
    sub = _sub_volume(tissues, box, brain[box])
    areas, ckji, _, dist_a, dist_b = _equidistant_surface(sub, ba[box], bb[box])
    if len(areas) == 0:
        return 0.0, gap
    keep = (_sample(dist_a, ckji) <= tau) & (_sample(dist_b, ckji) <= tau)
    return float(areas[keep].sum() / 100.0), gap


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
        "marching-cubes area of the A/B equidistant surface inside the vessel"
    ),
    "brain_contact_area_cm2": (
        "marching-cubes area of the surface equidistant from A- and B-brain voxels where "
        f"both lie within {CONTACT_VOXELS:g} voxel"
    ),
    "brain_min_distance_mm": "smallest gap between A- and B-brain voxels (EDT, world mm)",
    "junction_area_cm2": (
        "marching-cubes area of the surface equidistant from A and B voxels, inside the head"
    ),
    "tissue_volumes_ml": "voxel counts x voxel volume per twin and tissue",
    "owner": "owner 0/3 inside the head resolved to the nearest twin",
}


def measure_shared(tissues: Volume, owner: Volume) -> SharedAnatomy:
    """Measure the anatomy the twins share.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (0 background .. 5 vessel).
    owner : Volume
        Owner codes on the same grid (0 background, 1 A, 2 B; 3 = ambiguous is resolved
        to the nearest twin).

    Returns
    -------
    SharedAnatomy
        Shared vessels (``vessels`` empty when none), brain contact area (cm^2) and minimum
        distance (mm), junction area (cm^2), per-twin tissue volumes (ml), the junction
        centre (world mm) and a mask of the shared vessel voxels.
    """
    _check(tissues, owner)
    own = resolve_owner(tissues, owner)
    vessels, vmask = shared_vessels(tissues, own)
    contact, gap = brain_contact(tissues, own)
    junction, centre = junction_area_cm2(tissues, own)
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
