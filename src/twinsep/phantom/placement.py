"""Placement of the twins and the junction frame (world mm), shared by the phantom's build
(:mod:`twinsep.phantom.build`) and its ground truth (:mod:`twinsep.phantom.truth`).

See :mod:`twinsep.phantom.build` for the geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinsep.phantom.anatomy import BONE_MM, LAYERS_MM, SCALP_MM, Twin, affine_rows, rotation, smin
from twinsep.phantom.spec import PhantomSpec

SMOOTH_UNION_MM = 10.0
#: Depth (mm) below the outer surface within which scalp and bone are labelled.
NEAR_SURFACE_MM = SCALP_MM + BONE_MM + 2.0
_GRAD_STEP_MM = 0.25
_MIN_GRADIENT = 0.2


@dataclass
class Layout:
    """Placement of the two twins and the junction frame (world mm)."""

    a: Twin
    b: Twin
    c: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    contact_a: np.ndarray
    contact_b: np.ndarray
    separate: bool
    undulation: float
    und_phase: np.ndarray
    und_wavelength: float = 30.0

    @property
    def junction_centre(self) -> np.ndarray:
        return 0.5 * (self.contact_a + self.contact_b)

    def fields(self, xyz: np.ndarray, *, brain: bool = False):
        """``(sA, sB, delta, h)`` or with ``brain`` also ``(pA, wA, pB, wB)`` at world points."""
        fa = self.a.sample(xyz, brain=brain)
        fb = self.b.sample(xyz, brain=brain)
        sa, sb = fa["sdf"], fb["sdf"]
        delta = sa - sb
        if self.undulation > 0:
            rel = xyz - self.junction_centre
            k = 2 * np.pi / self.und_wavelength
            uv = affine_rows(rel, np.stack([self.e1, self.e2, self.c]))
            u = (np.sin(k * uv[:, 0] + self.und_phase[0])
                 * np.sin(k * uv[:, 1] + self.und_phase[1]))
            delta = delta + (2.0 * self.undulation) * u.astype(np.float32)
        ha, hb = sa - LAYERS_MM, sb - LAYERS_MM
        h = np.minimum(ha, hb) if self.separate else smin(ha, hb, SMOOTH_UNION_MM)
        if brain:
            return sa, sb, delta, h, fa["p"], fa["wm"], fb["p"], fb["wm"]
        return sa, sb, delta, h


def surface_depth(lay: Layout, xyz: np.ndarray, sa: np.ndarray, sb: np.ndarray,
                  h: np.ndarray) -> np.ndarray:
    """Depth (mm) below the combined outer surface of points inside the head, to first order.

    ``-h`` is the true depth where one head's distance field rules, but in the crease
    between the heads the smooth union is not a distance: there ``|grad h|`` falls to the
    cosine of half the angle between the two surfaces (about 0.4 in a shallow partial
    junction), and ``-h`` would make the scalp 2-3 times too thick. There (blend zone,
    ``-h`` below the skull's outer depth) the depth is ``-h / |grad h|`` with the gradient
    by central differences of ``_GRAD_STEP_MM``.
    """
    depth = (-h).astype(np.float32)
    if lay.separate or SMOOTH_UNION_MM <= 0:
        return depth
    ha, hb = sa - LAYERS_MM, sb - LAYERS_MM
    sel = np.flatnonzero((h < 0) & (-h < SCALP_MM + BONE_MM)
                         & (np.abs(ha - hb) < SMOOTH_UNION_MM))
    if not len(sel):
        return depth
    p = xyz[sel]
    grad = np.empty((len(sel), 3), np.float64)
    for ax in range(3):
        e = np.zeros(3)
        e[ax] = _GRAD_STEP_MM
        hp = lay.fields(p + e)[3].astype(np.float64)
        hm = lay.fields(p - e)[3].astype(np.float64)
        grad[:, ax] = (hp - hm) / (2 * _GRAD_STEP_MM)
    g = np.clip(np.linalg.norm(grad, axis=1), _MIN_GRADIENT, 1.0)
    depth[sel] = (-h[sel] / g).astype(np.float32)
    return depth


def layout(spec: PhantomSpec) -> Layout:
    """Place the twins for ``spec``."""
    rng = np.random.default_rng(spec.seed)
    alpha = np.deg2rad((180.0 - spec.long_axis_angle) / 2.0)
    c = np.array([0.0, np.sin(alpha), np.cos(alpha)])
    t = np.array([0.0, np.cos(alpha), -np.sin(alpha)])
    rb = rotation(c, spec.axial_rotation) @ rotation(t, 180.0)
    grown = spec.growth() if spec.grows else None
    scale_a = grown.scale_a if grown else spec.scale_a
    scale_b = grown.scale_b if grown else spec.scale_b
    depth = grown.fusion_depth_mm if grown else spec.depth_mm
    a = Twin.make(scale_a, np.eye(3), np.zeros(3), rng, spec.deformation)
    b = Twin.make(scale_b, rb, np.zeros(3), rng, spec.deformation)
    und_phase = rng.uniform(0, 2 * np.pi, size=2)
    ta = float(a.surface_radius(c[None])[0]) + LAYERS_MM
    tb = float(b.surface_radius((rb.T @ -c)[None])[0]) + LAYERS_MM
    e1 = np.array([1.0, 0.0, 0.0])
    e2 = np.cross(c, e1)
    dist = ta + tb + (spec.gap if spec.separate else -depth)
    b.centre = dist * c + spec.junction_offset * e1
    undulation = 0.0 if spec.separate else spec.undulation
    lay = Layout(a, b, c, e1, e2, ta * c, b.centre - tb * c, spec.separate,
                 undulation, und_phase)
    if grown is not None:
        m = np.asarray(grown.matrix())
        lay = _place(lay, m[:3, :3], m[:3, 3])
    return lay


def _place(lay: Layout, r: np.ndarray, t: np.ndarray) -> Layout:
    """The layout moved rigidly by ``p -> r p + t`` (world mm): the growth option's
    placement in the scanner."""
    for tw in (lay.a, lay.b):
        tw.rot = r @ tw.rot
        tw.centre = r @ tw.centre + t
    return Layout(lay.a, lay.b, r @ lay.c, r @ lay.e1, r @ lay.e2, r @ lay.contact_a + t,
                  r @ lay.contact_b + t, lay.separate, lay.undulation, lay.und_phase,
                  lay.und_wavelength)
