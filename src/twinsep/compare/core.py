"""Growth between two scans of the same twins: registration, twin matching, changes.

``compare_cases(earlier, later, out)`` registers the later scan to the earlier one (rigid
then affine, SimpleITK, multi-resolution, Mattes mutual information on the CT inside a
head mask), maps the later owner map into the earlier frame and matches twin A/B by overlap
(so a later case whose identify stage called the twins the other way round is matched
correctly), checks that the two scans show the same twins, and tabulates what changed:

* per-twin tissue volumes (ml),
* shared vessel volume (ml, all shared vessels) and largest shared vessel diameter (mm),
* junction area and brain contact area (cm^2),
* cut area (cm^2) and risk of the minimum-risk cut when both cases have ``separation``,

each as ``{earlier, later, change, change_per_month}``. Twin names follow the **earlier**
case. Months between the scans come from ``--months`` or from the ages at the scans in the
cases' ``case.json`` (``source.age_at_scan_days``: ingest keeps that interval, never the
dates); without either, per-month changes are null and a note says so.

Outputs: ``OUT/comparison.json`` (deterministic), ``OUT/growth.png`` (the two junctions in
the same, earlier, frame with the shared vessels in red, and a chart of the relative
changes), the ``growth`` section of the later case's plan.json and ``figures.growth``
(a copy of the figure in ``LATER/figures/growth.png``).

Same-twins check (:data:`CHECKS`): after registration the head masks must overlap with a
Dice of at least 0.85, the brains with at least 0.9, each matched twin's owner region with
a Dice of at least 0.75, the affine must be close to a uniform scale (axis ratio at most
1.2), the
Stone & Goodrich classification (fusion, orientation, type) must agree when both plans have
one, the later head must not be smaller (affine volume ratio 0.9 to 2.5) and the later
scan must not be at a younger age than the earlier one. A pair that fails is refused with
:class:`~twinsep.errors.InputError` naming the failed checks, unless ``force``, in which
case the comparison is written with the failures under ``warnings``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twinsep.casefolder import Case
from twinsep.errors import InputError
from twinsep.image import Volume, bounding_box
from twinsep.labels import Owner, Tissue, resolve_owner
from twinsep.mesh import iso_surface
from twinsep.progress import Progress

#: Days per month used to turn the days between the scans into months.
DAYS_PER_MONTH = 365.25 / 12.0
#: Thresholds of the same-twins check.
CHECKS = {
    "head_dice_min": 0.85,
    "twin_dice_min": 0.75,
    "brain_dice_min": 0.9,
    "volume_ratio_min": 0.9,
    "volume_ratio_max": 2.5,
    "anisotropy_max": 1.2,
}
#: Working resolution of the registration (mm); finer scans are resampled to it.
REGISTRATION_SPACING_MM = 3.0
_TISSUES = ("scalp", "bone", "dura", "brain", "vessel")


# --- measures of one case ------------------------------------------------------------------
@dataclass
class CaseData:
    """What the comparison needs from one case folder."""

    case: Case
    ct: Volume
    tissues: Volume
    owner: Volume
    plan: dict
    info: dict
    shared: dict
    measured_from: str
    centroids: dict[str, np.ndarray]
    _vessel_mask: np.ndarray | None = field(default=None, repr=False)

    def vessel_mask(self) -> np.ndarray:
        """Boolean mask of the shared vessels (array order), computed on first use."""
        if self._vessel_mask is None:
            from twinsep.identify.shared import shared_vessels

            own = resolve_owner(self.tissues, self.owner)
            _, mask = shared_vessels(self.tissues, own)
            self._vessel_mask = (np.zeros(self.tissues.shape, bool) if mask is None
                                 else np.asarray(mask, bool))
        return self._vessel_mask


def brain_centroids(tissues: Volume, owner: Volume) -> dict[str, np.ndarray]:
    t = np.asarray(tissues.array)
    o = np.asarray(owner.array)
    out = {}
    for name, code in (("A", Owner.A), ("B", Owner.B)):
        idx = np.argwhere((t == Tissue.BRAIN) & (o == code))
        if len(idx) == 0:
            idx = np.argwhere(o == code)
        if len(idx) == 0:
            raise InputError(f"{owner}: twin {name} has no voxels in labels/twins.nii.gz")
        out[name] = tissues.index_to_world(idx.mean(0))
    return out


def junction_area_smooth_cm2(tissues: Volume, owner: Volume) -> float:
    """Area (cm^2) of the A/B interface inside the head, on a smoothed interface field.

    Like :func:`twinsep.identify.shared.junction_area_cm2` (zero surface of the difference of the
    distances to twin A and twin B, kept inside the head), but the field is smoothed by a
    Gaussian of one voxel before marching cubes. The plain voxel-set surface is a
    staircase whose extra area depends on how the interface lies on the grid (on the
    phantoms 7.6 % with the junction along a grid axis, 9.8 % turned by 9 degrees), which
    a comparison of two scans placed differently would report as growth; the smoothed
    surface is within 3.3 +- 0.3 % of the truth in both placements.
    """
    from scipy import ndimage as ndi

    own = resolve_owner(tissues, owner)
    a, b = own == Owner.A, own == Owner.B
    if not a.any() or not b.any():
        return 0.0
    near = ndi.binary_dilation(a, iterations=3) & ndi.binary_dilation(b, iterations=3)
    if not near.any():
        return 0.0
    box = bounding_box(near, 6)
    sp = tissues.spacing_kji
    field = (ndi.distance_transform_edt(~b[box], sampling=sp)
             - ndi.distance_transform_edt(~a[box], sampling=sp)).astype(np.float32)
    field = ndi.gaussian_filter(field, 1.0)
    if field.min() >= 0 or field.max() <= 0 or min(field.shape) < 2:
        return 0.0
    verts, faces = iso_surface(field, 0.0)
    m = tissues.direction_matrix * np.asarray(tissues.spacing)[None, :]
    tri = verts[faces][..., ::-1] @ m.T  # index (k, j, i) -> world offsets (mm)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    head = ndi.gaussian_filter((np.asarray(tissues.array)[box] > 0).astype(np.float32), 0.7)
    keep = ndi.map_coordinates(head, verts[faces].mean(1).T, order=1) >= 0.5
    return float(area[keep].sum() / 100.0)


def _measures(d: CaseData, swap: bool) -> dict[str, Any]:
    """Measures of a case, with twin names swapped when ``swap``."""
    sh = d.shared
    vessels = sh.get("vessels") or []
    vol = float(sum(float(v.get("volume_ml", 0.0)) for v in vessels))
    diam = max((float(v.get("max_diameter_mm", 0.0)) for v in vessels), default=0.0)
    tv = sh.get("tissue_volumes_ml") or {}
    names = {"A": "B", "B": "A"} if swap else {"A": "A", "B": "B"}
    out: dict[str, Any] = {
        "junction_area_cm2": junction_area_smooth_cm2(d.tissues, d.owner),
        "junction_area_plan_cm2": sh.get("junction_area_cm2"),
        "brain_contact_area_cm2": sh.get("brain_contact_area_cm2"),
        "shared_vessel_volume_ml": vol,
        "shared_vessel_max_diameter_mm": diam,
        "tissue_volumes_ml": {
            twin: {t: (tv.get(names[twin]) or {}).get(t) for t in _TISSUES} for twin in "AB"
        },
    }
    sep = d.plan.get("separation")
    if isinstance(sep, dict):
        area = sep.get("cut_area_total_cm2", sep.get("cut_area_cm2"))
        out["cut_area_cm2"] = area
        out["cut_risk"] = sep.get("total_risk")
    return out


# --- registration ----------------------------------------------------------------------------
def _working_image(vol: Volume, step_mm: float):
    """CT as float32, resampled to ``step_mm`` when finer (keeping direction and extent)."""
    import SimpleITK as sitk

    img = sitk.Cast(vol.to_sitk(), sitk.sitkFloat32)
    img = sitk.Clamp(img, sitk.sitkFloat32, -1000.0, 1500.0)
    sp = np.asarray(vol.spacing)
    if sp.min() >= step_mm:
        return img
    new_sp = np.maximum(sp, step_mm)
    size = [math.ceil(n * s / t) for n, s, t in zip(vol.size_ijk, sp, new_sp, strict=True)]
    img = sitk.SmoothingRecursiveGaussian(img, float(step_mm) / 2.0)
    return sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, vol.origin,
                         tuple(float(v) for v in new_sp), vol.direction, -1000.0)


def _head_mask(vol: Volume, like) -> Any:
    import SimpleITK as sitk

    m = sitk.Cast(vol.with_array((np.asarray(vol.array) > 0).astype(np.uint8)).to_sitk(),
                  sitk.sitkUInt8)
    m = sitk.Resample(m, like, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.BinaryDilate(m, [2, 2, 2])


def _rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotation matrix turning unit vector ``u`` onto unit vector ``v``."""
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    w = np.cross(u, v)
    s, c = np.linalg.norm(w), float(u @ v)
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        p = np.cross(u, [1.0, 0.0, 0.0])
        if np.linalg.norm(p) < 1e-6:
            p = np.cross(u, [0.0, 1.0, 0.0])
        return _axis_angle(p, math.pi)
    return _axis_angle(w, math.atan2(s, c))


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _method(fixed_mask, levels: tuple[int, ...], iterations: int):
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(0.25, seed=7)
    reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=iterations,
        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(levels))
    reg.SetSmoothingSigmasPerLevel([max(0.0, (f - 1) * 1.0) for f in levels])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    reg.SetNumberOfThreads(1)  # deterministic sums
    return reg


