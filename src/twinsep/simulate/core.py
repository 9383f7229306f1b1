"""``twinsep simulate``: each child's geometry after the cut, defects, expanders, implant.

Inputs: ``labels/tissues.nii.gz`` and ``labels/twins.nii.gz`` (owner 1 A, 2 B after the cut;
a leftover 0 or 3 inside the head is given to the nearest twin).

Defect areas (cm2, world mm via the affine): marching cubes on the twin's own nested masks
(scalp level: all its tissue; bone level: bone and everything inside; dura level: CSF/dura
and inside), lightly smoothed (0.5 voxel) so the staircase does not inflate the area; the
cut faces are those that face the other twin (face centre within ``0.5 max + 0.25 min``
voxel spacing of the other twin's tissue).

* ``scalp_defect_cm2``: the open wound the skin must cover (cut faces at the scalp level;
  on phantoms it matches truth.json ``junction_area_cm2``, the interface inside the head).
* ``bone_opening_cm2``: the hole in the skull (cut faces at the bone level: the interface
  inside the outer skull surface). Where soft tissue fills the crease between the heads the
  interface runs through scalp, not bone, so this is smaller than the wound: 84 % of it
  on the total phantom and 75 % on the partial one (truth.json ``junction_skull_area_cm2``).
* ``bone_defect_cm2``: the skull each child must have rebuilt: the outer surface of the
  closed cranium (see :mod:`twinsep.simulate.cranium`) in the opened space, i.e. the
  new skull surface that spans the opening along the skull's curvature (>= the opening).
* ``dura_defect_cm2``: the dural opening.
* ``scalp_needed_cm2`` (= ``skin_missing_cm2``): the closed head's skin over the defect: the
  outer surface of the closed cranium grown by the scalp thickness, in the opened space.

Speed: everything but the head surfaces works on boxes around the cut (see
:mod:`twinsep.simulate.cranium`); distances used only against thresholds of tens of
mm (the fit band, the largest bulge) are taken on blocks of about 2 mm when the voxels are
finer, and every few-mm distance exactly on the smallest box that holds it.

Frame: everything written by this stage (plan.json points and frames, ``models/twin_*``) is
in the *separated* frame: scan world mm (LPS) plus the twin's ``translation_mm``, i.e. each
twin moved half of ``separation_distance_mm`` along the separation normal, away from the
other. Subtract ``translation_mm`` to get scan coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from twinsep.exchange.mesh_files import write_stl
from twinsep.image import Volume, bounding_box, crop
from twinsep.labels import Owner, Tissue, resolve_owner
from twinsep.mesh import (
    TAUBIN_LAMBDA,
    TAUBIN_MU,
    Mesh,
    decimate,
    grid_to_world,
    iso_surface,
    mask_mesh,
    simplify,
    taubin,
)
from twinsep.simulate import cranium as cr
from twinsep.simulate import expanders as ex
from twinsep.simulate.settings import ReconstructionSettings, load_settings

TWINS = {"A": (Owner.A, Owner.B), "B": (Owner.B, Owner.A)}
MAX_DISPLAY_FACES = 150_000
#: Grid (mm) of the display meshes (head, skull), and of the skull's closed surface.
DISPLAY_GRID_MM = 1.0
#: The nearest twin of a leftover 0 or 3 inside the head is searched first this far (mm) from
#: those voxels (the phantom's ambiguous band is 6 mm wide), see
#: :func:`twinsep.labels.resolve_owner`.
OWNER_SEARCH_MM = 16.0
#: The frame of the meshes this stage writes.
SEPARATED_FRAME = "separated: world LPS mm + translation_mm"


@dataclass
class Surface:
    """A marching-cubes surface in world mm (scan frame) with per-face data."""

    verts: np.ndarray
    faces: np.ndarray
    centres_kji: np.ndarray
    areas_mm2: np.ndarray
    cut: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def centres(self) -> np.ndarray:
        return self.verts[self.faces].mean(1)

    def normals(self) -> np.ndarray:
        v = self.verts[self.faces]
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def surface(mask: np.ndarray, vol: Volume, sigma_vox: float = 0.5,
            offset: tuple[int, int, int] = (0, 0, 0), step: int = 1) -> Surface:
    """Closed marching-cubes surface of ``mask`` (level 0.5 after a light Gaussian).

    ``mask`` may be a crop of ``vol``'s grid starting at index ``offset``; the surface is
    returned in the full grid's indices and world mm. ``step``: marching-cubes step (voxels).
    """
    box = bounding_box(mask, 3)
    if box is None:
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), int), np.zeros((0, 3)), np.zeros(0),
                       np.zeros(0, bool))
    lo = [b.start for b in box]
    sub = mask[box].astype(np.float32)
    sub = np.pad(sub, 1)
    if sigma_vox > 0:
        sub = ndi.gaussian_filter(sub, sigma_vox)
    v, f = iso_surface(sub, 0.5, step_size=step, allow_degenerate=True)
    origin = np.asarray(lo, float) + np.asarray(offset, float) - 1.0
    kji = v + origin
    verts = grid_to_world(vol, v, origin)
    tri = verts[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return Surface(verts, f, kji[f].mean(1), areas)


def sample(field_: np.ndarray, kji: np.ndarray, order: int = 1,
           box: cr.Box | None = None, outside: float = 0.0) -> np.ndarray:
    """Values of ``field_`` at fractional indices ``kji`` (n, 3).

    With ``box``, ``field_`` covers only that box of the grid; points outside it get
    ``outside``.
    """
    kji = np.asarray(kji, float)
    if box is None:
        return ndi.map_coordinates(field_.astype(np.float32), kji.T, order=order,
                                   mode="nearest")
    lo = np.array([b[0] for b in box], float)
    hi = np.array([b[1] for b in box], float)
    out = np.full(len(kji), outside, np.float32)
    ins = np.all((kji >= lo - 0.5) & (kji <= hi - 0.5), axis=1)
    if ins.any():
        out[ins] = ndi.map_coordinates(field_.astype(np.float32), (kji[ins] - lo).T,
                                       order=order, mode="nearest")
    return out


def _outline(s: Surface) -> np.ndarray:
    """Largest closed loop of boundary edges of the cut faces (world mm, ordered)."""
    f = s.faces[s.cut]
    if not len(f):
        return np.zeros((0, 3))
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, cnt = np.unique(e, axis=0, return_counts=True)
    edges = uniq[cnt == 1]
    nbr: dict[int, list[int]] = {}
    for a, b in edges:
        nbr.setdefault(int(a), []).append(int(b))
        nbr.setdefault(int(b), []).append(int(a))
    seen: set[int] = set()
    best: list[int] = []
    for start in sorted(nbr):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            nxt = [n for n in nbr[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            seen.add(cur)
            loop.append(cur)
        if len(loop) > len(best):
            best = loop
    return s.verts[best]


def _plane(s: Surface, towards: np.ndarray) -> dict:
    """Centre, normal (towards the other twin) and in-plane axes/extents of the cut faces."""
    c = s.centres[s.cut]
    w = s.areas_mm2[s.cut]
    centre = (c * w[:, None]).sum(0) / w.sum()
    d = c - centre
    cov = (d * w[:, None]).T @ d / w.sum()
    evals, evecs = np.linalg.eigh(cov)
    normal = evecs[:, 0]
    if normal @ (towards - centre) < 0:
        normal = -normal
    e1 = evecs[:, 2] * (1 if evecs[2, 2] >= 0 else -1)
    e2 = np.cross(normal, e1)
    return {"centre": centre, "normal": normal, "e1": e1, "e2": e2,
            "length_mm": 4.0 * np.sqrt(max(evals[2], 0.0)),
            "width_mm": 4.0 * np.sqrt(max(evals[1], 0.0))}


class _CutDistance:
    """Distance (mm) of the head's face centres to the nearest cut (wound) face centre.

    Against one cut face per 1.5 mm cell first (at most the cell's diagonal ``err`` above the
    exact value, never below it); a band ``|d - target| <= tol`` then needs the exact value
    only for the faces that this bound leaves undecided.
    """

    CELL_MM = 1.5

    def __init__(self, head: Surface, upto_mm: float) -> None:
        """``upto_mm``: the largest ``target + tol`` that :meth:`band` will be asked for."""
        from scipy.spatial import cKDTree

        self.c = head.centres
        self.healthy = ~head.cut
        cc = self.c[head.cut]
        self.tree = cKDTree(cc) if len(cc) else None
        self.coarse = np.full(len(self.c), np.inf)
        self.err = self.CELL_MM * np.sqrt(3.0)
        self.upto = upto_mm
        if len(cc):
            key = np.floor(cc / self.CELL_MM).astype(np.int64)
            _, first = np.unique(key, axis=0, return_index=True)
            self.coarse = cKDTree(cc[np.sort(first)]).query(
                self.c, distance_upper_bound=upto_mm + self.err)[0]

    def exact(self, idx: np.ndarray) -> np.ndarray:
        """Exact distances of the faces ``idx``."""
        if self.tree is None or not len(idx):
            return np.full(len(idx), np.inf)
        return self.tree.query(self.c[idx])[0]

    def band(self, target: float, tol: float) -> np.ndarray:
        """Healthy faces with ``|distance - target| <= tol`` (indices, ascending)."""
        if self.tree is None:
            return np.zeros(0, int)
        if target + tol > self.upto:  # beyond the coarse distances' range: all exactly
            cand = np.flatnonzero(self.healthy)
            d = self.exact(cand)
            return cand[np.abs(d - target) <= tol]
        lo, hi = target - tol, target + tol
        c = self.coarse  # exact value in [c - err, c]
        sure = self.healthy & (c <= hi) & (c - self.err >= lo)
        maybe = np.flatnonzero(self.healthy & ~sure & (c >= lo) & (c - self.err <= hi))
        d = (self.tree.query(self.c[maybe], distance_upper_bound=hi + 1e-6)[0]
             if len(maybe) else np.zeros(0))
        sure[maybe[np.abs(d - target) <= tol]] = True
        return np.flatnonzero(sure)


def _place(head: Surface, plane: dict, cand: ex.Candidate, scalp_mm: float,
           s: ReconstructionSettings, head_centre: np.ndarray,
           cut_dist: _CutDistance) -> list[dict]:
    """Positions/frames (scan mm) of ``cand.n`` expanders on the healthy scalp."""
    c = head.centres
    target = s.placement.clearance_mm + cand.product.width_cm * 10.0 / 2.0
    tol = max(3.0, 2 * max(np.abs(np.diff(head.verts[head.faces[:1]], axis=1)).max(), 1.0))
    idx = cut_dist.band(target, tol)
    v = head.verts[head.faces[idx]]
    nrm = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    flip = ((c[idx] - head_centre) * nrm).sum(1) < 0
    nrm[flip] *= -1
    rel = c[idx] - plane["centre"]
    ang = np.arctan2(rel @ plane["e1"], rel @ plane["e2"])
    out = []
    for k in range(cand.n):
        phi = 2 * np.pi * k / cand.n
        if not len(idx):
            break
        diff = np.abs(np.angle(np.exp(1j * (ang - phi))))
        m = int(np.argmin(diff))
        i = int(idx[m])
        p, n = c[i], nrm[m]
        toward = plane["centre"] - p
        t = toward - (toward @ n) * n
        t /= max(np.linalg.norm(t), 1e-9)
        long = np.cross(t, n)
        frame = np.eye(4)
        frame[:3, 0], frame[:3, 1], frame[:3, 2] = long, t, n
        frame[:3, 3] = p - n * scalp_mm
        out.append({"surface_point": p, "normal": n, "long_axis": long, "frame": frame,
                    "base_radius_mm": _base_curvature(head, p, n, cand, scalp_mm),
                    "distance_to_defect_mm": float(cut_dist.exact(np.array([i]))[0]),
                    "angle_deg": float(np.rad2deg(phi))})
    return out


def _base_curvature(head: Surface, p: np.ndarray, n: np.ndarray, cand: ex.Candidate,
                    scalp_mm: float) -> float | None:
    """Radius (mm) of the skull under an expander's base at ``p``: a sphere fitted to the
    head surface within the base's footprint (half its length, plus 5 mm), less the scalp;
    None when the surface there is not a convex cap (flat base then)."""
    half = 0.5 * max(cand.product.length_cm, cand.product.width_cm) * 10.0
    c = head.centres
    near = np.linalg.norm(c - p, axis=1) <= half + 5.0
    if near.sum() < 20:
        return None
    centre, radius = cr.fit_sphere(c[near])
    base = radius - scalp_mm
    # convex towards the outside, the base wrapping at most 2 rad (115 degrees) each way,
    # and curved enough to matter
    if (p - centre) @ n <= 0 or not (0.5 * half < base < 40.0 * half):
        return None
    return float(base)


def _ring_cm(head: Surface, plane: dict, target_mm: float, cut_dist: _CutDistance) -> float:
    """Circumference (cm) of the ring of scalp ``target_mm`` from the defect (in-plane radius)."""
    idx = cut_dist.band(target_mm, 3.0)
    if not len(idx):
        return 0.0
    rel = head.centres[idx] - plane["centre"]
    r = np.hypot(rel @ plane["e1"], rel @ plane["e2"])
    return float(2 * np.pi * np.median(r) / 10.0)


def _smooth(su: Surface, iterations: int) -> np.ndarray:
    """Vertices of ``su`` after Taubin smoothing (the factors of every closed surface,
    :data:`twinsep.mesh.TAUBIN_LAMBDA` and ``TAUBIN_MU``)."""
    return taubin(su.verts, su.faces, TAUBIN_LAMBDA, TAUBIN_MU, iterations)


def _part(su: Surface, mask: np.ndarray, vol: Volume, start: tuple[int, int, int],
          iterations: int, max_faces: int | None, mc_spacing_mm: float = 0.0) -> Mesh:
    """The mesh of a part meant to be made (the implant, the skull): closed.

    The marching-cubes surface ``su`` of the binary ``mask`` (at 0.5), smoothed by
    ``iterations`` Taubin steps and decimated to ``max_faces``, when that is closed; else
    the closed surface of :func:`twinsep.mesh.mask_mesh` (the closedness fix of every model:
    marching cubes just below 0.5 on the padded mask, on blocks of ``mc_spacing_mm``,
    oriented outwards), smoothed alike and decimated keeping it closed. ``mask`` starts at
    index ``start`` of ``vol``'s grid.
    """
    v = _smooth(su, iterations) if iterations > 0 else su.verts
    mesh = Mesh(*simplify(v, su.faces, max_faces))
    if not mesh.n_faces or mesh.closed:
        return mesh
    fixed = mask_mesh(mask, vol, start=start, mc_spacing_mm=mc_spacing_mm,
                      smooth_iterations=iterations)
    if fixed is None:
        return mesh
    if max_faces:
        fixed = Mesh(*decimate(fixed.vertices, fixed.faces, max_faces, closed=True))
    return fixed


def _ring_lookup(head: Surface, plane: dict, clearance_mm: float, cut_dist: _CutDistance
                 ) -> Callable[[ex.Product], float]:
    """``ring_of(product)``: the ring (cm) through the centres of expanders of that product's
    width, ``clearance + width / 2`` from the wound (measured once per width)."""
    rings: dict[float, float] = {}

    def ring_of(p: ex.Product) -> float:
        if p.width_cm not in rings:
            rings[p.width_cm] = _ring_cm(head, plane, clearance_mm + p.width_cm * 5.0, cut_dist)
        return rings[p.width_cm]

    return ring_of


def _contact(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Voxels of ``a`` with a face neighbour in ``b`` (``"A"``) and of ``b`` with one in ``a``
    (``"B"``)."""
    ca, cb = np.zeros(a.shape, bool), np.zeros(a.shape, bool)
    ba, bb = cr.bbox(a), cr.bbox(b)
    if ba is None or bb is None:
        return {"A": ca, "B": cb}
    box = tuple((max(p[0], q[0]) - 1, min(p[1], q[1]) + 1) for p, q in zip(ba, bb, strict=True))
    box = tuple((max(0, lo), min(n, hi)) for (lo, hi), n in zip(box, a.shape, strict=True))
    if any(lo >= hi for lo, hi in box):
        return {"A": ca, "B": cb}
    x, y = a[cr.sl(box)], b[cr.sl(box)]
    sa, sb = ca[cr.sl(box)], cb[cr.sl(box)]
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        ab = x[lo] & y[hi]  # a at i, b at i + 1
        ba_ = y[lo] & x[hi]  # b at i, a at i + 1
        sa[lo] |= ab
        sb[hi] |= ab
        sb[lo] |= ba_
        sa[hi] |= ba_
    return {"A": ca, "B": cb}


