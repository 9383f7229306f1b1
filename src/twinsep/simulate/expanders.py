"""Tissue expanders: skin gain of the inflated shapes, catalogue, plan and fill schedule.

Geometric models (all lengths in cm, areas in cm2, volumes in ml = cm3)
-------------------------------------------------------------------------
``round`` (base diameter ``d = length_cm = width_cm``, base radius ``r = d/2``, dome height
``h``): the dome is a spherical cap, ``gain = pi h^2`` (cap area ``pi (r^2 + h^2)`` minus the
base ``pi r^2``), ``volume = pi h (3 r^2 + h^2) / 6``.

``rectangular`` (base ``L = length_cm`` by ``W = width_cm``, height ``h``): the cross-section
across ``W`` is a circular segment of radius ``R = (W^2/4 + h^2) / (2h)`` and central angle
``theta``, extruded along ``L`` (end caps ignored), ``gain = L (R theta - W)``,
``volume = L R^2 (theta - sin theta) / 2``. ``theta = 2 asin(W / 2R)`` while ``h <= W/2``;
for a dome higher than a half cylinder the segment is the major one,
``theta = 2 atan2(W/2, R - h)``, which equals the former for ``h <= R``.

``crescent`` (documented model, no closed form was published: van Rappard's formulas are not
accessible and Pamplona et al. 2014 used finite elements): a crescent is a rectangular
expander bent along its length, so ``length_cm`` is the length of its centre line and
``width_cm`` the width of the band; the curvature of the centre line is ignored and the
rectangular formulas are used.

Expected (in-vivo) gain = geometric gain x efficiency (van Rappard et al. 1988: round 0.25,
rectangular 0.38, crescent 0.32; ``data/defaults.yaml``).

The functional (expanded) skin width of one expander is the arc across its dome:
``2 R_s alpha`` for a round cap of sphere radius ``R_s = (r^2 + h^2)/(2h)``, ``R theta``
across the width of a rectangular or crescent one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twinsep.errors import InputError
from twinsep.simulate.settings import ReconstructionSettings, default_settings

Shape = Literal["round", "rectangular", "crescent"]
SHAPES: tuple[str, ...] = ("round", "rectangular", "crescent")


class ExpanderGain(NamedTuple):
    """Skin gain of an inflated expander.

    Attributes
    ----------
    shape : str
        ``round``, ``rectangular`` or ``crescent``.
    geometric_cm2 : float
        Calculated surface-area increase of the dome over the flat base (cm2).
    expected_cm2 : float
        ``geometric_cm2 * efficiency``: the in-vivo gain (cm2).
    volume_ml : float
        Volume of the inflated shape (ml).
    efficiency : float
        In-vivo fraction of the geometric gain used.
    arc_width_cm : float
        Width of the expanded skin across the dome (cm).
    """

    shape: str
    geometric_cm2: float
    expected_cm2: float
    volume_ml: float
    efficiency: float
    arc_width_cm: float


def _segment(width: float, h: float) -> tuple[float, float]:
    """Radius and central angle of a circular segment of chord ``width`` and height ``h``."""
    radius = (width**2 / 4.0 + h**2) / (2.0 * h)
    theta = 2.0 * math.atan2(width / 2.0, radius - h)
    return radius, theta


def expander_gain(
    shape: str,
    length_cm: float,
    width_cm: float,
    height_cm: float,
    *,
    efficiency: float | None = None,
) -> ExpanderGain:
    """Geometric and expected skin gain of an expander inflated to ``height_cm``.

    Parameters
    ----------
    shape : {"round", "rectangular", "crescent"}
        Expander shape.
    length_cm, width_cm : float
        Base dimensions (cm). Round: both are the base diameter (they must agree within
        1%). Rectangular: base length and width. Crescent: centre-line length and band width.
    height_cm : float
        Height of the inflated dome above the base (cm), > 0.
    efficiency : float, optional
        In-vivo fraction of the geometric gain; default from the settings (van Rappard 1988:
        round 0.25, rectangular 0.38, crescent 0.32).

    Returns
    -------
    ExpanderGain
        ``geometric_cm2``, ``expected_cm2``, ``volume_ml``, ``efficiency``, ``arc_width_cm``.

    Examples
    --------
    >>> g = expander_gain("round", 6.0, 6.0, 3.0)
    >>> round(g.geometric_cm2, 2), round(g.expected_cm2, 2)
    (28.27, 7.07)
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown expander shape {shape!r}; expected one of {SHAPES}")
    if min(length_cm, width_cm, height_cm) <= 0:
        raise ValueError("expander dimensions must be positive")
    eff = float(getattr(default_settings().efficiency, shape) if efficiency is None else efficiency)
    h = float(height_cm)
    if shape == "round":
        if abs(length_cm - width_cm) > 0.01 * max(length_cm, width_cm):
            raise ValueError("a round expander has length_cm == width_cm == base diameter")
        r = width_cm / 2.0
        geometric = math.pi * h**2
        volume = math.pi * h * (3.0 * r**2 + h**2) / 6.0
        rs, theta = _segment(width_cm, h)
        arc = rs * theta
    else:
        length, width = float(length_cm), float(width_cm)
        radius, theta = _segment(width, h)
        arc = radius * theta
        geometric = length * (arc - width)
        volume = length * radius**2 * (theta - math.sin(theta)) / 2.0
    return ExpanderGain(shape, geometric, geometric * eff, volume, eff, arc)