def _unwrap(tr):
    """The single transform inside a registration result (which may be a composite)."""
    import SimpleITK as sitk

    if tr.GetName() == "CompositeTransform":
        comp = sitk.CompositeTransform(tr)
        return comp.GetNthTransform(comp.GetNumberOfTransforms() - 1)
    return tr


@dataclass
class Registration:
    """Result of :func:`register` (transforms map earlier-frame points to the later frame)."""

    rigid: Any
    affine: Any
    metric_rigid: float
    metric_affine: float
    initial: dict
    seconds: float

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(self.affine.GetMatrix(), float).reshape(3, 3)
        c = np.asarray(self.affine.GetCenter(), float)
        t = np.asarray(self.affine.GetTranslation(), float)
        return a, c + t - a @ c

    def to_later(self, xyz: np.ndarray) -> np.ndarray:
        """Earlier-frame world points (N, 3) mm to the later frame."""
        a, b = self._matrix()
        return np.atleast_2d(np.asarray(xyz, float)) @ a.T + b

    def to_earlier(self, xyz: np.ndarray) -> np.ndarray:
        """Later-frame world points (N, 3) mm to the earlier frame (inverse affine)."""
        a, b = self._matrix()
        return (np.atleast_2d(np.asarray(xyz, float)) - b) @ np.linalg.inv(a).T

    def anisotropy(self) -> float:
        """Largest over smallest singular value of the affine's matrix (1 = no shear)."""
        sv = np.linalg.svd(np.asarray(self.affine.GetMatrix()).reshape(3, 3), compute_uv=False)
        return float(sv.max() / sv.min())

    def volume_ratio(self) -> float:
        """Volume of the later anatomy over the earlier one (determinant of the affine)."""
        return float(abs(np.linalg.det(np.asarray(self.affine.GetMatrix()).reshape(3, 3))))

    def parameters(self) -> dict:
        """JSON-ready parameters of both stages."""
        r, a = self.rigid, self.affine
        return {
            "direction": "earlier frame -> later frame (ITK fixed = earlier, moving = later)",
            "rigid": {
                "type": "Euler3DTransform",
                "center_mm": list(r.GetCenter()),
                "rotation_deg": [math.degrees(v) for v in r.GetParameters()[:3]],
                "translation_mm": list(r.GetParameters()[3:]),
                "matrix": list(r.GetMatrix()),
                "metric": self.metric_rigid,
            },
            "affine": {
                "type": "AffineTransform",
                "center_mm": list(a.GetCenter()),
                "matrix": list(a.GetMatrix()),
                "translation_mm": list(a.GetTranslation()),
                "volume_ratio": self.volume_ratio(),
                "anisotropy": self.anisotropy(),
                "metric": self.metric_affine,
            },
            "metric": "Mattes mutual information (negative: lower is better)",
            "initial": self.initial,
        }


