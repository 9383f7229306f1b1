"""Figures for the case folder (PNG, matplotlib Agg, deterministic bytes).

:func:`junction_figure` draws three orthogonal slices through the junction centre in
*world-aligned* planes (axial: normal +z, coronal: normal +y, sagittal: normal +x, LPS
world mm). Every plane is resampled from the scan grid through the full voxel-to-world
affine (linear for the CT, nearest for labels), so oblique and anisotropic grids are drawn
correctly in millimetres. Twin A is overlaid in purple, twin B in orange (translucent), the
shared vessels in red; each panel has a scale bar in mm and orientation letters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume, bounding_box
from twinsep.labels import TWIN_COLOURS, Owner, resolve_owner

#: Overlay opacity of the twins and of the shared vessels.
TWIN_ALPHA = 0.4
VESSEL_ALPHA = 0.9
#: CT display window (HU).
CT_WINDOW = (-200.0, 400.0)
_MAX_PIXELS = 360


def junction_centre(owner: np.ndarray, vol: Volume) -> np.ndarray:
    """World centre (mm) of the A/B interface (voxels of A face-adjacent to B).

    Falls back to the centre of all owned voxels when the twins do not touch.
    """
    a, b = owner == Owner.A, owner == Owner.B
    touch = np.zeros(owner.shape, bool)
    for ax in range(owner.ndim):  # A voxels with a B voxel among their face neighbours
        lo = [slice(None)] * owner.ndim
        hi = [slice(None)] * owner.ndim
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        lo_, hi_ = tuple(lo), tuple(hi)
        touch[lo_] |= a[lo_] & b[hi_]
        touch[hi_] |= a[hi_] & b[lo_]
    if not touch.any():
        touch = owner > 0
    if not touch.any():
        touch = np.ones(owner.shape, bool)
    return vol.index_to_world(np.argwhere(touch).mean(0))


def _world_box(mask: np.ndarray, vol: Volume, margin_mm: float = 10.0) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    box = bounding_box(mask)
    lo = [0] * mask.ndim if box is None else [b.start for b in box]
    hi = [n - 1 for n in mask.shape] if box is None else [b.stop - 1 for b in box]
    corners = np.array([[k, j, i] for k in (lo[0], hi[0]) for j in (lo[1], hi[1])
                        for i in (lo[2], hi[2])], float)
    w = vol.index_to_world(corners)
    return w.min(0) - margin_mm, w.max(0) + margin_mm


def _sample_plane(vol: Volume, arrays: list[tuple[np.ndarray, int, float]], centre: np.ndarray,
                  h_axis: int, v_axis: int, lo: np.ndarray, hi: np.ndarray, pix: float):
    """Sample arrays on a world-aligned plane; returns images (rows = v, cols = h) and extent."""
    hs = np.arange(lo[h_axis], hi[h_axis] + pix / 2, pix)
    vs = np.arange(lo[v_axis], hi[v_axis] + pix / 2, pix)
    hh, vv = np.meshgrid(hs, vs)
    pts = np.tile(centre, (hh.size, 1))
    pts[:, h_axis] = hh.ravel()
    pts[:, v_axis] = vv.ravel()
    kji = vol.world_to_index(pts).T
    out = []
    for arr, order, cval in arrays:
        img = ndi.map_coordinates(arr, kji, order=order, mode="constant", cval=cval)
        out.append(img.reshape(hh.shape))
    extent = (hs[0] - pix / 2, hs[-1] + pix / 2, vs[0] - pix / 2, vs[-1] + pix / 2)
    return out, extent


def _grey_from_tissues(tissues: np.ndarray) -> np.ndarray:
    """Pseudo-CT (HU) from tissue codes, when no CT is given."""
    lut = np.array([-1000.0, 40.0, 850.0, 8.0, 35.0, 280.0], np.float32)
    return lut[np.clip(tissues, 0, 5).astype(int)]


def junction_figure(ct: Volume | None, tissues: Volume, owner: Volume, path: Path,
                    shared_vessel_mask: np.ndarray | None = None) -> Path:
    """Write orthogonal slices through the junction with the twins' colours (PNG).

    Parameters
    ----------
    ct : Volume or None
        CT in HU on the same grid as ``tissues``; None draws a pseudo-CT from the tissues.
    tissues : Volume
        Tissue codes.
    owner : Volume
        Owner codes (0, 1 = A purple, 2 = B orange; 3 = ambiguous goes to the nearest twin).
    path : Path
        Output PNG path (parent folders are created).
    shared_vessel_mask : ndarray of bool, optional
        Shared vessel voxels (array order), drawn in red.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    own = resolve_owner(tissues, owner)
    t = np.asarray(tissues.array)
    grey = (np.asarray(ct.array, np.float32) if ct is not None
            else _grey_from_tissues(t))
    vmask = (np.zeros(t.shape, np.uint8) if shared_vessel_mask is None
             else np.asarray(shared_vessel_mask, bool).astype(np.uint8))
    centre = junction_centre(own, tissues)
    lo, hi = _world_box(t > 0, tissues)
    pix = max(min(tissues.spacing), float((hi - lo).max()) / _MAX_PIXELS)
    arrays = [(grey, 1, -1000.0), (own, 0, 0.0), (vmask, 0, 0.0)]
    # (name, horizontal axis, vertical axis, labels: left, right, bottom, top, flip vertical)
    planes = [
        ("axial", 0, 1, ("R", "L", "A", "P"), True),
        ("coronal", 0, 2, ("R", "L", "I", "S"), False),
        ("sagittal", 1, 2, ("A", "P", "I", "S"), False),
    ]
    colours = {k: np.array(v, float) / 255.0 for k, v in TWIN_COLOURS.items()}
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.6), dpi=100)
    for ax, (name, h_axis, v_axis, letters, flip) in zip(axes, planes, strict=True):
        (g, o, sv), extent = _sample_plane(tissues, arrays, centre, h_axis, v_axis, lo, hi, pix)
        base = np.clip((g - CT_WINDOW[0]) / (CT_WINDOW[1] - CT_WINDOW[0]), 0, 1)
        rgb = np.repeat(base[..., None], 3, axis=2)
        for code, key, alpha in ((Owner.A, "A", TWIN_ALPHA), (Owner.B, "B", TWIN_ALPHA)):
            m = o == code
            rgb[m] = (1 - alpha) * rgb[m] + alpha * colours[key]
        m = sv > 0
        rgb[m] = (1 - VESSEL_ALPHA) * rgb[m] + VESSEL_ALPHA * colours["shared"]
        ax.imshow(rgb, extent=extent, origin="lower", interpolation="nearest")
        if flip:
            ax.invert_yaxis()
        ax.plot([centre[h_axis]], [centre[v_axis]], "+", color="white", ms=10, mew=1.5)
        # scale bar (mm)
        span = extent[1] - extent[0]
        bar = 50.0 if span > 150 else (20.0 if span > 60 else 10.0)
        x0 = extent[0] + 0.05 * span
        y_rng = extent[3] - extent[2]
        y0 = (extent[3] - 0.06 * y_rng) if flip else (extent[2] + 0.06 * y_rng)
        ax.plot([x0, x0 + bar], [y0, y0], color="white", lw=3, solid_capstyle="butt")
        ax.text(x0 + bar / 2, y0 + (-0.03 if flip else 0.03) * y_rng, f"{bar:g} mm",
                color="white", ha="center", va="bottom", fontsize=9)
        left, right, bottom, top = letters
        kw = {"color": "yellow", "fontsize": 11, "fontweight": "bold",
              "transform": ax.transAxes}
        ax.text(0.01, 0.5, left, ha="left", va="center", **kw)
        ax.text(0.99, 0.5, right, ha="right", va="center", **kw)
        ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **kw)
        ax.text(0.5, 0.99, top, ha="center", va="top", **kw)
        normal = "xyz"[3 - h_axis - v_axis]
        ax.set_title(f"{name} ({normal} = {centre[3 - h_axis - v_axis]:.1f} mm)")
        ax.set_xlabel(f"{'xyz'[h_axis]} (mm)")
        ax.set_ylabel(f"{'xyz'[v_axis]} (mm)")
    handles = [Patch(color=colours["A"], label="twin A (purple)"),
               Patch(color=colours["B"], label="twin B (orange)"),
               Patch(color=colours["shared"], label="shared vessel (red)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.suptitle("Slices through the junction (world-aligned planes, LPS mm)")
    # fixed margins (tight_layout costs a third of the drawing time)
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.16, top=0.86, wspace=0.22)
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
