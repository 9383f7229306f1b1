"""The reconstruction figure of the report: each child after the cut with its implant and
expanders (``figures/reconstruction.png``).

Drawn with matplotlib (Agg, deterministic) from the meshes that ``twinsep simulate`` wrote
(``models/twin_X_*.stl``, separated frame, world LPS mm), each decimated to a few thousand
triangles: the skull in the twin's bone shade, the implant light blue and the expanders pale
green (lit from the viewer), one panel per twin, seen from the side so that the
wound (implant) and the expanders around it are both in view (:func:`_view`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinsep.casefolder import Case, load_plan

#: Triangles per mesh in the figure.
FIGURE_FACES = 6000
#: Opacity per layer kind.
_ALPHA = {"skull": 1.0, "implant": 1.0, "expander": 0.8}
_ORDER = ("skull", "implant", "expander")


def _view(normal) -> tuple[float, float]:
    """(elevation, azimuth) in degrees of a three-quarter view onto a wound whose outward
    normal is ``normal`` (world LPS): 60 degrees round from it about z, and tilted
    towards it by up to 25 degrees, so the implant is in view with the head beside it."""
    n = np.asarray(normal if normal is not None else (0.0, 0.0, 1.0), float)
    n = n / max(float(np.linalg.norm(n)), 1e-9)
    elev = float(np.clip(0.4 * np.degrees(np.arcsin(np.clip(n[2], -1.0, 1.0))), -35, 35))
    horiz = float(np.hypot(n[0], n[1]))
    azim = float(np.degrees(np.arctan2(n[1], n[0]))) - 60.0 if horiz > 0.3 else -60.0
    return elev, azim


def reconstruction_figure(case: Case, path: Path | None = None) -> Path | None:
    """Write the figure (PNG); None (nothing written) when the case has no reconstruction
    meshes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from twinsep.models.separated import reconstruction_layers
    from twinsep.report.plot3d import frame_axes, save_png

    rec = load_plan(case).get("reconstruction")
    layers = reconstruction_layers(case.models, rec, max_faces=FIGURE_FACES,
                                   kinds=set(_ALPHA))
    twins = sorted({ly.twin for ly in layers if ly.twin})
    if not twins:
        return None
    path = Path(path) if path is not None else case.figures / "reconstruction.png"
    fig = plt.figure(figsize=(11.0, 5.6), dpi=90)
    fig.subplots_adjust(left=0.0, right=0.98, bottom=0.03, top=0.86, wspace=0.05)
    for i, twin in enumerate(twins):
        ax = fig.add_subplot(1, len(twins), i + 1, projection="3d")
        # the skull, implant and expanders (the viewer also has the head and the wound)
        mine = [ly for ly in layers if ly.twin == twin]
        mine.sort(key=lambda ly: _ORDER.index(ly.tissue))
        elev, azim = _view(rec["twins"][twin].get("defect_normal"))
        e, a = np.radians(elev), np.radians(azim)
        eye = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
        tris, colours = [], []
        for ly in mine:
            tri = np.asarray(ly.mesh.vertices)[np.asarray(ly.mesh.faces)]
            nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
            # a two-sided head light: faces turned to the viewer are brightest
            lit = 0.35 + 0.65 * np.abs(nrm @ eye)
            rgba = np.empty((len(tri), 4))
            rgba[:, :3] = np.clip(np.asarray(ly.colour, float)[None] / 255.0 * lit[:, None], 0, 1)
            rgba[:, 3] = _ALPHA[ly.tissue]
            tris.append(tri)
            colours.append(rgba)
        # one collection: matplotlib depth-sorts the triangles within it (across collections
        # it sorts whole meshes, and the skull would hide the implant)
        tri = np.concatenate(tris)
        ax.add_collection3d(Poly3DCollection(tri, facecolors=np.concatenate(colours),
                                             edgecolor="none", linewidth=0))
        allp = tri.reshape(-1, 3)
        lo, hi = allp.min(0), allp.max(0)
        centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 + 5
        frame_axes(ax, centre, half, elev, azim)
        n_exp = sum(ly.tissue == "expander" for ly in mine)
        # above the panel, clear of the axis labels of a view from below
        box = ax.get_position()
        fig.text((box.x0 + box.x1) / 2, 0.95, f"twin {twin}: implant (blue), {n_exp} "
                 "expander(s) (green)", ha="center", va="center", fontsize=10)
    return save_png(fig, path)