def _centroid(mask: np.ndarray, vol: Volume) -> np.ndarray:
    """World centroid (mm) of ``mask``."""
    n = float(mask.sum())
    kji = [float((mask.sum(axis=tuple(a for a in range(3) if a != ax))
                  * np.arange(mask.shape[ax])).sum()) / n for ax in range(3)]
    return vol.index_to_world(np.array(kji))


def _full(sub: np.ndarray, box: cr.Box, shape) -> np.ndarray:
    out = np.zeros(shape, sub.dtype)
    out[cr.sl(box)] = sub
    return out


def _min_distance(mask: np.ndarray, target: np.ndarray, box: cr.Box | None, vol: Volume,
                  near_mm: float = 20.0) -> float | None:
    """Smallest distance (mm) between voxel centres of ``mask`` (inside ``box``) and
    ``target`` (0 where they overlap)."""
    from scipy.spatial import cKDTree

    if box is None or not target.any():
        return None
    sp = vol.spacing_kji
    big = cr.grow(box, near_mm, sp, mask.shape)
    t = target[cr.sl(big)]
    m = mask[cr.sl(box)]
    if (m & t[cr.sl(box, big)]).any():
        return 0.0
    edge = cr.boundary(t) if t.any() else t
    if edge.any():
        lo_b = np.array([b[0] for b in big])
        lo_m = np.array([b[0] for b in box])
        d, _ = cKDTree(cr.to_world(vol, np.argwhere(edge) + lo_b)).query(
            cr.to_world(vol, np.argwhere(m) + lo_m))
        if float(d.min()) <= near_mm:
            return float(d.min())
    return float(ndi.distance_transform_edt(~target, sampling=sp)[mask].min())