def height_for_volume(shape: str, length_cm: float, width_cm: float, volume_ml: float) -> float:
    """Dome height (cm) at which the model volume equals ``volume_ml`` (bisection)."""
    lo, hi = 1e-6, 10.0 * max(length_cm, width_cm)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if expander_gain(shape, length_cm, width_cm, mid, efficiency=1.0).volume_ml < volume_ml:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --- catalogue ---------------------------------------------------------------------------
class Product(BaseModel):
    """One expander in the catalogue (cm, ml)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    shape: Shape
    length_cm: float = Field(gt=0)
    width_cm: float = Field(gt=0)
    volume_ml: float = Field(gt=0)
    note: str = ""

    @model_validator(mode="after")
    def _round_is_round(self) -> Product:
        if self.shape == "round" and abs(self.length_cm - self.width_cm) > 1e-6:
            raise ValueError(f"{self.id}: a round expander needs length_cm == width_cm")
        return self


def load_catalog(path: Path) -> list[Product]:
    """Read an expander catalogue (YAML with a list ``expanders``)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the expander catalogue ({exc})") from exc
    items = data.get("expanders") if isinstance(data, dict) else None
    if not items:
        raise InputError(f"{path}: no `expanders` list in the catalogue")
    try:
        products = [Product.model_validate(it) for it in items]
    except ValidationError as exc:
        raise InputError(f"{path}: bad catalogue entry: {exc.errors()[0]['msg']}") from exc
    ids = [p.id for p in products]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate expander ids")
    return products


def product_gain(p: Product, s: ReconstructionSettings) -> ExpanderGain:
    """Gain of a product filled to its nominal volume times the overfill factor."""
    vol = p.volume_ml * s.overfill_factor
    h = height_for_volume(p.shape, p.length_cm, p.width_cm, vol)
    return expander_gain(p.shape, p.length_cm, p.width_cm, h,
                         efficiency=getattr(s.efficiency, p.shape))


