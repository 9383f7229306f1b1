"""Write ``docs/phantoms.png``: orthogonal slices through the junction of each phantom type.

Usage: ``python scripts/phantom_figure.py [--spacing 1.5] [--out docs/phantoms.png]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CASES = {
    "type I (total, 0°)": {"axial_rotation": 0.0},
    "type II (total, 180°)": {"axial_rotation": 180.0},
    "type III (total, 90°)": {"axial_rotation": 90.0},
    "angular (110°)": {"long_axis_angle": 110.0, "fusion_depth": 20.0},
    "partial (bone plate)": {"fusion": "partial"},
    "separate (10 mm gap)": {"separate": True},
}
# background, scalp, bone, CSF/dura, brain, vessel
COLOURS = ["#000000", "#e8b89a", "#f4f1e1", "#3a78c2", "#9a9a9a", "#d7191c"]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from twinsep.phantom import PhantomSpec, make_phantom

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spacing", type=float, default=1.5)
    ap.add_argument("--out", type=Path, default=Path("docs/phantoms.png"))
    args = ap.parse_args()
    cmap = ListedColormap(COLOURS)
    fig, axes = plt.subplots(len(CASES), 4, figsize=(13, 3.1 * len(CASES)))
    for row, (title, kw) in zip(axes, CASES.items(), strict=True):
        s = args.spacing
        ph = make_phantom(PhantomSpec(spacing=(s, s, s), **kw))
        ca, cb = (np.asarray(ph.truth["brain_centroids_mm"][t]) for t in "AB")
        k, j, i = np.round(ph.tissues.world_to_index((ca + cb) / 2)).astype(int)
        t = ph.tissues.array
        own = ph.owner.array
        # array [k, j, i]: z up in coronal/sagittal views (LPS: k = superior)
        views = [
            ("coronal (x-z)", t[:, j, :], own[:, j, :]),
            ("sagittal (y-z)", t[:, :, i], own[:, :, i]),
            ("axial (x-y)", t[k], own[k]),
        ]
        for ax, (name, sl, _) in zip(row[:3], views, strict=True):
            ax.imshow(sl, cmap=cmap, vmin=-0.5, vmax=5.5, origin="lower", interpolation="nearest")
            ax.set_title(f"{title}: {name}", fontsize=8)
            ax.axis("off")
        ow = views[1][2]
        ax = row[3]
        ax.imshow(ow, cmap=ListedColormap(["#000000", "#8000a0", "#ff8c00", "#ffffff"]),
                  vmin=-0.5, vmax=3.5, origin="lower", interpolation="nearest")
        c = ph.truth["classification"]
        ax.set_title(f"owner (A purple, B orange, ambiguous white)\n"
                     f"{c['fusion']} {c['orientation']} {c['type']}", fontsize=8)
        ax.axis("off")
    fig.suptitle("twinsep phantoms: tissues (skin, bone, CSF/dura blue, brain grey, "
                 "sinus red) and owners", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