class _Work:
    """Arrays shared by both twins on the working box around the cut."""

    def __init__(self, tissues: Volume, own: np.ndarray, heads: dict, contact: dict,
                 box: cr.Box) -> None:
        self.box = box
        self.lo = tuple(b[0] for b in box)
        self.volume = crop(tissues, cr.sl(box))
        self._sp = tissues.spacing_kji
        self._own = own[cr.sl(box)]
        self._tissue = (heads["A"] | heads["B"])[cr.sl(box)]
        self._cut = (contact["A"] | contact["B"])[cr.sl(box)]
        self._nearest: np.ndarray | None = None
        self._d_cut: np.ndarray | None = None

    def d_cut(self) -> np.ndarray:
        """Distance (mm) from the cut (the voxels of either twin that touch the other)."""
        if self._d_cut is None:  # for the fit band (8-45 mm): blocks of about 2 mm suffice
            self._d_cut = cr.coarse_edt(self._cut, self._sp, cr.coarse_factor(self._sp))
        return self._d_cut

    def opened(self, name: str) -> np.ndarray:
        """``D`` of twin ``name``: the other twin's tissue and the air nearer to it."""
        if self._nearest is None:
            f = max(1, round(1.0 / max(self._sp)))
            if f == 1:  # exact: the owner of the nearest tissue voxel
                idx = ndi.distance_transform_edt(~self._tissue, sampling=self._sp,
                                                 return_distances=False, return_indices=True)
                self._nearest = self._own[tuple(idx)]
            else:  # sub-mm voxels: the air is split on blocks of about 1 mm
                d = {c: cr.coarse_edt(self._own == c, self._sp, f) for c in (Owner.A, Owner.B)}
                self._nearest = np.where(d[Owner.B] < d[Owner.A], Owner.B, Owner.A).astype(
                    np.uint8)
                del d
                self._nearest[self._tissue] = self._own[self._tissue]
        return self._nearest == (Owner.B if name == "A" else Owner.A)