# --- fill schedule ---------------------------------------------------------------------------
def fill_schedule(volume_ml: float, s: ReconstructionSettings) -> dict:
    """Insertion fill, then weekly fills from day ``first_fill_day`` to the target volume.

    Parameters
    ----------
    volume_ml : float
        Nominal volume of the expander (ml); the target is ``volume_ml * overfill_factor``.
    s : ReconstructionSettings

    Returns
    -------
    dict
        ``initial_fill_ml``, ``fill_ml`` (per fill), ``fills`` (list of ``day``,
        ``volume_ml``, ``total_ml``), ``n_fills``, ``weeks`` (from insertion to the last fill,
        rounded up) and ``target_ml``.
    """
    f = s.fill
    target = volume_ml * s.overfill_factor
    initial = volume_ml * f.initial_fill_fraction
    per = volume_ml * f.fraction_per_fill
    n = max(0, math.ceil((target - initial) / per - 1e-9))
    fills, total = [], initial
    for i in range(n):
        add = min(per, target - total)
        total += add
        fills.append({"day": f.first_fill_day + i * f.interval_days, "volume_ml": add,
                      "total_ml": total})
    last = fills[-1]["day"] if fills else 0
    return {"target_ml": target, "initial_fill_ml": initial, "fill_ml": per,
            "first_fill_day": f.first_fill_day, "interval_days": f.interval_days,
            "n_fills": n, "fills": fills, "weeks": math.ceil(last / 7.0)}


# --- plan ------------------------------------------------------------------------------------
class Candidate(NamedTuple):
    """A choice of ``n`` identical expanders and how it meets the targets."""

    product: Product
    n: int
    gain: ExpanderGain
    expected_cm2: float
    volume_ml: float
    width_cm: float
    fits: bool
    checks: dict


def evaluate(p: Product, n: int, skin_missing_cm2: float, defect_width_cm: float,
             ring_cm: float, s: ReconstructionSettings) -> Candidate:
    """Check ``n`` expanders ``p`` against the skin missing and the Aya et al. rule.

    ``ring_cm`` is the length of the ring of healthy scalp around the defect where the
    expanders are laid end to end, evenly in angle: their bases fit when neighbouring
    centres, a chord ``2 r sin(pi / n)`` apart on the ring of radius ``r``, are at least a
    base length apart (one expander: its length within the ring's length). Laying the
    lengths along the ring (``n L <= 2 pi r``) would let large expanders overlap.
    """
    g = product_gain(p, s)
    expected, width = n * g.expected_cm2, n * g.arc_width_cm
    volume = n * p.volume_ml * s.overfill_factor
    need_vol = s.aya.min_volume_ml_per_cm2 * skin_missing_cm2
    need_width = s.aya.min_width_ratio * defect_width_cm
    checks = {
        "gain_covers_skin": expected >= skin_missing_cm2,
        "aya_volume": volume > need_vol,
        "aya_width": width > need_width,
        "fits_on_scalp": (p.length_cm <= ring_cm if n == 1 else
                          ring_cm / math.pi * math.sin(math.pi / n) >= p.length_cm),
    }
    return Candidate(p, n, g, expected, volume, width, checks["fits_on_scalp"], checks)


