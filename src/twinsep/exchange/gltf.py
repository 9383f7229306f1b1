"""Binary glTF 2.0 (GLB) export of coloured triangle meshes.

Frame and units: glTF is right-handed with +Y up, +Z towards the viewer (the front of
the asset) and lengths in metres. Points in world LPS mm (+x left, +y posterior,
+z superior) are mapped with :data:`LPS_MM_TO_GLTF`::

    X_gltf =  x_lps / 1000   (patient left)
    Y_gltf =  z_lps / 1000   (superior: up)
    Z_gltf = -y_lps / 1000   (anterior: the face looks towards +Z)

a proper rotation (determinant +1) times a scale, so triangle winding and normals are
kept. The world origin is kept (no recentring), so any plan.json point maps with the same
matrix.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: 4x4 matrix from world LPS millimetres to glTF metres (+Y up, +Z anterior).
LPS_MM_TO_GLTF = np.array([
    [0.001, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.001, 0.0],
    [0.0, -0.001, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])

_FLOAT, _UINT32 = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


@dataclass
class GltfPart:
    """One mesh node.

    Attributes
    ----------
    name : str
        Node (and mesh, material) name, e.g. ``'A/brain'``.
    vertices : (n, 3) float
        World LPS mm.
    faces : (m, 3) int
        Triangles, counter-clockwise seen from outside.
    colour : (3,) int
        sRGB 0-255 (converted to linear ``baseColorFactor``).
    opacity : float
        Alpha; below 1 the material uses ``alphaMode: BLEND``.
    group : str or None
        Parent node name (``'A'``, ``'B'``, ``'shared'``); None: a root node.
    double_sided : bool
        Render both sides (open surfaces such as the cut surface).
    roughness, metallic : float
        PBR factors.
    extras : dict or None
        Stored as the node's ``extras``.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colour: tuple[int, int, int]
    opacity: float = 1.0
    group: str | None = None
    double_sided: bool = False
    roughness: float = 0.6
    metallic: float = 0.0
    extras: dict | None = None