def register(earlier: CaseData, later: CaseData, *,
             progress: Progress | None = None) -> Registration:
    """Rigid then affine registration of the later CT to the earlier one.

    The start is found from the brain centroids: the A-B axis of one scan is turned onto
    the other's (both pairings) and 8 turns about that axis are scored with the metric at
    the coarsest level; the best start is refined by a 3-level rigid and then a 3-level
    affine registration (shrink 4, 2, 1 on a grid of about
    :data:`REGISTRATION_SPACING_MM`).
    """

    import SimpleITK as sitk

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # deterministic sums
    try:
        return _register(earlier, later, progress)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _register(earlier: CaseData, later: CaseData, progress: Progress | None) -> Registration:
    import time

    import SimpleITK as sitk

    report = progress or (lambda *_: None)
    t0 = time.perf_counter()
    fixed = _working_image(earlier.ct, REGISTRATION_SPACING_MM)
    moving = _working_image(later.ct, REGISTRATION_SPACING_MM)
    fmask = _head_mask(earlier.tissues, fixed)
    ea, eb = earlier.centroids["A"], earlier.centroids["B"]
    mid_e = 0.5 * (ea + eb)
    # --- start: score candidate rotations at the coarsest level -----------------------
    report("registering: start", 0.0)
    score = _method(fmask, (4,), 0)
    best = None
    for pairing in ("A-A", "A-B"):
        la, lb = later.centroids["A"], later.centroids["B"]
        if pairing == "A-B":
            la, lb = lb, la
        mid_l = 0.5 * (la + lb)
        r0 = _rotation_between(eb - ea, lb - la)
        axis = (lb - la) / max(np.linalg.norm(lb - la), 1e-9)
        for k in range(8):
            rot = _axis_angle(axis, k * math.pi / 4) @ r0
            tr = sitk.Euler3DTransform()
            tr.SetCenter(tuple(map(float, mid_e)))
            tr.SetMatrix(tuple(map(float, rot.ravel())))
            tr.SetTranslation(tuple(map(float, mid_l - mid_e)))
            score.SetInitialTransform(tr, inPlace=False)
            try:
                m = score.MetricEvaluate(fixed, moving)
            except RuntimeError:
                continue
            if best is None or m < best[0]:
                best = (m, tr, pairing, k * 45.0)
    if best is None:
        raise InputError("registration failed: the two scans do not overlap at any start")
    report("registering: rigid", 1 / 3)
    reg = _method(fmask, (4, 2, 1), 150)
    reg.SetInitialTransform(best[1], inPlace=False)
    rigid = sitk.Euler3DTransform(_unwrap(reg.Execute(fixed, moving)))
    metric_rigid = reg.GetMetricValue()
    report("registering: affine", 2 / 3)
    aff = sitk.AffineTransform(3)
    aff.SetCenter(rigid.GetCenter())
    aff.SetMatrix(rigid.GetMatrix())
    aff.SetTranslation(rigid.GetTranslation())
    reg2 = _method(fmask, (4, 2, 1), 150)
    reg2.SetInitialTransform(aff, inPlace=False)
    affine = sitk.AffineTransform(_unwrap(reg2.Execute(fixed, moving)))
    metric_affine = reg2.GetMetricValue()
    report("registering: done", 1.0)
    return Registration(
        rigid=rigid, affine=affine, metric_rigid=metric_rigid, metric_affine=metric_affine,
        initial={"pairing": best[2], "turn_deg": best[3], "metric": best[0]},
        seconds=time.perf_counter() - t0,
    )