def choose(products: list[Product], skin_missing_cm2: float, defect_width_cm: float,
           ring_cm: float | Callable[[Product], float], s: ReconstructionSettings
           ) -> tuple[Candidate, list[str]]:
    """The smallest plan that meets every check, else the closest one and the reasons.

    ``ring_cm``: the length (cm) of the ring of healthy scalp where the expanders go, or a
    function giving it per product (its centres lie ``clearance + width / 2`` from the
    wound, so a wider product sits on another ring).

    Candidates are ``n = 1 .. max_per_twin`` identical expanders of one product. Among the
    plans that pass every check the one with the fewest expanders, then the smallest total
    volume, then the product id is chosen. If none passes, the plan that fits on the scalp
    and has the largest worst-case ratio (gain / skin missing, volume / Aya volume, width /
    Aya width) is returned with one warning per failed check.
    """
    ring_of = ring_cm if callable(ring_cm) else (lambda p: float(ring_cm))
    cands = [evaluate(p, n, skin_missing_cm2, defect_width_cm, ring_of(p), s)
             for p in products for n in range(1, s.placement.max_per_twin + 1)]
    good = [c for c in cands if all(c.checks.values())]
    if good:
        best = min(good, key=lambda c: (c.n, c.volume_ml, c.product.id))
        return best, []
    need_vol = s.aya.min_volume_ml_per_cm2 * skin_missing_cm2
    need_width = s.aya.min_width_ratio * defect_width_cm

    def score(c: Candidate) -> tuple:
        ratio = min(c.expected_cm2 / max(skin_missing_cm2, 1e-9), c.volume_ml / max(need_vol, 1e-9),
                    c.width_cm / max(need_width, 1e-9))
        return (c.fits, ratio, -c.n, c.product.id)

    best = max(cands, key=score)
    warnings = []
    if not best.checks["gain_covers_skin"]:
        warnings.append(f"expected gain {best.expected_cm2:.1f} cm2 is below the skin missing "
                        f"({skin_missing_cm2:.1f} cm2)")
    if not best.checks["aya_volume"]:
        warnings.append(f"Aya rule: total volume {best.volume_ml:.0f} ml is not above "
                        f"{s.aya.min_volume_ml_per_cm2:g} ml/cm2 x {skin_missing_cm2:.1f} cm2 "
                        f"= {need_vol:.0f} ml")
    if not best.checks["aya_width"]:
        warnings.append(f"Aya rule: expanded skin width {best.width_cm:.1f} cm is not above "
                        f"{s.aya.min_width_ratio:g} x defect width {defect_width_cm:.1f} cm "
                        f"= {need_width:.1f} cm")
    if not best.checks["fits_on_scalp"]:
        warnings.append(f"{best.n} x {best.product.length_cm:g} cm expanders do not fit on the "
                        f"{ring_of(best.product):.1f} cm ring of healthy scalp around the "
                        "defect")
    warnings.append(f"no catalogue plan with up to {s.placement.max_per_twin} expanders meets "
                    "every check; consider a larger catalogue, overexpansion (overfill_factor), "
                    "serial re-expansion or a skin graft")
    return best, warnings


# --- mesh of an inflated expander -------------------------------------------------------------
def wrap_on_sphere(vertices: np.ndarray, radius_mm: float) -> np.ndarray:
    """Bend local expander coordinates onto a sphere (the skull under the expander).

    Local frame: base plane ``z = 0``, ``z`` outward, base centre at the origin; the sphere
    of radius ``radius_mm`` touches the base plane there (centre ``(0, 0, -R)``). A base
    point at distance ``s`` from the centre goes to the sphere point at geodesic distance
    ``s`` in the same direction, and its height ``z`` is laid along that point's normal, so
    base dimensions are kept along the skull and dome heights along its normal.
    """
    v = np.asarray(vertices, float)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    r_mm = float(radius_mm)
    s = np.hypot(x, y)
    safe = np.where(s > 0, s, 1.0)
    ux, uy = np.where(s > 0, x / safe, 0.0), np.where(s > 0, y / safe, 0.0)
    phi = s / r_mm
    rad = r_mm + z
    return np.stack([rad * np.sin(phi) * ux, rad * np.sin(phi) * uy,
                     rad * np.cos(phi) - r_mm], 1)


