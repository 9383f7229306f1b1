"""Dural venous sinuses of the phantom: sagittal sinuses, circular sinus and connectors.

All vessels are tubes around analytic centrelines, so membership of any world point is
exact and independent of the image grid:

* superior sagittal sinus (SSS) per twin: in the twin's midsagittal plane, 0.5 mm
  outside the brain envelope from frontal to occipital (radius 2 mm), cut where it would
  enter the junction;
* circular sinus (optional, "shared sinus"): a ring of radius 3 mm around the junction,
  about 9.5 mm below the outer surface, placed on twin A's side of the interface so that
  it belongs to A;
* connectors: straight tubes (radius 2 mm) from each cut end of a sagittal sinus to the
  nearest point of the ring. B's connectors cross the interface: these are the shared
  vessel's crossings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twinsep.phantom.anatomy import BONE_MM, LAYERS_MM, SCALP_MM, Twin, affine_rows, smin

SSS_RADIUS_MM = 2.0
SSS_OFFSET_MM = 0.5
RING_RADIUS_MM = 3.0
RING_DEPTH_MM = SCALP_MM + BONE_MM + RING_RADIUS_MM + 0.5
CONNECTOR_RADIUS_MM = 2.0
_PHI = np.arange(-115.0, 95.01, 0.5)  # degrees from superior towards anterior


@dataclass
class Sagittal:
    """One twin's superior sagittal sinus."""

    twin: Twin
    radius: np.ndarray  # centreline distance from the brain centre per _PHI (mm)
    keep: np.ndarray  # bool per _PHI
    points: np.ndarray  # world centreline (len(_PHI), 3)

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        """Bool per world point: inside this sinus."""
        loc = self.twin.to_local(xyz)
        rho = np.hypot(loc[:, 1], loc[:, 2])
        phi = np.rad2deg(np.arctan2(-loc[:, 1], loc[:, 2]))
        inr = (phi >= _PHI[0]) & (phi <= _PHI[-1])
        rc = np.interp(phi, _PHI, self.radius)
        kp = np.interp(phi, _PHI, self.keep.astype(float)) > 0.5
        return inr & kp & (loc[:, 0] ** 2 + (rho - rc) ** 2 < SSS_RADIUS_MM**2)

    def cut_ends(self) -> list[np.ndarray]:
        """World centreline points where a kept run ends next to a removed part."""
        k = self.keep
        ends = []
        for i in range(len(k)):
            if not k[i]:
                continue
            if (i > 0 and not k[i - 1]) or (i < len(k) - 1 and not k[i + 1]):
                ends.append(self.points[i])
        return ends


@dataclass
class Segment:
    """A straight tube."""

    a: np.ndarray
    b: np.ndarray
    r: float

    def distance(self, xyz: np.ndarray) -> np.ndarray:
        ab = self.b - self.a
        rel = xyz - self.a
        t = (rel[:, 0] * ab[0] + rel[:, 1] * ab[1] + rel[:, 2] * ab[2]) / max(float(ab @ ab), 1e-12)
        np.clip(t, 0.0, 1.0, out=t)
        d2 = np.zeros(len(xyz))
        for r in range(3):
            d2 += (rel[:, r] - t * ab[r]) ** 2
        return np.sqrt(d2)

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        return self.distance(xyz) < self.r


