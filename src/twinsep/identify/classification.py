"""Stone & Goodrich (2006) classification of a craniopagus pair.

Definitions (Stone & Goodrich, Brain 2006; 129:1084-1095)
    * ``fusion``: *total* when the twins share a dural venous sinus, *partial* otherwise.
      Here: total iff :func:`twinsep.identify.shared.measure_shared` found a vessel structure that
      runs from one twin into the other.
    * ``orientation``: *angular* when the inter-twin longitudinal angle is below 140
      degrees, *vertical* otherwise. The angle is between the two long (inferior->superior)
      axes, each pointing towards the vertex (the junction), so 180 = vertex to vertex,
      taken with the axial rotation undone (see *How the pair is measured*).
    * ``type`` (total vertical only): axial facial rotation < 40 degrees = I, >= 140 = II,
      between = III; ``None`` for angular or partial pairs.

How each twin's orientation is measured (``method`` in the plan says which was used)
    1. Brain voxels of the twin (tissue brain, owner resolved to the nearest twin), world mm.
    2. Midsagittal plane: of the brain's three principal axes (PCA), the one whose mirror
       plane through the centroid best maps the brain onto itself (voxel overlap) is the
       left-right axis.
    3. Long axis and anterior direction in that plane: the brain's midsagittal *thickness
       profile* (brain thickness along left-right, on a 2 mm grid) is matched to the same
       profile of the MNI ICBM152 2009a template (:mod:`twinsep.mni`) over all in-plane
       rotations, both mirror senses and three scales (cross-correlation maximised over
       translation by FFT, coarse to fine, see below). The template's superior (+z) and
       anterior (+y) axes give the twin's long axis and anterior direction. The part of the
       brain cut away at the junction lowers the match but does not bias it much, unlike
       principal axes, which tilt by 10 degrees and more.
    4. With ``landmarks`` (each twin's nasion, world mm) the anterior direction is
       ``nasion - brain centroid`` projected perpendicular to the long axis instead.

    The search is coarse to fine: 4 mm profiles every 10 degrees (both mirror senses),
    the four best refined on 2 mm profiles (+-6 degrees in 2 degree steps, then scales
    0.9/1/1.1 and 1 degree, then 0.25 degree). At most 40 000 brain voxels are used
    (every n-th; weights compensate).

How the pair is measured (:func:`pair_geometry`)
    The *junction axis* ``n`` is the line from A's brain centroid to B's, projected onto
    the plane perpendicular to the axis of the rotation ``R`` that carries A's head frame
    (long axis, anterior, left-right) onto B's. For heads joined crown to crown ``R`` is a
    half-turn, and every direction in that plane is reversed by it, so the pose splits
    exactly into a turn about ``n`` and a symmetric tilt of the two long axes away from
    ``n``. ``axial_rotation_deg`` is the angle between the anterior directions projected
    perpendicular to ``n``, in [0, 180]. ``long_axis_angle_deg`` is the angle between the
    long axes once that turn is undone (each long axis written in its own twin's frame
    ``n``, anterior-perpendicular-to-``n``, their cross product), 180 = crown to crown in
    line. For a pair facing the same way it is the plain angle between the long axes;
    unlike the plain angle it does not change when one twin turns about the junction axis
    (the plain angle, ``long_axes_angle_deg``, is reported too). On the phantoms, whose
    twin B is turned about the contact normal after the long axes are set, these are the
    generator's ``long_axis_angle`` and ``axial_rotation`` (the centroid line is the
    contact normal within 0.5 degree there, except with ``junction_offset``).

Landmarks format: ``{"A": {"nasion": [x, y, z]}, "B": {"nasion": [x, y, z]}}`` (world mm,
LPS); ``{"nasion_A": [...], "nasion_B": [...]}`` is accepted too.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from twinsep.errors import InputError
from twinsep.identify.shared import SharedAnatomy
from twinsep.image import Volume, bounding_box, crop
from twinsep.labels import Owner, Tissue, resolve_owner

#: Stone & Goodrich thresholds (degrees).
ANGULAR_BELOW_DEG = 140.0
TYPE_I_BELOW_DEG = 40.0
TYPE_II_FROM_DEG = 140.0
#: Pixel size (mm) of the midsagittal thickness profiles.
PROFILE_MM = 2.0
_PROFILE_HALF = 64  # pixels either side of the centre: +-128 mm


class TwinOrientation(BaseModel):
    """Orientation of one twin's brain (world mm, unit vectors)."""

    centroid_mm: list[float]
    long_axis: list[float] = Field(description="inferior -> superior (towards the vertex)")
    anterior: list[float] = Field(description="posterior -> anterior, perpendicular to long")
    left_right: list[float]
    match_score: float = Field(description="normalised profile correlation with the template")
    anterior_from: str