def simulate_arrays(tissues: Volume, owner: Volume, *, products: list[ex.Product],
                    settings: ReconstructionSettings | None = None,
                    models_dir: Path | None = None,
                    progress: Callable[[str, float], None] | None = None) -> dict:
    """The ``reconstruction`` section (and meshes in ``models_dir``) for a label pair.

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes on the same grid.
    products : list of Product
        Expander catalogue.
    settings : ReconstructionSettings, optional
    models_dir : Path, optional
        Where to write ``twin_{A,B}_{head,skull,defect,implant,expander_N}.stl``.
    progress : callable, optional
        ``progress(text, fraction)``.

    Returns
    -------
    dict
        The ``reconstruction`` section of plan.json, plus ``_arrays`` (per twin: implant and
        closed masks) for tests; :func:`simulate_case` drops ``_arrays``.
    """
    from twinsep.errors import InputError

    s = settings or load_settings()
    report = progress or (lambda t, f: None)
    if not tissues.same_grid(owner):
        raise InputError("labels/twins.nii.gz is not on the grid of labels/tissues.nii.gz")
    sp = tissues.spacing_kji
    tis = tissues.array
    try:
        own = resolve_owner(tissues, owner, search_mm=OWNER_SEARCH_MM)
    except InputError:
        raise InputError("labels/twins.nii.gz must hold tissue of both twins (1 A, 2 B)") from None
    heads = {k: (own == code) & (tis > 0) for k, (code, _) in TWINS.items()}
    if not heads["A"].any() or not heads["B"].any():
        raise InputError("labels/twins.nii.gz must hold tissue of both twins (1 A, 2 B)")
    shape = tis.shape
    # the cut: voxels of each twin with a face neighbour of the other
    contact = _contact(heads["A"], heads["B"])
    cbox = cr.bbox(contact["A"] | contact["B"])
    if cbox is None:
        raise InputError("twin A does not touch twin B: nothing to reconstruct")
    tol = 0.5 * max(sp) + 0.25 * min(sp)
    # distance to the other twin's tissue, near the cut only (faces within ``tol`` of it)
    near_lim = tol + 2.0 * max(sp)
    nbox = cr.grow(cbox, near_lim, sp, shape)
    d_near = {k: cr.edt_box(heads[o], nbox, near_lim, sp) for k, o in (("A", "B"), ("B", "A"))}
    centres = {k: _centroid(m, tissues) for k, m in heads.items()}
    n_ab = centres["B"] - centres["A"]
    # the working box: everything the implant design looks at lies within the fit band and
    # the largest bulge of the cut
    reach_mm = max(s.implant.fit_band_mm[1], s.implant.max_bulge_mm) + 4.0 * max(sp)
    work = _Work(tissues, own, heads, contact, cr.grow(cbox, reach_mm, sp, shape))
    twins_out, scalp_out, cran_out, exp_out, arrays = {}, {}, {}, {}, {}
    warnings_all: list[str] = []
    planes = {}
    for step, (name, _codes) in enumerate(TWINS.items()):
        other = "B" if name == "A" else "A"
        report(f"twin {name}: defects", 0.05 + 0.45 * step)
        hx = heads[name]
        w = work
        hbox = cr.bbox(hx)
        surfs = {}
        wsl = cr.sl(w.box)
        tw = tis[wsl]
        hw = hx[wsl]
        cran_w = hw & (tw >= Tissue.BONE)
        intra_w = hw & (tw >= Tissue.CSF)
        bone_w = hw & (tw == Tissue.BONE)
        # full head (wound, placement, model); bone and dura levels only near the cut
        for level, m, off in (("scalp", hx, (0, 0, 0)), ("bone", cran_w, w.lo),
                              ("dura", intra_w, w.lo)):
            su = surface(m, tissues, offset=off)
            su.cut = sample(d_near[name], su.centres_kji, box=nbox, outside=np.inf) < tol
            surfs[level] = su
        head = surfs["scalp"]
        if not head.cut.any():
            raise InputError(f"twin {name} does not touch twin {other}: nothing to reconstruct")
        plane = _plane(head, centres[other])
        planes[name] = plane
        d_cut = w.d_cut()
        t_bone, t_scalp = _thicknesses(d_cut, w.box, surfs, bone_w, hw & (tw == Tissue.SCALP),
                                       tissues.voxel_volume_mm3, s)
        # implant, on the working box (on the whole grid if it reaches the box's edge)
        report(f"twin {name}: implant", 0.2 + 0.45 * step)
        des = cr.design_implant(w.volume, cran_w, intra_w, w.opened(name), d_cut, t_bone,
                                s.implant)
        if des["touches_border"] and w.box != tuple((0, n) for n in shape):
            w = _Work(tissues, own, heads, contact, tuple((0, n) for n in shape))
            wsl = cr.sl(w.box)
            tw, hw = tis[wsl], hx[wsl]
            cran_w = hw & (tw >= Tissue.BONE)
            intra_w = hw & (tw >= Tissue.CSF)
            des = cr.design_implant(w.volume, cran_w, intra_w, w.opened(name), w.d_cut(),
                                    t_bone, s.implant)
        implant_w, closed_w, opened_w = des["implant"], des["closed"], des["opened"]
        implant = np.zeros(shape, bool)
        implant[wsl] = implant_w
        # closure: on the box of the child and its implant grown by a voxel (no wall beyond)
        ibox = cr.bbox(implant_w)
        if ibox is not None:
            ibox = tuple((a + o, b + o) for (a, b), o in zip(ibox, w.lo, strict=True))
        kbox = cr.grow(cr.union(hbox, ibox), 0.0, sp, shape)
        ksl = cr.sl(kbox)
        tk = tis[ksl]
        hk = hx[ksl]
        opened_k = np.zeros(hk.shape, bool)
        ov = tuple((max(a[0], b[0]), min(a[1], b[1])) for a, b in zip(kbox, w.box, strict=True))
        if all(lo_ < hi_ for lo_, hi_ in ov):
            opened_k[cr.sl(ov, kbox)] = opened_w[cr.sl(ov, w.box)]
        check = cr.closure_check(hk & (tk == Tissue.BONE), implant[ksl], hk & (tk >= Tissue.BONE),
                                 hk & (tk >= Tissue.CSF), opened_k)
        del tk, hk, opened_k
        brain = hx & (tis == Tissue.BRAIN)
        brain_overlap = int((implant & brain).sum())
        min_brain = _min_distance(implant, brain, ibox, tissues)
        imp_surf = surface(implant_w, tissues, sigma_vox=0.0, offset=w.lo)
        imp_mesh = _part(imp_surf, implant_w, tissues, w.lo, s.implant.mesh_smooth_iterations,
                         None)
        scalp_needed, bone_missing = _missing_skin_and_bone(hw, closed_w, opened_w, w, t_scalp,
                                                            tissues)
        arrays[name] = {"implant": implant, "closed": _full(closed_w, w.box, shape),
                        "opened": _full(opened_w, w.box, shape)}
        # the farthest band asked for: the placement ring of the widest expander
        d_faces = _CutDistance(head, s.placement.clearance_mm
                               + 5.0 * max(p.width_cm for p in products)
                               + max(3.0, 4.0 * max(sp) + 2.0) + 1.0)
        # separated frame
        unit = n_ab / np.linalg.norm(n_ab)
        shift = (-0.5 if name == "A" else 0.5) * s.separation_distance_mm * unit
        areas = {lvl: float(su.areas_mm2[su.cut].sum() / 100.0) for lvl, su in surfs.items()}
        outline = _outline(head)
        if len(outline) > 96:
            outline = outline[np.linspace(0, len(outline) - 1, 96).astype(int)]
        models = ({} if models_dir is None else
                  _write_meshes(models_dir, name, head, hx, tissues, imp_mesh, shift))
        twins_out[name] = {
            "scalp_defect_cm2": areas["scalp"],
            "bone_defect_cm2": bone_missing,
            "bone_opening_cm2": areas["bone"],
            "dura_defect_cm2": areas["dura"],
            "scalp_needed_cm2": scalp_needed,
            "defect_length_cm": plane["length_mm"] / 10.0,
            "defect_width_cm": plane["width_mm"] / 10.0,
            "defect_centre_mm": plane["centre"] + shift,
            "defect_normal": plane["normal"],
            "defect_outline_mm": outline + shift if len(outline) else [],
            "translation_mm": shift,
            "scalp_thickness_mm": t_scalp,
            "skull_thickness_mm": t_bone,
            "models": models,
        }
        report(f"twin {name}: expanders", 0.35 + 0.45 * step)
        exp_out[name], scalp_out[name], warns = _scalp_plan(
            name, head, plane, products, scalp_needed, t_scalp, centres[name], d_faces, shift,
            s, models_dir)
        warnings_all += [f"twin {name}: {w}" for w in warns]
        cran_out[name] = _cranium_entry(bone_missing, areas["bone"], models, imp_mesh, implant,
                                        t_bone, des, check, brain_overlap, min_brain, shift,
                                        tissues)
        if not check["closed"]:
            warnings_all.append(f"twin {name}: skull plus implant leaves the cavity open "
                                f"({check['leak_voxels']} voxels reach the outside)")
    report("done", 1.0)
    return {
        "frame": "separated: scan world mm (LPS) + translation_mm of each twin",
        "separation_normal": n_ab / np.linalg.norm(n_ab),
        "separation_distance_mm": s.separation_distance_mm,
        "twins": twins_out,
        "scalp": {"twins": scalp_out, "expanders": exp_out},
        "cranium": {"twins": cran_out},
        "settings": s.model_dump(mode="json"),
        "warnings": warnings_all,
        "_arrays": arrays,
    }