def to_gltf_frame(points_lps_mm: np.ndarray) -> np.ndarray:
    """World LPS mm -> glTF metres (see :data:`LPS_MM_TO_GLTF`)."""
    p = np.asarray(points_lps_mm, float)
    # a contiguous matrix keeps the product on the fast (BLAS) path
    return p @ np.ascontiguousarray(LPS_MM_TO_GLTF[:3, :3].T) + LPS_MM_TO_GLTF[:3, 3]


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (float32; never zero length)."""
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    fn = np.cross(p1 - p0, p2 - p0)
    n = np.zeros((len(v), 3))
    for c in range(3):
        for corner in range(3):
            n[:, c] += np.bincount(f[:, corner], weights=fn[:, c], minlength=len(v))
    length = np.linalg.norm(n, axis=1)
    bad = length < 1e-20
    n[bad] = (0.0, 1.0, 0.0)
    length[bad] = 1.0
    n = (n / length[:, None]).astype(np.float32)
    # renormalise in float32 so that every |n| is 1 within the validator's tolerance
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def glb_bytes(parts: list[GltfPart], *, generator: str = "twinsep",
              extras: dict | None = None) -> bytes:
    """A GLB file (bytes) with one node, mesh and PBR material per part.

    Group nodes (``part.group``) are created in the order first met; part nodes are
    their children. Unused vertices are dropped; empty parts are skipped.
    """
    from twinsep.colours import srgb_to_linear

    blob = bytearray()
    views: list[dict] = []
    accessors: list[dict] = []
    meshes: list[dict] = []
    materials: list[dict] = []
    nodes: list[dict] = []
    roots: list[int] = []
    groups: dict[str, int] = {}

    def add_view(data: bytes, target: int) -> int:
        while len(blob) % 4:
            blob.append(0)
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data),
                      "target": target})
        blob.extend(data)
        return len(views) - 1

    for part in parts:
        f = np.asarray(part.faces, np.int64).reshape(-1, 3)
        if len(f) == 0:
            continue
        verts = np.asarray(part.vertices, float)
        used = np.zeros(len(verts), bool)
        used[f.ravel()] = True
        if not used.all():  # drop unused vertices, keeping their order
            f = (np.cumsum(used) - 1)[f]
            verts = verts[used]
        f = f.astype(np.uint32)
        v = to_gltf_frame(verts).astype(np.float32)
        nrm = vertex_normals(v.astype(np.float64), f.astype(np.int64))
        pos_view = add_view(v.tobytes(), _ARRAY_BUFFER)
        accessors.append({"bufferView": pos_view, "componentType": _FLOAT, "count": len(v),
                          "type": "VEC3", "min": v.min(axis=0).tolist(),
                          "max": v.max(axis=0).tolist()})
        pos = len(accessors) - 1
        accessors.append({"bufferView": add_view(nrm.tobytes(), _ARRAY_BUFFER),
                          "componentType": _FLOAT, "count": len(nrm), "type": "VEC3"})
        nor = len(accessors) - 1
        accessors.append({"bufferView": add_view(f.tobytes(), _ELEMENT_ARRAY_BUFFER),
                          "componentType": _UINT32, "count": int(f.size), "type": "SCALAR"})
        idx = len(accessors) - 1
        r, g, b = srgb_to_linear(part.colour)
        mat = {"name": part.name,
               "pbrMetallicRoughness": {
                   "baseColorFactor": [round(r, 6), round(g, 6), round(b, 6),
                                       round(float(part.opacity), 6)],
                   "metallicFactor": float(part.metallic),
                   "roughnessFactor": float(part.roughness)}}
        if part.opacity < 1.0:
            mat["alphaMode"] = "BLEND"
        if part.double_sided:
            mat["doubleSided"] = True
        materials.append(mat)
        meshes.append({"name": part.name, "primitives": [{
            "attributes": {"POSITION": pos, "NORMAL": nor}, "indices": idx,
            "material": len(materials) - 1, "mode": 4}]})
        node = {"name": part.name, "mesh": len(meshes) - 1}
        if part.extras:
            node["extras"] = part.extras
        nodes.append(node)
        me = len(nodes) - 1
        if part.group is None:
            roots.append(me)
        else:
            if part.group not in groups:
                nodes.append({"name": part.group, "children": []})
                groups[part.group] = len(nodes) - 1
                roots.append(groups[part.group])
            nodes[groups[part.group]]["children"].append(me)
    while len(blob) % 4:
        blob.append(0)
    gltf: dict = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"name": "twinsep", "nodes": roots}],
        "nodes": nodes,
    }
    if extras:
        gltf["asset"]["extras"] = extras
    if meshes:
        gltf.update({"meshes": meshes, "materials": materials, "accessors": accessors,
                     "bufferViews": views, "buffers": [{"byteLength": len(blob)}]})
    js = json.dumps(gltf, separators=(",", ":"), sort_keys=True).encode()
    js += b" " * ((-len(js)) % 4)
    chunks = struct.pack("<II", len(js), 0x4E4F534A) + js
    if meshes:
        chunks += struct.pack("<II", len(blob), 0x004E4942) + bytes(blob)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def write_glb(path: Path, parts: list[GltfPart], **kwargs) -> None:
    """Write :func:`glb_bytes` to ``path`` atomically."""
    from twinsep.casefolder import write_text_atomic

    write_text_atomic(Path(path), glb_bytes(parts, **kwargs))


def read_glb_json(path: Path) -> dict:
    """The JSON chunk of a GLB file (for tests and the viewer)."""
    data = Path(path).read_bytes()
    magic, version, _ = struct.unpack_from("<III", data, 0)
    if magic != 0x46546C67 or version != 2:
        raise ValueError(f"{path}: not a glTF 2.0 binary")
    length, kind = struct.unpack_from("<II", data, 12)
    if kind != 0x4E4F534A:
        raise ValueError(f"{path}: first chunk is not JSON")
    return json.loads(data[20:20 + length])