def expander_mesh(p: Product, height_cm: float, frame: np.ndarray, n_seg: int = 32,
                  base_radius_mm: float | None = None):
    """Watertight trimesh of the inflated expander, in world mm.

    Parameters
    ----------
    p : Product
    height_cm : float
        Dome height (cm).
    frame : (4, 4) array
        Local-to-world transform: local x = long axis, y = short axis, z = outward normal,
        origin = centre of the base (mm).
    base_radius_mm : float, optional
        Radius of curvature (mm) of the skull under the base: the expander is bent onto it
        (:func:`wrap_on_sphere`, after subdividing to edges of at most 5 mm) and its heights
        scaled so that it holds the same volume as the flat model (a dome over a convex
        base is lower); None: a flat base.
    """
    import trimesh

    length, width, h = p.length_cm * 10.0, p.width_cm * 10.0, height_cm * 10.0
    radius, theta = _segment(width, h)
    # circular-segment profile across the width, in (y, z), base at z = 0
    ang = np.linspace(-theta / 2, theta / 2, n_seg + 1)
    prof = np.stack([radius * np.sin(ang), radius * np.cos(ang) - (radius - h)], 1)
    if p.shape == "round":
        # revolve the half profile (y >= 0) about z: a spherical cap
        half = prof[n_seg // 2:]
        rings = []
        phis = np.linspace(0, 2 * np.pi, n_seg, endpoint=False)
        for y, z in half:
            rings.append(np.stack([y * np.cos(phis), y * np.sin(phis), np.full(n_seg, z)], 1))
        verts = [np.array([[0.0, 0.0, 0.0]])]  # base centre
        verts += rings
        v = np.concatenate(verts)
        faces = []
        nr = len(rings)
        base0 = 1 + (nr - 1) * n_seg  # the outermost ring (z = 0) is the last one
        for a in range(n_seg):  # base disc
            faces.append([0, base0 + (a + 1) % n_seg, base0 + a])
        top = 1  # first ring has radius 0: treat as apex fan
        for r in range(1, nr):
            for a in range(n_seg):
                i0 = 1 + (r - 1) * n_seg
                i1 = 1 + r * n_seg
                b = (a + 1) % n_seg
                if r == 1:
                    faces.append([top, i1 + a, i1 + b])
                else:
                    faces.append([i0 + a, i1 + a, i1 + b])
                    faces.append([i0 + a, i1 + b, i0 + b])
        mesh = trimesh.Trimesh(v, np.asarray(faces), process=True)
    else:
        xs = np.linspace(-length / 2, length / 2, 2 if p.shape == "rectangular" else n_seg)
        secs = []
        for x in xs:
            sec = np.stack([np.full(len(prof), x), prof[:, 0], prof[:, 1]], 1)
            if p.shape == "crescent":  # bend the centre line into an arc of 120 degrees
                bend = 2 * np.pi / 3
                rc = length / bend
                phi = x / rc
                rad = rc - sec[:, 1]
                sec = np.stack([rad * np.sin(phi), rc - rad * np.cos(phi), sec[:, 2]], 1)
            secs.append(sec)
        m = len(prof)
        v = np.concatenate(secs)
        faces = []
        for s_ in range(len(secs) - 1):
            for a in range(m):
                b = (a + 1) % m  # closing edge a=m-1 -> 0 is the flat base
                i0, i1 = s_ * m, (s_ + 1) * m
                faces.append([i0 + a, i1 + a, i1 + b])
                faces.append([i0 + a, i1 + b, i0 + b])
        last = (len(secs) - 1) * m
        for a in range(1, m - 1):  # end caps (convex profiles: fans)
            faces.append([0, a + 1, a])
            faces.append([last, last + a, last + a + 1])
        mesh = trimesh.Trimesh(v, np.asarray(faces), process=True)
    if base_radius_mm is not None and np.isfinite(base_radius_mm) and base_radius_mm > 0:
        from trimesh.remesh import subdivide_to_size

        mesh.fix_normals()  # consistent winding: a meaningful volume
        target = abs(mesh.volume)
        v, f = subdivide_to_size(mesh.vertices, mesh.faces, max_edge=5.0)

        def bent(k: float) -> np.ndarray:
            return wrap_on_sphere(v * [1.0, 1.0, k], base_radius_mm)

        def volume(w: np.ndarray) -> float:
            t = w[f]
            return abs(float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum()))
            # (/ 6 on both sides of the comparison below)

        lo, hi = 0.2, 1.0  # the bent volume grows with the height scale k
        for _ in range(25):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if volume(bent(mid)) < 6.0 * target else (lo, mid)
        mesh = trimesh.Trimesh(bent(0.5 * (lo + hi)), f, process=True)
    mesh.fix_normals()
    mesh.apply_transform(frame)
    return mesh