def _thicknesses(d_cut: np.ndarray, box, surfs: dict, bone_w: np.ndarray, scalp_w: np.ndarray,
                 vox_mm3: float, s: ReconstructionSettings) -> tuple[float, float]:
    """Thickness (mm) of the skull and of the scalp near the defect: volume / outer area in
    the fit band, unless the settings give them."""
    lo, hi = s.implant.fit_band_mm
    band_w = (d_cut >= lo) & (d_cut <= hi)
    skull, head = surfs["bone"], surfs["scalp"]
    sk_band = (~skull.cut) & (sample(band_w, skull.centres_kji, 0, box=box) > 0.5)
    hd_band = (~head.cut) & (sample(band_w, head.centres_kji, 0, box=box) > 0.5)
    area_sk = skull.areas_mm2[sk_band].sum()
    area_hd = head.areas_mm2[hd_band].sum()
    t_bone = ((bone_w & band_w).sum() * vox_mm3 / area_sk if area_sk
              else s.implant.min_thickness_mm)
    t_scalp = (scalp_w & band_w).sum() * vox_mm3 / area_hd if area_hd else 4.0
    if s.implant.thickness_mm is not None:
        t_bone = s.implant.thickness_mm
    t_bone = float(np.clip(t_bone, s.implant.min_thickness_mm, s.implant.max_thickness_mm))
    if s.placement.scalp_thickness_mm is not None:
        t_scalp = s.placement.scalp_thickness_mm
    return t_bone, float(t_scalp)


