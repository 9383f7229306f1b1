"""Small helpers shared by the report's matplotlib 3-D figures (world LPS mm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame_axes(ax, centre: np.ndarray, half: float, elev: float, azim: float) -> None:
    """A cube of half size ``half`` mm around ``centre``, seen from (``elev``, ``azim``)
    degrees, with the LPS axes labelled."""
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre, strict=True):
        setter(c - half, c + half)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=elev, azim=azim)
    ax.set_xlabel("x (mm, L)")
    ax.set_ylabel("y (mm, P)")
    ax.set_zlabel("z (mm, S)")
    ax.tick_params(labelsize=6)


def save_png(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (no software stamp: the bytes are reproducible)
    and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)
    return path
