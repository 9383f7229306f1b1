"""STL and 3MF files of triangle meshes (millimetres).

STL: binary, one mesh per file, in the coordinates given (twinsep writes world LPS mm, or
frames with LPS axes: the separated twins, the doll); the 80-byte header starts with
``SPACE=LPS``, which 3D Slicer reads to take the coordinates as LPS (:data:`STL_SPACE`).
3MF: one object per solid, each with its colour in a ``basematerials`` group (sRGB
``displaycolor``), unit millimetre; what a multi-colour printer's slicer reads.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from twinsep.casefolder import write_text_atomic

_NS_3MF = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" '
    'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>\n"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>\n"
)


#: The start of every STL header: 3D Slicer reads the coordinate system from it.
STL_SPACE = "SPACE=LPS"


def stl_bytes(vertices: np.ndarray, faces: np.ndarray, header: str = "twinsep") -> bytes:
    """Binary STL of a triangle mesh (float32 coordinates, facet normals computed); the
    header is ``SPACE=LPS`` and ``header`` (cut to 80 bytes)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, length, out=np.zeros_like(n), where=length > 0)
    rec = np.zeros(len(f), dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    rec["n"] = n
    rec["v"] = tri
    text = header if header.startswith(STL_SPACE) else f"{STL_SPACE} {header}"
    head = text.encode("ascii", "replace")[:80].ljust(80, b" ")
    return head + np.uint32(len(f)).tobytes() + rec.tobytes()


def write_stl(path: Path, mesh, header: str | None = None) -> None:
    """Write a mesh (:class:`twinsep.mesh.Mesh` or anything with ``vertices`` and ``faces``)
    as binary STL, atomically; the header names the mesh's frame unless given."""
    if header is None:
        header = f"twinsep, {getattr(mesh, 'frame', 'world LPS mm')}"
    write_text_atomic(Path(path), stl_bytes(mesh.vertices, mesh.faces, header))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}FF".format(*(int(c) for c in rgb))


def threemf_bytes(objects: list[tuple[str, object, tuple[int, int, int]]],
                  *, title: str = "twinsep") -> bytes:
    """A 3MF package (bytes) with one coloured object per ``(name, mesh, rgb)``.

    Meshes are in millimetres; colours sRGB 0-255, one ``basematerials`` entry per object,
    referenced by the object's ``pid``/``pindex``.
    """
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(f'<model unit="millimeter" xml:lang="en-US" xmlns="{_NS_3MF}">\n')
    out.write(f'<metadata name="Title">{title}</metadata>\n')
    out.write('<metadata name="Application">twinsep</metadata>\n<resources>\n')
    out.write('<basematerials id="1">\n')
    for name, _, rgb in objects:
        out.write(f'<base name="{name}" displaycolor="{_hex(rgb)}"/>\n')
    out.write("</basematerials>\n")
    for n, (name, mesh, _) in enumerate(objects):
        oid = n + 2
        out.write(f'<object id="{oid}" name="{name}" type="model" pid="1" pindex="{n}">\n'
                  "<mesh>\n<vertices>\n")
        v = np.asarray(mesh.vertices, float)
        # one %-format over the whole array (C speed; same text as per-vertex f-strings)
        out.write(('<vertex x="%.4f" y="%.4f" z="%.4f"/>\n' * len(v)) % tuple(v.ravel().tolist()))
        out.write("</vertices>\n<triangles>\n")
        f = np.asarray(mesh.faces, np.int64)
        out.write(('<triangle v1="%d" v2="%d" v3="%d"/>\n' * len(f)) % tuple(f.ravel().tolist()))
        out.write("</triangles>\n</mesh>\n</object>\n")
    out.write("</resources>\n<build>\n")
    for n in range(len(objects)):
        out.write(f'<item objectid="{n + 2}"/>\n')
    out.write("</build>\n</model>\n")
    buf = io.BytesIO()
    # deflate level 1: a quarter larger than level 6, four times faster
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for arc, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _RELS),
                          ("3D/3dmodel.model", out.getvalue())):
            info = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text, compresslevel=1)
    return buf.getvalue()


def write_3mf(path: Path, objects: list[tuple[str, object, tuple[int, int, int]]],
              **kwargs) -> None:
    """Write :func:`threemf_bytes` to ``path`` atomically."""
    write_text_atomic(Path(path), threemf_bytes(objects, **kwargs))


def read_3mf_colours(path: Path) -> dict[str, tuple[int, int, int]]:
    """Object name -> sRGB colour (0-255) of a 3MF file's objects (via ``basematerials``)."""
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("3D/3dmodel.model"))
    ns = {"m": _NS_3MF}
    groups = {}
    for bm in root.iterfind(".//m:basematerials", ns):
        groups[bm.get("id")] = [b.get("displaycolor") for b in bm.iterfind("m:base", ns)]
    out = {}
    for obj in root.iterfind(".//m:object", ns):
        pid, pindex = obj.get("pid"), obj.get("pindex")
        if pid in groups and pindex is not None:
            c = groups[pid][int(pindex)].lstrip("#")
            out[obj.get("name")] = (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))
    return out
