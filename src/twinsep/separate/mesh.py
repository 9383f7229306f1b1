"""The cut surface as a triangle mesh (world mm) and its area.

The owner map is extended into the background by the nearest twin, the indicator of twin
A is contoured at 0.5 by marching cubes on the bounding box of the cut, and only the
triangles whose centre lies in (or touches) the head are kept. The mesh is written as a
binary little-endian PLY without any external library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from twinsep.casefolder import write_text_atomic
from twinsep.image import Volume, bounding_box
from twinsep.mesh import iso_surface

_A, _B = 1, 2


def cut_surface(owner: np.ndarray, volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (world mm, float64 ``(n, 3)``) and faces (int ``(m, 3)``) of the cut.

    Parameters
    ----------
    owner : ndarray uint8
        Final owner map (0 background, 1 A, 2 B) on the grid of ``volume``.
    volume : Volume
        Gives the geometry (spacing, direction, origin).
    """
    from twinsep.separate.graphcut import interface_mask

    iface = interface_mask(owner)
    if not iface.any():
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    sl = bounding_box(iface, 3)
    sub = owner[sl]
    owned = (sub == _A) | (sub == _B)
    _, near = ndi.distance_transform_edt(~owned, return_indices=True)
    full = sub[tuple(near)]
    field = (full == _A).astype(np.float32)
    if min(field.shape) < 2:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    verts, faces = iso_surface(field, 0.5)
    # keep the triangles whose centre is nearest to a tissue voxel
    cen = verts[faces].mean(axis=1)
    ci = np.clip(np.rint(cen).astype(int), 0, np.array(field.shape) - 1)
    keep = owned[tuple(ci.T)]
    faces = faces[keep]
    used, inv = np.unique(faces, return_inverse=True)
    faces = inv.reshape(-1, 3)
    offs = np.array([s.start for s in sl], dtype=float)
    world = volume.index_to_world(verts[used] + offs)
    return world, faces.astype(np.int64)




def write_ply(path: Path, verts: np.ndarray, faces: np.ndarray, comment: str = "") -> None:
    """Write a binary little-endian PLY (float32 vertices in world mm, int32 triangles)."""
    head = ["ply", "format binary_little_endian 1.0"]
    if comment:
        head.append(f"comment {comment}")
    head += [
        "comment units mm, world LPS coordinates",
        f"element vertex {len(verts)}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    v = np.ascontiguousarray(verts, dtype="<f4").tobytes()
    f = np.zeros(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
    f["n"] = 3
    f["idx"] = faces
    write_text_atomic(Path(path), ("\n".join(head) + "\n").encode("ascii") + v + f.tobytes())