def _missing_skin_and_bone(hw: np.ndarray, closed_w: np.ndarray, opened_w: np.ndarray,
                           w: _Work, t_scalp: float, tissues: Volume) -> tuple[float, float]:
    """Skin to grow and skull to rebuild (cm2): the closed head (scalp of thickness
    ``t_scalp`` over the closed cranium) and the closed cranium's outer surface, in the
    opened space."""
    sp = tissues.spacing_kji
    f = cr.coarse_factor(sp)
    obox = cr.near_box(cr.coarse_edt(closed_w, sp, f), opened_w, t_scalp,
                       cr.coarse_error(sp, f))
    closed_head = hw.copy()
    if obox is not None:
        d_closed = cr.edt_box(closed_w, obox, t_scalp, sp)
        closed_head[cr.sl(obox)] |= opened_w[cr.sl(obox)] & (d_closed <= t_scalp)
        del d_closed
    ch = surface(closed_head, tissues, offset=w.lo)
    new = sample(opened_w, ch.centres_kji, box=w.box) > 0.5
    scalp_needed = float(ch.areas_mm2[new].sum() / 100.0)
    cs = surface(closed_w, tissues, offset=w.lo)
    in_open = sample(opened_w, cs.centres_kji, box=w.box) > 0.5
    return scalp_needed, float(cs.areas_mm2[in_open].sum() / 100.0)