class Classification(BaseModel):
    """Stone & Goodrich class; :meth:`to_plan` gives ``plan["classification"]``."""

    fusion: str
    orientation: str
    type: str | None
    axial_rotation_deg: float | None
    long_axis_angle_deg: float
    long_axes_angle_deg: float | None = Field(
        None, description="plain angle between the long axes as they lie (degrees)")
    junction_axis: list[float] | None = Field(
        None, description="unit vector, twin A -> twin B (world, LPS)")
    method: dict[str, str] = Field(default_factory=dict)
    twins: dict[str, TwinOrientation] = Field(default_factory=dict)

    def to_plan(self) -> dict[str, Any]:
        """Plain JSON-ready dict for ``plan["classification"]``."""
        return self.model_dump(mode="json")


# --- template ----------------------------------------------------------------------------
@functools.cache
def _template_points() -> tuple[np.ndarray, np.ndarray, float]:
    """MNI template brain in the midsagittal plane: (anterior, superior) mm of each brain
    column about the brain's centroid, the brain volume (mm^3) of each column, and the
    brain volume (ml). Brain = grey + white matter probability > 0.5."""
    from twinsep.mni import mni_maps

    maps = mni_maps()
    # (gm + wm) / 255 > 0.5 on the uint8 maps
    brain = (maps.gm.astype(np.int16) + maps.wm) > 127
    affine = maps.affine
    aff = affine[:3, :3]
    vox_mm3 = float(abs(np.linalg.det(aff)))
    if np.allclose(aff, np.diag(np.diag(aff))):
        # axis-aligned (as shipped): sum the left-right axis away, one point per column
        count = brain.sum(axis=0)
        jk = np.argwhere(count > 0)
        w = count[tuple(jk.T)].astype(float) * vox_mm3
        ant = jk[:, 0] * aff[1, 1] + affine[1, 3]
        sup = jk[:, 1] * aff[2, 2] + affine[2, 3]
    else:  # pragma: no cover - general affine
        xyz = np.argwhere(brain) @ aff.T + affine[:3, 3]
        w = np.full(len(xyz), vox_mm3)
        ant, sup = xyz[:, 1], xyz[:, 2]
    total = float(w.sum())
    ant = ant - (ant * w).sum() / total
    sup = sup - (sup * w).sum() / total
    return np.stack([ant, sup], 1), w, total / 1000.0


@functools.cache
def _template_profile(pix: float = PROFILE_MM) -> tuple[np.ndarray, float]:
    """Midsagittal thickness profile (mm) of the MNI template and its brain volume (ml).

    Image axes: rows = superior (+z), columns = anterior (+y), pixel ``pix`` mm, centred
    on the template brain's centroid, +-128 mm.
    """
    pts, w, ml = _template_points()
    return _profile(pts[:, 0], pts[:, 1], w, pix), float(ml)


@functools.cache
def _template_fft(pix: float) -> tuple[np.ndarray, float]:
    """FFT of the template profile (zero-padded to twice its size) and its norm."""
    tmpl, _ = _template_profile(pix)
    n = tmpl.shape[0]
    return np.fft.rfft2(tmpl, s=(2 * n, 2 * n)), float(np.sqrt((tmpl**2).sum()))