@dataclass
class Ring:
    """Circular sinus around the junction axis ``c`` through ``centre``."""

    centre: np.ndarray
    c: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    theta: np.ndarray  # radians, ascending over [0, 2 pi)
    rho: np.ndarray  # mm
    z: np.ndarray  # mm along c
    radius: float = RING_RADIUS_MM  # tube radius (mm); larger in a grown phantom

    def _cyl(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        uvz = affine_rows(xyz - self.centre, np.stack([self.e1, self.e2, self.c]))
        u, v, z = uvz[:, 0], uvz[:, 1], uvz[:, 2]
        return np.mod(np.arctan2(v, u), 2 * np.pi), np.hypot(u, v), z

    def contains(self, xyz: np.ndarray) -> np.ndarray:
        th, rho, z = self._cyl(xyz)
        rr = np.interp(th, self.theta, self.rho, period=2 * np.pi)
        zz = np.interp(th, self.theta, self.z, period=2 * np.pi)
        return (rho - rr) ** 2 + (z - zz) ** 2 < self.radius**2

    def points(self, n: int = 360) -> np.ndarray:
        th = np.linspace(0, 2 * np.pi, n, endpoint=False)
        rr = np.interp(th, self.theta, self.rho, period=2 * np.pi)
        zz = np.interp(th, self.theta, self.z, period=2 * np.pi)
        return (self.centre[None] + zz[:, None] * self.c[None]
                + rr[:, None] * (np.cos(th)[:, None] * self.e1 + np.sin(th)[:, None] * self.e2))


@dataclass
class Vessels:
    """All sinuses of a phantom."""

    sagittal: list[Sagittal]
    ring: Ring | None = None
    connectors: list[Segment] = field(default_factory=list)
    connector_owner: list[str] = field(default_factory=list)

    def classify(self, xyz: np.ndarray) -> np.ndarray:
        """uint8 per world point: 0 none, 1 sagittal sinus, 2 shared (ring, connectors)."""
        out = np.zeros(len(xyz), np.uint8)
        for s in self.sagittal:
            out[s.contains(xyz)] = 1
        if self.ring is not None:
            shared = self.ring.contains(xyz)
            for seg in self.connectors:
                shared |= seg.contains(xyz)
            out[shared] = 2
        return out


def build_vessels(a: Twin, b: Twin, fields, *, shared: bool, conjoined: bool,
                  centre: np.ndarray, c: np.ndarray, e1: np.ndarray, e2: np.ndarray,
                  undulation_mm: float, separate: bool,
                  ring_radius_mm: float = RING_RADIUS_MM) -> Vessels:
    """Lay out the sinuses.

    Parameters
    ----------
    fields : callable
        ``fields(xyz) -> (sA, sB, delta, h)``: envelope distances (mm), interface
        function and combined head distance at world points.
    centre, c, e1, e2 : ndarray
        Junction centre (world mm), contact normal (A to B) and two in-plane unit vectors.
    ring_radius_mm : float
        Tube radius (mm) of the circular sinus (the growth option enlarges it).
    """
    phi = np.deg2rad(_PHI)
    dirs = np.stack([np.zeros_like(phi), -np.sin(phi), np.cos(phi)], 1)
    sag = []
    for name, tw in (("A", a), ("B", b)):
        rc = tw.surface_radius(dirs) + SSS_OFFSET_MM
        pts = tw.to_world(rc[:, None] * dirs)
        sa, sb, delta, _ = fields(pts)
        if name == "A":
            keep = (-delta / 2 >= 5.0) & (sb - LAYERS_MM >= 2.0)
        else:
            keep = (delta / 2 >= 5.0) & (sa - LAYERS_MM >= 2.0)
        if separate:
            keep[:] = True
        sag.append(Sagittal(tw, rc, keep, pts))
    vessels = Vessels(sag)
    if not (shared and conjoined):
        return vessels
    # circular sinus
    theta = np.deg2rad(np.arange(0.0, 360.0, 5.0))
    zs = np.arange(-16.0, 16.01, 1.0)
    rs = np.arange(0.0, 120.0, 0.5)
    e = np.cos(theta)[:, None] * e1 + np.sin(theta)[:, None] * e2  # (T, 3)
    pts = (centre[None, None, None] + zs[None, :, None, None] * c[None, None, None]
           + rs[None, None, :, None] * e[:, None, None, :])
    _, _, delta, h = fields(pts.reshape(-1, 3))
    shape = (len(theta), len(zs), len(rs))
    h = h.reshape(shape)
    delta = delta.reshape(shape)
    inside = h < 0
    has = inside.any(2)
    last = len(rs) - 1 - np.argmax(inside[..., ::-1], axis=2)
    ring_depth = RING_DEPTH_MM if ring_radius_mm == RING_RADIUS_MM else (
        SCALP_MM + BONE_MM + ring_radius_mm + 0.5)
    rho_c = rs[last] - ring_depth
    idx = np.clip(np.round(rho_c / 0.5).astype(int), 0, len(rs) - 1)
    d_at = np.take_along_axis(delta, idx[..., None], axis=2)[..., 0]
    target = -2.0 * (ring_radius_mm + 1.5 + undulation_mm)
    cost = np.abs(d_at - target) + np.where(has & (rho_c > 5.0), 0.0, 1e6)
    best = np.argmin(cost, axis=1)
    rows = np.arange(len(theta))
    ok = cost[rows, best] < 1e5
    if not ok.any():
        return vessels
    rr = rho_c[rows, best]
    zz = zs[best]
    theta, rr, zz = theta[ok], rr[ok], zz[ok]
    # circular smoothing (3-point)
    rr = (np.roll(rr, 1) + rr + np.roll(rr, -1)) / 3 if len(rr) > 3 else rr
    zz = (np.roll(zz, 1) + zz + np.roll(zz, -1)) / 3 if len(zz) > 3 else zz
    ring = Ring(centre, c, e1, e2, theta, rr, zz, float(ring_radius_mm))
    vessels.ring = ring
    rp = ring.points()
    for name, s in zip("AB", sag, strict=True):
        for end in s.cut_ends():
            j = int(np.argmin(((rp - end) ** 2).sum(1)))
            vessels.connectors.append(Segment(np.asarray(end), rp[j], CONNECTOR_RADIUS_MM))
            vessels.connector_owner.append(name)
    return vessels


__all__ = ["Vessels", "build_vessels", "smin"]