def _write_meshes(models_dir: Path, name: str, head, hx: np.ndarray, tissues: Volume,
                  imp_mesh: Mesh, shift: np.ndarray) -> dict[str, str]:
    """Write the twin's head, skull, defect and implant STLs in the separated frame;
    display meshes are sampled at about 1 mm (then decimated to the display cap)."""
    tis = tissues.array
    step = max(1, round(DISPLAY_GRID_MM / max(tissues.spacing_kji)))
    head_disp = head if step == 1 else surface(hx, tissues, step=step)
    skull_surf = surface(hx & (tis == Tissue.BONE), tissues, sigma_vox=0.0, step=step)
    files = {
        "head": Mesh(*simplify(head_disp.verts, head_disp.faces, MAX_DISPLAY_FACES)),
        "skull": _part(skull_surf, hx & (tis == Tissue.BONE), tissues, (0, 0, 0), 0,
                       MAX_DISPLAY_FACES, DISPLAY_GRID_MM),
        "defect": Mesh(head.verts, head.faces[head.cut]),
    }
    if len(imp_mesh.faces):
        files["implant"] = imp_mesh
    models = {}
    for key, part in files.items():
        fn = f"twin_{name}_{key}.stl"
        write_stl(models_dir / fn, part.moved(shift, SEPARATED_FRAME))
        models[key] = f"models/{fn}"
    return models