def _profile(ant: np.ndarray, sup: np.ndarray, weight_mm3: np.ndarray,
             pix: float = PROFILE_MM) -> np.ndarray:
    """Thickness image (mm): weights binned on the (sup, ant) grid / pixel area."""
    half = round(_PROFILE_HALF * PROFILE_MM / pix)
    n = 2 * half
    ia = np.floor(ant / pix).astype(np.int64) + half
    i_s = np.floor(sup / pix).astype(np.int64) + half
    ok = (ia >= 0) & (ia < n) & (i_s >= 0) & (i_s < n)
    img = np.bincount(i_s[ok] * n + ia[ok], weights=weight_mm3[ok], minlength=n * n)
    return img.reshape(n, n) / pix**2


def _best_shift(f_tmpl: np.ndarray, img: np.ndarray) -> float:
    """Max over translations of the cross-correlation (FFT of the template given)."""
    s = (2 * img.shape[0],) * 2
    cc = np.fft.irfft2(f_tmpl * np.conj(np.fft.rfft2(img, s=s)), s=s)
    return float(cc.max())


# --- one twin ----------------------------------------------------------------------------
def _symmetry_axis(pts: np.ndarray, centre: np.ndarray, axes: np.ndarray, mask: np.ndarray,
                   vol: Volume) -> int:
    """Index of the principal axis whose mirror plane maps the brain best onto itself."""
    scores = []
    sub = pts[:: max(1, len(pts) // 20000)]
    for a in range(3):
        n = axes[:, a]
        mirrored = sub - 2.0 * ((sub - centre) @ n)[:, None] * n[None]
        kji = np.rint(vol.world_to_index(mirrored)).astype(int)
        ok = np.all((kji >= 0) & (kji < np.array(mask.shape)), axis=1)
        hit = np.zeros(len(sub), bool)
        hit[ok] = mask[tuple(kji[ok].T)]
        scores.append(hit.mean())
    return int(np.argmax(scores))


#: Orientation search (see :func:`twin_orientation`): coarse pixel (mm), angle step
#: (degrees) and how many coarse candidates are refined.
COARSE_PIXEL_MM = 4.0
COARSE_STEP_DEG = 10.0
COARSE_KEEP = 4
#: Most brain points used for the profiles (every n-th voxel, weights compensate).
MAX_POINTS = 40000


def _search(u: np.ndarray, v: np.ndarray, w: np.ndarray, scale0: float
            ) -> tuple[float, float, int, float]:
    """Best (score, angle, mirror, scale) of the profile match, coarse to fine.

    1. :data:`COARSE_PIXEL_MM` profiles (every 4th point), every
       :data:`COARSE_STEP_DEG` degrees, both mirror senses, the volume-matched scale;
    2. the :data:`COARSE_KEEP` best (at least 15 degrees apart) refined at
       :data:`PROFILE_MM` over +-6 degrees in 2 degree steps;
    3. around the best: +-2 degrees in 1 degree steps x scales 0.9, 1, 1.1 of the
       volume-matched scale; 4. +-0.75 degree in 0.25 degree steps.
    Ties go to the first evaluated, so the result is deterministic.
    """
    cache: dict[tuple[float, int, float], float] = {}

    def score(phi_deg: float, mirror: int, scale: float) -> float:
        key = (round(float(phi_deg), 6), mirror, round(float(scale), 9))
        if key not in cache:
            t = np.deg2rad(phi_deg)
            vv = mirror * v
            ant = (np.cos(t) * u - np.sin(t) * vv) / scale
            sup = (np.sin(t) * u + np.cos(t) * vv) / scale
            f_tmpl, _ = _template_fft(PROFILE_MM)
            cache[key] = _best_shift(f_tmpl, _profile(ant, sup, w / scale**3))
        return cache[key]

    # the coarse profiles need fewer points: every 4th (weights compensate)
    uc, vc, wc = (u[::4], v[::4], w[::4] * (len(w) / len(w[::4]))) if len(u) > 10000 else (u, v, w)

    def coarse_score(phi_deg: float, mirror: int) -> float:
        t = np.deg2rad(phi_deg)
        vv = mirror * vc
        ant = (np.cos(t) * uc - np.sin(t) * vv) / scale0
        sup = (np.sin(t) * uc + np.cos(t) * vv) / scale0
        f_tmpl, _ = _template_fft(COARSE_PIXEL_MM)
        return _best_shift(f_tmpl, _profile(ant, sup, wc / scale0**3, COARSE_PIXEL_MM))

    coarse = [(coarse_score(phi, m), float(phi), m)
              for m in (1, -1) for phi in np.arange(0.0, 360.0, COARSE_STEP_DEG)]
    order = sorted(range(len(coarse)), key=lambda i: (-coarse[i][0], i))
    picked: list[tuple[float, int]] = []
    for i in order:
        _, phi, m = coarse[i]
        if all(m != pm or abs((phi - pp + 180.0) % 360.0 - 180.0) >= 15.0 for pp, pm in picked):
            picked.append((phi, m))
        if len(picked) == COARSE_KEEP:
            break
    best = (-np.inf, 0.0, 1, scale0)
    for phi0, m in picked:
        for p in phi0 + np.arange(-6.0, 6.01, 2.0):
            sc = score(p, m, scale0)
            if sc > best[0]:
                best = (sc, float(p), m, scale0)
    _, phi0, m, _ = best
    for s in (0.9 * scale0, scale0, 1.1 * scale0):
        for p in phi0 + np.arange(-2.0, 2.01, 1.0):
            sc = score(p, m, s)
            if sc > best[0]:
                best = (sc, float(p), m, s)
    _, phi0, m, s = best
    for p in phi0 + np.arange(-0.75, 0.76, 0.25):
        sc = score(p, m, s)
        if sc > best[0]:
            best = (sc, float(p), m, s)
    return best


def twin_orientation(vol: Volume, brain: np.ndarray, nasion: np.ndarray | None = None
                     ) -> TwinOrientation:
    """Long axis, anterior and left-right directions of one twin's brain.

    Parameters
    ----------
    vol : Volume
        Geometry of ``brain``.
    brain : ndarray of bool
        The twin's brain voxels (array order).
    nasion : (3,) ndarray, optional
        The twin's nasion (world mm); sets the anterior direction.
    """
    idx = np.argwhere(brain)
    n_vox = len(idx)
    if n_vox < 50:
        raise InputError("too few brain voxels to measure a twin's orientation")
    centre = vol.index_to_world(idx.mean(0))
    step = max(1, n_vox // MAX_POINTS)  # subsample large (fine) grids; weights compensate
    pts = vol.index_to_world(idx[::step])
    rel = pts - centre
    _, axes = np.linalg.eigh(np.cov(rel.T))
    lr_i = _symmetry_axis(pts, centre, axes, brain, vol)
    e1, e2 = (axes[:, a] for a in range(3) if a != lr_i)
    _, tmpl_ml = _template_profile(PROFILE_MM)
    vox_mm3 = vol.voxel_volume_mm3
    scale0 = (n_vox * vox_mm3 / 1000.0 / tmpl_ml) ** (1.0 / 3.0)
    u, v = rel @ e1, rel @ e2
    w = np.full(len(u), vox_mm3 * n_vox / len(u))
    sc, phi, mirror, s = _search(u, v, w, scale0)
    t = np.deg2rad(phi)
    # template anterior/superior axes expressed in (u, mirror * v), then in world
    ant_dir = np.cos(t) * e1 - np.sin(t) * mirror * e2
    sup_dir = np.sin(t) * e1 + np.cos(t) * mirror * e2
    _, tmpl_norm = _template_fft(PROFILE_MM)
    ant = (np.cos(t) * u - np.sin(t) * mirror * v) / s
    sup = (np.sin(t) * u + np.cos(t) * mirror * v) / s
    norm = tmpl_norm * float(np.sqrt((_profile(ant, sup, w / s**3) ** 2).sum()))
    anterior_from = "brain shape (MNI template match)"
    if nasion is not None:
        a = np.asarray(nasion, float) - centre
        a = a - (a @ sup_dir) * sup_dir
        if np.linalg.norm(a) > 1e-6:
            ant_dir = a / np.linalg.norm(a)
            anterior_from = "nasion landmark"
    ant_dir = ant_dir / np.linalg.norm(ant_dir)
    sup_dir = sup_dir / np.linalg.norm(sup_dir)
    return TwinOrientation(
        centroid_mm=[float(x) for x in centre],
        long_axis=[float(x) for x in sup_dir],
        anterior=[float(x) for x in ant_dir],
        left_right=[float(x) for x in np.cross(sup_dir, ant_dir)],
        match_score=float(sc / norm) if norm > 0 else 0.0,
        anterior_from=anterior_from,
    )


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def nasions(landmarks: dict | None) -> dict[str, np.ndarray | None]:
    """Each twin's nasion (world mm) from ``landmarks`` (``{"A": {"nasion": xyz}}`` or
    ``{"nasion_A": xyz}``), None where it is not given."""
    out: dict[str, np.ndarray | None] = {"A": None, "B": None}
    if not landmarks:
        return out
    for twin in ("A", "B"):
        val = None
        if isinstance(landmarks.get(twin), dict):
            val = landmarks[twin].get("nasion")
        val = landmarks.get(f"nasion_{twin}", landmarks.get(f"nasion_{twin.lower()}", val))
        if val is not None:
            arr = np.asarray(val, float).ravel()
            if arr.shape != (3,) or not np.all(np.isfinite(arr)):
                raise InputError(f"nasion of twin {twin} must be three numbers (world mm)")
            out[twin] = arr
    return out


class PairGeometry(BaseModel):
    """Relative pose of the twins, split into a turn about the junction axis and a tilt."""

    junction_axis: list[float] = Field(description="unit vector, twin A -> twin B")
    long_axis_angle_deg: float
    axial_rotation_deg: float
    long_axes_angle_deg: float = Field(description="plain angle between the two long axes")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def pair_geometry(a: TwinOrientation, b: TwinOrientation) -> PairGeometry:
    """Longitudinal angle and axial rotation of a pair about its junction axis.

    The junction axis ``n`` is the line from twin A's brain centroid to twin B's, made
    equally inclined to both twins' head frames: it is projected onto the plane
    perpendicular to the axis ``s`` of the rotation that carries A's frame (long axis,
    anterior, left-right) onto B's. When that rotation is a half-turn (as for two heads
    joined crown to crown, whatever their axial rotation), every direction ``n`` in that
    plane satisfies ``R n = -n``: the pose splits exactly into a turn about ``n`` and a
    symmetric tilt of the two long axes away from it. The centroid line alone leans with
    an off-centre junction; the projection removes the part of that lean that would
    otherwise read as a tilt of both heads.

    * ``axial_rotation_deg``: angle between the anterior directions projected
      perpendicular to ``n`` (0 = same way, 180 = opposite).
    * ``long_axis_angle_deg``: angle between the long axes with the axial rotation
      undone, i.e. each long axis written in its own twin's frame (``n``, anterior
      perpendicular to ``n``, their cross product) and the two compared; 180 = crown to
      crown on one line. It equals the plain angle between the long axes when the pair
      faces the same way (rotation 0), and unlike that plain angle it does not change
      when one twin turns about the junction axis.
    """
    la, lb = (np.asarray(x.long_axis, float) for x in (a, b))
    pa, pb = (np.asarray(x.anterior, float) for x in (a, b))
    plain = _angle(la, lb)
    fa = np.stack([la, pa, np.cross(la, pa)], 1)
    fb = np.stack([lb, pb, np.cross(lb, pb)], 1)
    r = fb @ fa.T
    n0 = np.asarray(b.centroid_mm, float) - np.asarray(a.centroid_mm, float)
    n = _unit(n0) if np.linalg.norm(n0) > 1e-6 else _unit(la - lb)
    turn = np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
    if turn >= 90.0:
        w, vec = np.linalg.eigh(0.5 * (r + r.T))
        s_ax = vec[:, int(np.argmax(w))]
        proj = n - (n @ s_ax) * s_ax
        if np.linalg.norm(proj) > 0.25:
            n = _unit(proj)
    qa, qb = pa - (pa @ n) * n, pb - (pb @ n) * n
    if min(np.linalg.norm(qa), np.linalg.norm(qb)) < 1e-3:  # a face looks along the axis
        axis = la - lb
        axis = _unit(axis) if np.linalg.norm(axis) > 1e-9 else la
        rot = _angle(pa - (pa @ axis) * axis, pb - (pb @ axis) * axis)
        long_angle = plain
    else:
        qa, qb = _unit(qa), _unit(qb)
        rot = _angle(qa, qb)
        ca = np.array([la @ n, la @ qa, la @ np.cross(n, qa)])
        cb = np.array([lb @ n, lb @ qb, lb @ np.cross(n, qb)])
        long_angle = _angle(ca, cb)
    return PairGeometry(junction_axis=[float(x) for x in n], long_axis_angle_deg=long_angle,
                        axial_rotation_deg=rot, long_axes_angle_deg=plain)


def classify(tissues: Volume, owner: Volume, shared: SharedAnatomy,
             landmarks: dict | None = None) -> Classification:
    """Classify the pair (Stone & Goodrich 2006).

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes (0/1/2, 3 = ambiguous) on the same grid.
    shared : SharedAnatomy
        From :func:`twinsep.identify.shared.measure_shared` (its shared vessels decide the fusion).
    landmarks : dict, optional
        Each twin's nasion in world mm: ``{"A": {"nasion": [x, y, z]}, "B": {...}}``.

    Returns
    -------
    Classification
        ``fusion``, ``orientation``, ``type``, ``axial_rotation_deg`` (degrees, [0, 180]),
        ``long_axis_angle_deg`` (degrees, 180 = vertex to vertex), ``method`` and each
        twin's measured orientation.
    """
    own = shared.owner_resolved
    if own is None or own.shape != tissues.shape:
        own = resolve_owner(tissues, owner)
    brain = np.asarray(tissues.array) == Tissue.BRAIN
    nas = nasions(landmarks)
    twins = {}
    for name, code in (("A", Owner.A), ("B", Owner.B)):
        m = brain & (own == code)
        if not m.any():
            raise InputError(f"twin {name} has no brain voxels")
        box = bounding_box(m, 1)
        sub = crop(tissues, box, m[box])
        twins[name] = twin_orientation(sub, sub.array, nas[name])
    geo = pair_geometry(twins["A"], twins["B"])
    long_angle, rotation = geo.long_axis_angle_deg, geo.axial_rotation_deg
    fusion = "total" if shared.vessels else "partial"
    orientation = "angular" if long_angle < ANGULAR_BELOW_DEG else "vertical"
    typ = None
    if fusion == "total" and orientation == "vertical":
        typ = "I" if rotation < TYPE_I_BELOW_DEG else ("II" if rotation >= TYPE_II_FROM_DEG
                                                       else "III")
    ant_src = {twins[k].anterior_from for k in ("A", "B")}
    method = {
        "fusion": "total iff a vessel structure (dural venous sinus) runs from one twin into "
                  f"the other ({len(shared.vessels)} found)",
        "orientation": f"angular iff long_axis_angle_deg < {ANGULAR_BELOW_DEG:g}",
        "type": f"total vertical only: axial rotation < {TYPE_I_BELOW_DEG:g} I, >= "
                f"{TYPE_II_FROM_DEG:g} II, else III",
        "long_axis_angle_deg": "angle between the twins' inferior->superior brain axes "
                               "with the axial rotation about the junction axis undone "
                               "(midsagittal plane by mirror symmetry of the principal axes; "
                               "in-plane axes by matching the MNI template's midsagittal "
                               "thickness profile)",
        "axial_rotation_deg": "angle between the anterior directions ("
                              + " / ".join(sorted(ant_src)) + ") projected perpendicular to "
                              "the junction axis",
        "junction_axis": "brain centroid A -> B, projected perpendicular to the axis of the "
                         "rotation carrying A's head frame onto B's",
    }
    return Classification(
        fusion=fusion, orientation=orientation, type=typ, axial_rotation_deg=rotation,
        long_axis_angle_deg=long_angle, long_axes_angle_deg=geo.long_axes_angle_deg,
        junction_axis=geo.junction_axis, method=method, twins=twins,
    )