# --- twin matching and the same-twins check ------------------------------------------------
def _to_earlier_grid(vol: Volume, earlier: Volume, reg: Registration) -> np.ndarray:
    """A later label map resampled (nearest) onto the earlier grid through the affine."""
    import SimpleITK as sitk

    out = sitk.Resample(vol.to_sitk(), earlier.to_sitk(), reg.affine, sitk.sitkNearestNeighbor,
                        0, vol.to_sitk().GetPixelID())
    return sitk.GetArrayFromImage(out)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


@dataclass
class Matching:
    """How the later twins match the earlier ones."""

    swapped: bool
    dice: dict[str, float]
    head_dice: float
    brain_dice: float
    owner_later_in_earlier: np.ndarray = field(repr=False)
    tissues_later_in_earlier: np.ndarray = field(repr=False)


def match_twins(earlier: CaseData, later: CaseData, reg: Registration) -> Matching:
    """Map the later owner map into the earlier frame and match A/B by overlap (Dice)."""
    own_l = _to_earlier_grid(later.owner, earlier.tissues, reg)
    tis_l = _to_earlier_grid(later.tissues, earlier.tissues, reg)
    own_e = np.asarray(earlier.owner.array)
    tis_e = np.asarray(earlier.tissues.array)
    ea, eb = own_e == Owner.A, own_e == Owner.B
    la, lb = own_l == Owner.A, own_l == Owner.B
    direct = _dice(ea, la) + _dice(eb, lb)
    crossed = _dice(ea, lb) + _dice(eb, la)
    swapped = crossed > direct
    if swapped:
        own_l = np.where(la, Owner.B, np.where(lb, Owner.A, own_l)).astype(own_l.dtype)
        la, lb = lb, la
    return Matching(
        swapped=bool(swapped),
        dice={"A": _dice(ea, la), "B": _dice(eb, lb)},
        head_dice=_dice(tis_e > 0, tis_l > 0),
        brain_dice=_dice(tis_e == Tissue.BRAIN, tis_l == Tissue.BRAIN),
        owner_later_in_earlier=own_l,
        tissues_later_in_earlier=tis_l,
    )


