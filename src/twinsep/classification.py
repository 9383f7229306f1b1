"""Stone & Goodrich (2006) classification of a craniopagus pair.

Definitions (Stone & Goodrich, Brain 2006; 129:1084-1095)
    * ``fusion``: *total* when the twins share a dural venous sinus, *partial* otherwise.
      Here: total iff :func:`twinsep.shared.measure_shared` found a vessel structure that
      runs from one twin into the other.
    * ``orientation``: *angular* when the inter-twin longitudinal angle is below 140
      degrees, *vertical* otherwise. The angle is between the two long (inferior->superior)
      axes, each pointing towards the vertex (the junction), so 180 = vertex to vertex.
    * ``type`` (total vertical only): axial facial rotation < 40 degrees = I, >= 140 = II,
      between = III; ``None`` for angular or partial pairs.

How each twin's orientation is measured (``method`` in the plan says which was used)
    1. Brain voxels of the twin (tissue brain, owner resolved to the nearest twin), world mm.
    2. Midsagittal plane: of the brain's three principal axes (PCA), the one whose mirror
       plane through the centroid best maps the brain onto itself (voxel overlap) is the
       left-right axis.
    3. Long axis and anterior direction in that plane: the brain's midsagittal *thickness
       profile* (brain thickness along left-right, on a 2 mm grid) is matched to the same
       profile of the MNI ICBM152 2009a template (shipped with nilearn) over all in-plane
       rotations, both mirror senses and three scales (cross-correlation maximised over
       translation by FFT, then refined to 0.5 degree). The template's superior (+z) and
       anterior (+y) axes give the twin's long axis and anterior direction. The part of the
       brain cut away at the junction lowers the match but does not bias it much, unlike
       principal axes, which tilt by 10 degrees and more.
    4. With ``landmarks`` (each twin's nasion, world mm) the anterior direction is
       ``nasion - brain centroid`` projected perpendicular to the long axis instead.

    ``long_axis_angle_deg`` is the angle between the two long axes. ``axial_rotation_deg``
    is the angle between the two anterior directions projected on the plane perpendicular
    to the shared long axis ``normalise(long_A - long_B)``, in [0, 180].

Landmarks format: ``{"A": {"nasion": [x, y, z]}, "B": {"nasion": [x, y, z]}}`` (world mm,
LPS); ``{"nasion_A": [...], "nasion_B": [...]}`` is accepted too.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Owner, Tissue
from twinsep.shared import SharedAnatomy, resolve_owner

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
    method: dict[str, str] = Field(default_factory=dict)
    twins: dict[str, TwinOrientation] = Field(default_factory=dict)

    def to_plan(self) -> dict[str, Any]:
        """Plain JSON-ready dict for ``plan["classification"]``."""
        return self.model_dump(mode="json")


# --- template ----------------------------------------------------------------------------
@functools.cache
def _template_profile() -> tuple[np.ndarray, float]:
    """Midsagittal thickness profile (mm) of the MNI template and its brain volume (ml).

    Image axes: rows = superior (+z) from -128 mm, columns = anterior (+y), pixel
    :data:`PROFILE_MM`, centred on the template brain's centroid.
    """
    import importlib.util
    from pathlib import Path

    import nibabel as nib

    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:  # pragma: no cover
        raise InputError("nilearn (MNI template) is needed for the classification")
    d = Path(spec.origin).parent / "datasets" / "data"
    gm = nib.load(d / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz")
    wm = nib.load(d / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz")
    p = (np.asarray(gm.dataobj, np.float32) + np.asarray(wm.dataobj, np.float32)) / 255.0
    idx = np.argwhere(p > 0.5)
    xyz = idx @ gm.affine[:3, :3].T + gm.affine[:3, 3]  # RAS mm
    vox_ml = abs(np.linalg.det(gm.affine[:3, :3])) / 1000.0
    xyz = xyz - xyz.mean(0)
    w = np.full(len(xyz), abs(np.linalg.det(gm.affine[:3, :3])))
    img = _profile(xyz[:, 1], xyz[:, 2], w)
    return img, float(len(xyz) * vox_ml)


def _profile(ant: np.ndarray, sup: np.ndarray, weight_mm3: np.ndarray) -> np.ndarray:
    """Thickness image (mm): weights binned on the (sup, ant) grid / pixel area."""
    n = 2 * _PROFILE_HALF
    edges = (np.arange(n + 1) - _PROFILE_HALF) * PROFILE_MM
    img, _, _ = np.histogram2d(sup, ant, bins=(edges, edges), weights=weight_mm3)
    return img / PROFILE_MM**2


def _best_shift(f_tmpl: np.ndarray, img: np.ndarray) -> float:
    """Max over translations of the cross-correlation (FFT of the template given)."""
    cc = np.fft.irfft2(f_tmpl * np.conj(np.fft.rfft2(img, s=(2 * img.shape[0],) * 2)),
                       s=(2 * img.shape[0],) * 2)
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
    if brain.sum() < 50:
        raise InputError("too few brain voxels to measure a twin's orientation")
    pts = vol.index_to_world(np.argwhere(brain))
    centre = pts.mean(0)
    rel = pts - centre
    _, axes = np.linalg.eigh(np.cov(rel.T))
    lr_i = _symmetry_axis(pts, centre, axes, brain, vol)
    e1, e2 = (axes[:, a] for a in range(3) if a != lr_i)
    tmpl, tmpl_ml = _template_profile()
    n = tmpl.shape[0]
    f_tmpl = np.fft.rfft2(tmpl, s=(2 * n, 2 * n))
    vox_mm3 = vol.voxel_volume_mm3
    scale0 = (len(pts) * vox_mm3 / 1000.0 / tmpl_ml) ** (1.0 / 3.0)
    step = max(1, len(rel) // 60000)  # subsample large (fine) grids; weights compensate
    u, v = rel[::step] @ e1, rel[::step] @ e2
    w = np.full(len(u), vox_mm3 * len(rel) / len(u))

    def score(phi_deg: float, mirror: int, scale: float) -> float:
        t = np.deg2rad(phi_deg)
        vv = mirror * v
        ant = (np.cos(t) * u - np.sin(t) * vv) / scale
        sup = (np.sin(t) * u + np.cos(t) * vv) / scale
        return _best_shift(f_tmpl, _profile(ant, sup, w / scale**3))

    coarse = [(score(phi, m, scale0), phi, m) for m in (1, -1) for phi in range(0, 360, 4)]
    _, phi, mirror = max(coarse)
    best = (-np.inf, phi, scale0)
    for s in (0.9 * scale0, scale0, 1.1 * scale0):
        for p in np.arange(phi - 4.0, phi + 4.01, 1.0):
            best = max(best, (score(p, mirror, s), p, s))
    _, phi, s = best
    for p in np.arange(phi - 1.0, phi + 1.01, 0.25):
        best = max(best, (score(p, mirror, s), p, s))
    sc, phi, s = best
    t = np.deg2rad(phi)
    # template anterior/superior axes expressed in (u, mirror * v), then in world
    ant_dir = np.cos(t) * e1 - np.sin(t) * mirror * e2
    sup_dir = np.sin(t) * e1 + np.cos(t) * mirror * e2
    norm = float(np.sqrt((tmpl**2).sum() * (_profile(u / s, mirror * v / s, w / s**3) ** 2).sum()))
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


def _nasions(landmarks: dict | None) -> dict[str, np.ndarray | None]:
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


def classify(tissues: Volume, owner: Volume, shared: SharedAnatomy,
             landmarks: dict | None = None) -> Classification:
    """Classify the pair (Stone & Goodrich 2006).

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes (0/1/2, 3 = ambiguous) on the same grid.
    shared : SharedAnatomy
        From :func:`twinsep.shared.measure_shared` (its shared vessels decide the fusion).
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
    nas = _nasions(landmarks)
    twins = {}
    for name, code in (("A", Owner.A), ("B", Owner.B)):
        m = brain & (own == code)
        box = tuple(slice(max(int(a.min()) - 1, 0), int(a.max()) + 2) for a in np.nonzero(m))
        if not m.any():
            raise InputError(f"twin {name} has no brain voxels")
        start = np.array([s.start for s in box], float)
        sub = Volume(m[box], tuple(tissues.index_to_world(start)), tissues.spacing,
                     tissues.direction)
        twins[name] = twin_orientation(sub, sub.array, nas[name])
    la, lb = (np.asarray(twins[k].long_axis) for k in ("A", "B"))
    long_angle = _angle(la, lb)
    axis = la - lb
    axis = axis / np.linalg.norm(axis) if np.linalg.norm(axis) > 1e-9 else la
    pa, pb = (np.asarray(twins[k].anterior) for k in ("A", "B"))
    pa_p, pb_p = pa - (pa @ axis) * axis, pb - (pb @ axis) * axis
    rotation = _angle(pa_p, pb_p)
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
                               "(midsagittal plane by mirror symmetry of the principal axes; "
                               "in-plane axes by matching the MNI template's midsagittal "
                               "thickness profile)",
        "axial_rotation_deg": "angle between the anterior directions ("
                              + " / ".join(sorted(ant_src)) + ") projected perpendicular to "
                              "the shared long axis",
    }
    return Classification(
        fusion=fusion, orientation=orientation, type=typ, axial_rotation_deg=rotation,
        long_axis_angle_deg=long_angle, method=method, twins=twins,
    )
