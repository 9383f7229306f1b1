"""Brain template (MNI ICBM152 2009a grey/white matter maps, :mod:`twinsep.mni`) and a twin.

The template is computed once per process: brain probability ``p = GM + WM`` and white
matter fraction at 1 mm, and a signed distance field (mm, negative inside) to a closed,
smoothed brain *envelope* at 2 mm (so CSF fills the sulci). A :class:`Twin` places the
template in world space (scale, rotation, centre and a smooth random deformation) and
samples these fields at world points with trilinear interpolation.

Twin-local coordinates are LPS millimetres relative to the template's brain centroid:
+x the twin's left, +y posterior, +z superior.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

#: Layer thicknesses (mm) outside the brain envelope.
CSF_MM = 2.5
BONE_MM = 2.0
SCALP_MM = 4.0
LAYERS_MM = CSF_MM + BONE_MM + SCALP_MM

_PAD = 24  # voxels (mm) of padding around the brain bounding box at 1 mm


@dataclass(frozen=True)
class Template:
    """Template fields in (cropped, padded) template voxel space, indexed [x, y, z] (RAS)."""

    p: np.ndarray  # float32, GM+WM probability, 1 mm
    wm: np.ndarray  # float32, WM fraction of p, 1 mm
    sdf: np.ndarray  # float32, envelope signed distance (template mm), 2 mm grid
    centroid_vox: np.ndarray  # brain centroid in 1 mm voxel coordinates
    upper: np.ndarray = field(repr=False)  # shape - 1 of the 1 mm grid


@functools.cache
def template() -> Template:
    """Load and preprocess the MNI template (cached for the process; about 2 s)."""
    from scipy import ndimage as ndi

    from twinsep.mni import mni_maps

    maps = mni_maps()
    gm = maps.gm.astype(np.float32) / 255.0
    wm = maps.wm.astype(np.float32) / 255.0
    p = gm + wm
    brain = p > 0.5
    idx = np.argwhere(brain)
    lo, hi = idx.min(0), idx.max(0) + 1
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    p = np.pad(p[sl], _PAD)
    wmf = np.pad(np.where(brain[sl], (wm[sl] / np.maximum(gm[sl] + wm[sl], 1e-3)), 0.0), _PAD)
    brain = p > 0.5
    centroid = np.argwhere(brain).mean(0)
    # envelope at 2 mm: dilate 1 mm, close with a 6 mm ball, fill, smooth
    n2 = tuple((s + 1) // 2 for s in p.shape)
    pp = np.pad(p, [(0, 2 * n - s) for n, s in zip(n2, p.shape, strict=True)])
    p2 = pp.reshape(n2[0], 2, n2[1], 2, n2[2], 2).mean(axis=(1, 3, 5))
    b2 = p2 > 0.4
    dil = ndi.distance_transform_edt(~b2, sampling=2.0) <= 7.0
    closed = ndi.distance_transform_edt(dil, sampling=2.0) > 6.0
    closed = ndi.binary_fill_holes(closed)
    env = ndi.gaussian_filter(closed.astype(np.float32), 1.0) > 0.5
    sdf = np.where(
        env,
        -(ndi.distance_transform_edt(env, sampling=2.0) - 1.0),
        ndi.distance_transform_edt(~env, sampling=2.0) - 1.0,
    ).astype(np.float32)
    return Template(
        p=np.ascontiguousarray(p, np.float32),
        wm=np.ascontiguousarray(wmf, np.float32),
        sdf=sdf,
        centroid_vox=centroid,
        upper=np.asarray(p.shape, float) - 1.0,
    )


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """3x3 rotation matrix about ``axis`` by ``angle_deg`` (right-handed)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    t = np.deg2rad(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


@dataclass
class Twin:
    """One twin: template placed in world space.

    Parameters
    ----------
    scale : float
        Linear scale from template mm to world mm.
    rot : (3, 3) ndarray
        Rotation from twin-local to world (columns: world directions of local x, y, z).
    centre : (3,) ndarray
        World position (mm) of the brain centroid.
    warp_k, warp_a, warp_phi : ndarray
        Smooth deformation ``d(x) = sum_m a_m sin(k_m . x + phi_m)`` in local mm.
    """

    scale: float
    rot: np.ndarray
    centre: np.ndarray
    warp_k: np.ndarray
    warp_a: np.ndarray
    warp_phi: np.ndarray

    @classmethod
    def make(cls, scale: float, rot: np.ndarray, centre: np.ndarray,
             rng: np.random.Generator, amplitude_mm: float) -> Twin:
        """A twin with a random smooth deformation of about ``amplitude_mm``."""
        m = 3
        dirs = rng.normal(size=(m, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        wavelength = rng.uniform(50.0, 90.0, size=m)
        k = dirs * (2 * np.pi / wavelength)[:, None]
        a = rng.normal(size=(m, 3))
        a *= amplitude_mm / np.sqrt(m) / np.linalg.norm(a, axis=1, keepdims=True)
        phi = rng.uniform(0, 2 * np.pi, size=m)
        return cls(scale, np.asarray(rot, float), np.asarray(centre, float), k, a, phi)

    # --- coordinates ------------------------------------------------------------------
    def to_local(self, xyz: np.ndarray) -> np.ndarray:
        """World (N, 3) mm to twin-local (N, 3) mm (undeformed)."""
        return affine_rows(xyz, self.rot.T, -(self.rot.T @ self.centre))

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Twin-local (N, 3) mm to world mm."""
        return affine_rows(local, self.rot, self.centre)

    def _template_vox(self, local: np.ndarray) -> np.ndarray:
        """Local (N, 3) mm to template 1 mm voxel coordinates (3, N)."""
        cols = [np.array(local[:, r]) for r in range(3)]
        warped = [c.copy() for c in cols]
        for km, am, ph in zip(self.warp_k, self.warp_a, self.warp_phi, strict=True):
            s = np.sin(cols[0] * km[0] + cols[1] * km[1] + cols[2] * km[2] + ph)
            for r in range(3):
                warped[r] += s * am[r]
        t = template()
        vox = np.empty((3, len(local)))
        vox[0] = t.centroid_vox[0] - warped[0] / self.scale  # RAS x = -L
        vox[1] = t.centroid_vox[1] - warped[1] / self.scale  # RAS y = -P
        vox[2] = t.centroid_vox[2] + warped[2] / self.scale
        return vox

    def sample(self, xyz: np.ndarray, *, brain: bool = True) -> dict[str, np.ndarray]:
        """Fields at world points (N, 3) mm.

        Returns
        -------
        dict
            ``sdf`` (mm, world units, negative inside the brain envelope), and with
            ``brain``: ``p`` (GM+WM probability) and ``wm`` (white matter fraction),
            evaluated only where ``sdf < 2`` mm (0 elsewhere).
        """
        from scipy.ndimage import map_coordinates

        t = template()
        vox = self._template_vox(self.to_local(np.asarray(xyz, float)))
        clamped = np.clip(vox, 0.0, t.upper[:, None])
        outside = np.sqrt(((vox - clamped) ** 2).sum(0))
        sdf = map_coordinates(t.sdf, clamped / 2.0, order=1, mode="nearest")
        sdf = (sdf + outside) * self.scale
        out = {"sdf": sdf.astype(np.float32)}
        if brain:
            p = np.zeros(len(sdf), np.float32)
            w = np.zeros(len(sdf), np.float32)
            sel = sdf < 2.0
            if sel.any():
                c = clamped[:, sel]
                p[sel] = map_coordinates(t.p, c, order=1, mode="nearest")
                w[sel] = map_coordinates(t.wm, c, order=1, mode="nearest")
            out["p"] = p
            out["wm"] = w
        return out

    def surface_radius(self, directions_local: np.ndarray, r_max: float = 130.0,
                       step: float = 0.25) -> np.ndarray:
        """Distance (mm) from the centre to the envelope surface along local directions.

        The outermost crossing of the envelope along each ray (linear interpolation).
        """
        d = np.asarray(directions_local, float)
        r = np.arange(0.0, r_max, step)
        pts = (r[None, :, None] * d[:, None, :]).reshape(-1, 3)
        s = self.sample(self.to_world(pts), brain=False)["sdf"].reshape(len(d), len(r))
        inside = s < 0
        last = len(r) - 1 - np.argmax(inside[:, ::-1], axis=1)
        last = np.minimum(last, len(r) - 2)
        rows = np.arange(len(d))
        s0, s1 = s[rows, last], s[rows, last + 1]
        frac = np.clip(s0 / np.where(s0 - s1 == 0, -1e-6, s0 - s1), 0, 1)
        return r[last] + frac * step


def affine_rows(x: np.ndarray, m: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """``x @ m.T + t`` for (N, 3) rows, without numpy's slow small-matrix matmul."""
    x = np.asarray(x, float)
    cols = [np.ascontiguousarray(x[:, r]) for r in range(3)]
    out = np.empty((3, len(x)))
    for r in range(3):
        out[r] = cols[0] * m[r, 0] + cols[1] * m[r, 1] + cols[2] * m[r, 2]
        if t is not None:
            out[r] += t[r]
    return out.T  # a view whose columns are contiguous


def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two signed distances (blend width ``k`` mm)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(k - np.abs(a - b), 0.0, None) / k
    return np.minimum(a, b) - h * h * k * 0.25