def _age_days(info: dict) -> float | None:
    """The age at the scan in days, as ingest keeps it (``source.age_at_scan_days``)."""
    value = (info.get("source") or {}).get("age_at_scan_days")
    return float(value) if isinstance(value, int | float) else None


def same_twins_check(earlier: CaseData, later: CaseData, reg: Registration,
                     match: Matching) -> list[str]:
    """Reasons to believe the two cases are not the same twins (empty when they are)."""
    out = []
    if match.head_dice < CHECKS["head_dice_min"]:
        out.append(f"the heads overlap poorly after registration (Dice {match.head_dice:.2f} "
                   f"< {CHECKS['head_dice_min']})")
    if match.brain_dice < CHECKS["brain_dice_min"]:
        out.append(f"the brains overlap poorly after registration (Dice "
                   f"{match.brain_dice:.2f} < {CHECKS['brain_dice_min']})")
    for twin, d in match.dice.items():
        if d < CHECKS["twin_dice_min"]:
            out.append(f"twin {twin} overlaps poorly after registration (Dice {d:.2f} < "
                       f"{CHECKS['twin_dice_min']})")
    ce, cl = earlier.plan.get("classification"), later.plan.get("classification")
    if isinstance(ce, dict) and isinstance(cl, dict):
        for key in ("fusion", "orientation", "type"):
            if key in ce and key in cl and ce[key] != cl[key]:
                out.append(f"the classification differs ({key}: {ce[key]} then {cl[key]}); "
                           "twins do not change junction type as they grow")
    ratio = reg.volume_ratio()
    if not CHECKS["volume_ratio_min"] <= ratio <= CHECKS["volume_ratio_max"]:
        out.append(f"the later head is {ratio:.2f} times the earlier one's volume (expected "
                   f"{CHECKS['volume_ratio_min']} to {CHECKS['volume_ratio_max']}; are the "
                   "cases given in the right order?)")
    sv = np.linalg.svd(np.asarray(reg.affine.GetMatrix()).reshape(3, 3), compute_uv=False)
    if sv.max() / sv.min() > CHECKS["anisotropy_max"]:
        out.append(f"the registration needs a strongly uneven stretch (axis ratio "
                   f"{sv.max() / sv.min():.2f} > {CHECKS['anisotropy_max']}); growth is "
                   "close to a uniform scale")
    de, dl = _age_days(earlier.info), _age_days(later.info)
    if de is not None and dl is not None and dl < de:
        out.append(f"the later scan was taken at a younger age ({dl:.0f} days) than the "
                   f"earlier one ({de:.0f} days)")
    return out


# --- the comparison --------------------------------------------------------------------------
def _entry(a: float | None, b: float | None, months: float | None) -> dict:
    if a is None or b is None:
        return {"earlier": a, "later": b, "change": None, "change_per_month": None}
    ch = float(b) - float(a)
    per = ch / months if months else None
    return {"earlier": float(a), "later": float(b), "change": ch, "change_per_month": per}