def _scalp_plan(name: str, head, plane: dict, products: list[ex.Product], scalp_needed: float,
                t_scalp: float, centre: np.ndarray, d_faces, shift: np.ndarray,
                s: ReconstructionSettings, models_dir: Path | None
                ) -> tuple[list[dict], dict, list[str]]:
    """The expanders of one twin: the product and count (Aya rule), their places on the
    healthy scalp, fill schedules and meshes. Returns the expanders, the scalp plan and the
    warnings."""
    width_cm = plane["width_mm"] / 10.0
    ring_of = _ring_lookup(head, plane, s.placement.clearance_mm, d_faces)
    cand, warns = ex.choose(products, scalp_needed, width_cm, ring_of, s)
    ring = ring_of(cand.product)
    places = _place(head, plane, cand, t_scalp, s, centre, d_faces)
    if len(places) < cand.n:
        warns.append(f"only {len(places)} of {cand.n} expanders could be placed on the "
                     "healthy scalp")
    items = []
    for k, pl in enumerate(places, start=1):
        h_cm = ex.height_for_volume(cand.product.shape, cand.product.length_cm,
                                    cand.product.width_cm,
                                    cand.product.volume_ml * s.overfill_factor)
        entry = {
            "index": k, "product": cand.product.id, "shape": cand.product.shape,
            "length_cm": cand.product.length_cm, "width_cm": cand.product.width_cm,
            "nominal_volume_ml": cand.product.volume_ml, "fill_volume_ml":
            cand.product.volume_ml * s.overfill_factor, "dome_height_cm": h_cm,
            "geometric_gain_cm2": cand.gain.geometric_cm2,
            "expected_gain_cm2": cand.gain.expected_cm2,
            "efficiency": cand.gain.efficiency, "expanded_width_cm": cand.gain.arc_width_cm,
            "position_mm": pl["surface_point"] + shift, "normal": pl["normal"],
            "long_axis": pl["long_axis"], "base_centre_mm": pl["frame"][:3, 3] + shift,
            "distance_to_defect_mm": pl["distance_to_defect_mm"],
            "base_curvature_radius_mm": pl["base_radius_mm"],
            "schedule": ex.fill_schedule(cand.product.volume_ml, s),
        }
        if models_dir is not None:
            fn = f"twin_{name}_expander_{k}.stl"
            dome = ex.expander_mesh(cand.product, h_cm, pl["frame"],
                                    base_radius_mm=pl["base_radius_mm"])
            write_stl(models_dir / fn,
                      Mesh(dome.vertices, dome.faces).moved(shift, SEPARATED_FRAME))
            entry["model"] = f"models/{fn}"
        items.append(entry)
    need_vol = s.aya.min_volume_ml_per_cm2 * scalp_needed
    need_w = s.aya.min_width_ratio * width_cm
    plan = {
        "skin_missing_cm2": scalp_needed,
        "defect_width_cm": width_cm,
        "n_expanders": len(items),
        "expected_gain_cm2": sum(i["expected_gain_cm2"] for i in items),
        "geometric_gain_cm2": sum(i["geometric_gain_cm2"] for i in items),
        "total_volume_ml": sum(i["fill_volume_ml"] for i in items),
        "expanded_width_cm": sum(i["expanded_width_cm"] for i in items),
        "weeks": max((i["schedule"]["weeks"] for i in items), default=0),
        "aya": {"required_volume_ml": need_vol, "required_width_cm": need_w,
                "volume_ok": cand.checks["aya_volume"], "width_ok": cand.checks["aya_width"],
                "satisfied": cand.checks["aya_volume"] and cand.checks["aya_width"]},
        "gain_covers_skin": cand.checks["gain_covers_skin"],
        "ring_cm": ring,
        "warnings": warns,
    }
    return items, plan, warns


def _cranium_entry(bone_missing: float, bone_opening: float, models: dict, imp_mesh: Mesh,
                   implant: np.ndarray, t_bone: float, des: dict, check: dict,
                   brain_overlap: int, min_brain: float, shift: np.ndarray,
                   tissues: Volume) -> dict:
    """plan.json ``reconstruction.cranium.twins.X``: the bone defect and the implant."""
    return {
        "bone_defect_cm2": bone_missing,
        "bone_opening_cm2": bone_opening,
        "implant": {
            "model": models.get("implant"),
            "area_cm2": float(imp_mesh.area_mm2 / 200.0),
            "surface_area_cm2": float(imp_mesh.area_mm2 / 100.0),
            "volume_ml": float(abs(imp_mesh.volume_mm3) / 1000.0) if len(imp_mesh.faces)
            else 0.0,
            "voxel_volume_ml": float(implant.sum() * tissues.voxel_volume_ml),
            "thickness_mm": t_bone,
            "watertight_mesh": imp_mesh.closed if len(imp_mesh.faces) else False,
            "sphere_centre_mm": des["sphere_centre_mm"] + shift,
            "sphere_radius_mm": des["sphere_radius_mm"],
            "fit_points": des["fit_points"],
        },
        "closure": {**check, "smallest_detectable_hole_mm": float(max(tissues.spacing))},
        "brain_overlap_voxels": brain_overlap,
        "min_brain_distance_mm": min_brain,
    }