def _months(earlier: CaseData, later: CaseData, months: float | None) -> tuple[float | None,
                                                                              str]:
    if months is not None:
        if months <= 0:
            raise InputError(f"--months must be positive, got {months}")
        return float(months), "--months"
    de, dl = _age_days(earlier.info), _age_days(later.info)
    if de is not None and dl is not None and dl > de:
        return (dl - de) / DAYS_PER_MONTH, (f"ages at the scans, {de:.0f} and {dl:.0f} "
                                            "days (from the DICOM headers)")
    return None, ("no ages at the scans in case.json and no --months: changes are given, "
                  "per-month changes are null")


def growth_table(earlier: dict, later: dict, months: float | None) -> dict:
    """``{measure: {earlier, later, change, change_per_month}}`` (tissue volumes nested
    by twin and tissue)."""
    out: dict[str, Any] = {}
    for key in ("junction_area_cm2", "junction_area_plan_cm2", "brain_contact_area_cm2",
                "shared_vessel_volume_ml",
                "shared_vessel_max_diameter_mm", "cut_area_cm2", "cut_risk"):
        if key in earlier and key in later:
            if key.startswith("cut_") and (earlier[key] is None or later[key] is None):
                continue
            out[key] = _entry(earlier[key], later[key], months)
    out["tissue_volumes_ml"] = {
        twin: {t: _entry(earlier["tissue_volumes_ml"][twin][t],
                         later["tissue_volumes_ml"][twin][t], months) for t in _TISSUES}
        for twin in "AB"
    }
    return out


@dataclass
class Comparison:
    """Result of :func:`compare`."""

    growth: dict
    registration: Registration
    matching: Matching
    warnings: list[str]
    earlier: CaseData = field(repr=False)
    later: CaseData = field(repr=False)

    def to_json(self) -> dict:
        """The deterministic ``comparison.json`` content (same as plan.json ``growth``)."""
        return self.growth


def compare_data(earlier: CaseData, later: CaseData, *, months: float | None = None,
                 force: bool = False, progress: Progress | None = None) -> Comparison:
    """Compare two scans of the same twins (see the module docstring).

    Parameters
    ----------
    earlier, later : CaseData
        The two cases' scans, labels and measures (:func:`twinsep.compare.load_case`).
    months : float, optional
        Months between the scans; overrides the ages at the scans.
    force : bool
        Go on when the same-twins check fails (the failures go to ``warnings``).
    progress : callable, optional
        ``progress(message, fraction)``.

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        Missing inputs, or the cases do not look like the same twins (without ``force``).
    """
    if earlier.case.root.resolve() == later.case.root.resolve():
        raise InputError("the earlier and the later case are the same folder")
    n_months, months_source = _months(earlier, later, months)
    reg = register(earlier, later, progress=progress)
    match = match_twins(earlier, later, reg)
    problems = same_twins_check(earlier, later, reg, match)
    if problems and not force:
        raise InputError(
            "these cases do not look like the same twins: " + "; ".join(problems)
            + " (use --force to compare anyway)")
    e_cent = earlier.centroids
    l_cent = {("B" if k == "A" else "A") if match.swapped else k: v
              for k, v in later.centroids.items()}
    mapped = {k: reg.to_earlier(v[None])[0] for k, v in l_cent.items()}
    cerr = {k: float(np.linalg.norm(mapped[k] - e_cent[k])) for k in "AB"}
    # rigid-only centroid error: what is left for the affine (growth) to explain
    inv_r = reg.rigid.GetInverse()
    rig = {k: np.array(inv_r.TransformPoint(tuple(map(float, v)))) for k, v in l_cent.items()}
    growth = growth_table(_measures(earlier, False), _measures(later, match.swapped), n_months)
    notes = []
    if n_months is None:
        notes.append(months_source)
    if "cut_area_cm2" not in growth:
        notes.append("no cut comparison: run `twinsep separate` on both cases")
    growth.update({
        "months": n_months,
        "months_source": months_source,
        "earlier_case": {
            "name": earlier.case.root.name,
            "scan_sha256": (earlier.info.get("hashes") or {}).get("voxels_sha256")
            if isinstance(earlier.info.get("hashes"), dict) else None,
            "measured_from": earlier.measured_from,
        },
        "later_case": {"name": later.case.root.name, "measured_from": later.measured_from},
        "twins_swapped": match.swapped,
        "twin_names": "twin A and B as named in the earlier case",
        "registration": {
            **reg.parameters(),
            "brain_centroid_error_mm": cerr,
            "brain_centroid_error_rigid_mm": {k: float(np.linalg.norm(rig[k] - e_cent[k]))
                                              for k in "AB"},
            "brain_centroids_earlier_mm": {k: list(v) for k, v in e_cent.items()},
            "brain_centroids_later_in_earlier_mm": {k: list(v) for k, v in mapped.items()},
            "dice": {"head": match.head_dice, "brain": match.brain_dice, **{
                f"twin_{k}": v for k, v in match.dice.items()}},
            "checks": dict(CHECKS),
        },
        "same_twins": not problems,
        "warnings": problems,
        "notes": notes,
    })
    growth = _round(growth)
    return Comparison(growth, reg, match, problems, earlier, later)


def _round(obj: Any, nd: int = 4) -> Any:
    """Round floats to ``nd`` significant decimals (registration noise stays out of JSON)."""
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v, nd) for v in obj]
    if isinstance(obj, float | np.floating):
        return round(float(obj), nd) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --- figure ---------------------------------------------------------------------------------
def _plane_axes(cent: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertical = A to B, horizontal, depth) unit vectors of the figure's plane."""
    v = cent["B"] - cent["A"]
    v = v / max(np.linalg.norm(v), 1e-9)
    ref = np.array([1.0, 0.0, 0.0]) if abs(v[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    h = ref - (ref @ v) * v
    h /= np.linalg.norm(h)
    return v, h, np.cross(v, h)


def _sample(vol: Volume, arr: np.ndarray, xyz: np.ndarray, order: int = 0) -> np.ndarray:
    from scipy import ndimage as ndi

    kji = vol.world_to_index(xyz.reshape(-1, 3)).T
    return ndi.map_coordinates(arr, kji, order=order, mode="constant", cval=0).reshape(
        xyz.shape[:-1])


def growth_figure(cmp: Comparison, path: Path, *, pixel_mm: float = 1.5) -> Path:
    """Write the figure: both junctions in the earlier frame (same plane through the brain
    centroids, shared vessels projected in red) and a chart of the relative changes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twinsep.labels import TWIN_COLOURS

    e, lt = cmp.earlier, cmp.later
    cent = e.centroids
    v, h, w = _plane_axes(cent)
    centre = 0.5 * (cent["A"] + cent["B"])
    half_v = 0.5 * float(np.linalg.norm(cent["B"] - cent["A"])) + 85.0
    half_h = 90.0
    us = np.arange(-half_h, half_h + 1e-6, pixel_mm)
    vs = np.arange(-half_v, half_v + 1e-6, pixel_mm)
    uu, vv = np.meshgrid(us, vs[::-1])
    plane = centre + uu[..., None] * h + vv[..., None] * v
    ws = np.arange(-70.0, 70.01, 2.0)
    panels = []
    for d, later in ((e, False), (lt, True)):
        pts = plane
        slab = plane[None] + ws[:, None, None, None] * w
        if later:
            pts = cmp.registration.to_later(plane.reshape(-1, 3)).reshape(plane.shape)
            slab = cmp.registration.to_later(slab.reshape(-1, 3)).reshape(slab.shape)
        t = _sample(d.tissues, np.asarray(d.tissues.array), pts)
        o = _sample(d.tissues, np.asarray(d.owner.array), pts)
        if later and cmp.matching.swapped:
            o = np.where(o == 1, 2, np.where(o == 2, 1, o))
        vm = _sample(d.tissues, d.vessel_mask().astype(np.uint8), slab).max(0)
        grey = np.array([0.0, 0.55, 0.95, 0.35, 0.6, 0.8])[t.astype(int)]
        rgb = np.repeat(grey[..., None], 3, axis=2)
        for code, name in ((1, "A"), (2, "B")):
            col = np.asarray(TWIN_COLOURS[name]) / 255.0
            sel = (o == code) & (t > 0)
            rgb[sel] = 0.65 * rgb[sel] + 0.35 * col
        red = np.asarray(TWIN_COLOURS["shared"]) / 255.0
        rgb[vm > 0] = 0.3 * rgb[vm > 0] + 0.7 * red
        panels.append(rgb)
    g = cmp.growth
    fig = plt.figure(figsize=(11, 5.2), dpi=100)
    extent = [-half_h, half_h, -half_v, half_v]
    months = g.get("months")
    age = f"{months:.1f} months later" if months else "later (interval unknown)"
    for i, (img, title) in enumerate(((panels[0], "earlier scan"),
                                      (panels[1], f"{age}, registered")), start=1):
        ax = fig.add_subplot(1, 3, i)
        ax.imshow(img, extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("mm")
        ax.set_ylabel("mm (twin A to twin B)")
    ax = fig.add_subplot(1, 3, 3)
    rows = [("junction area", g.get("junction_area_cm2")),
            ("brain contact", g.get("brain_contact_area_cm2")),
            ("shared vessel vol.", g.get("shared_vessel_volume_ml")),
            ("vessel max diam.", g.get("shared_vessel_max_diameter_mm")),
            ("brain A", g["tissue_volumes_ml"]["A"]["brain"]),
            ("brain B", g["tissue_volumes_ml"]["B"]["brain"]),
            ("cut area", g.get("cut_area_cm2")), ("cut risk", g.get("cut_risk"))]
    names, pct = [], []
    for name, ent in rows:
        if not ent or ent.get("earlier") in (None, 0) or ent.get("later") is None:
            continue
        names.append(name)
        pct.append(100.0 * ent["change"] / abs(ent["earlier"]))
    y = np.arange(len(names))
    ax.barh(y, pct, color=[("#c0392b" if p > 0 else "#2874a6") for p in pct])
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("change (%)")
    ax.set_title("what changed", fontsize=10)
    for yi, p in zip(y, pct, strict=True):
        ax.text(p, yi, f" {p:+.0f}%", va="center", ha="left" if p >= 0 else "right",
                fontsize=7)
    fig.suptitle("Growth between scans: shared vessels in red, twin A purple, twin B orange",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


# --- report ---------------------------------------------------------------------------------
_LABELS = {
    "junction_area_cm2": "Junction area (cm²)",
    "brain_contact_area_cm2": "Brain contact area (cm²)",
    "shared_vessel_volume_ml": "Shared vessel volume (ml)",
    "shared_vessel_max_diameter_mm": "Largest shared vessel diameter (mm)",
    "cut_area_cm2": "Cut area, minimum-risk cut (cm²)",
    "cut_risk": "Risk of the minimum-risk cut",
}


def report_rows(growth: dict) -> list[tuple[str, dict]]:
    """``(label, entry)`` rows of the growth table, in report order."""
    rows = [(label, growth[k]) for k, label in _LABELS.items() if k in growth]
    for twin in "AB":
        for t in _TISSUES:
            ent = growth["tissue_volumes_ml"][twin][t]
            rows.append((f"Twin {twin} {t} volume (ml)", ent))
    return rows


def report_markdown(growth: dict) -> str:
    """The growth table as Markdown, for the case report."""

    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    lines = ["| measure | earlier | later | change | per month |", "|---|---:|---:|---:|---:|"]
    for label, e in report_rows(growth):
        lines.append(f"| {label} | {f(e['earlier'])} | {f(e['later'])} | {f(e['change'])} "
                     f"| {f(e['change_per_month'])} |")
    months = growth.get("months")
    head = (f"Interval: {months:.1f} months ({growth.get('months_source')})." if months
            else f"Interval unknown: {growth.get('months_source')}.")
    reg = growth.get("registration", {})
    err = reg.get("brain_centroid_error_mm", {})
    tail = (f"Registration (rigid then affine, mutual information): brain centroid error "
            f"A {err.get('A', float('nan')):.1f} mm, B {err.get('B', float('nan')):.1f} mm; "
            f"twins swapped between the scans: {'yes' if growth.get('twins_swapped') else 'no'}.")
    warn = "".join(f"\n\n**Warning:** {w}" for w in growth.get("warnings", []))
    return f"{head}\n\n" + "\n".join(lines) + f"\n\n{tail}{warn}\n"


__all__ = [
    "CHECKS",
    "CaseData",
    "Comparison",
    "Matching",
    "Registration",
    "compare_data",
    "growth_figure",
    "growth_table",
    "match_twins",
    "register",
    "report_markdown",
    "same_twins_check",
]
