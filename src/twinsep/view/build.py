"""Write the self-contained 3-D viewer of a case: ``CASE/viewer/index.html``.

The page is one HTML file that needs no network and no server, so it works opened as a
file (``file://``) as well as served on localhost:

- three.js (vendored into the package from npm by ``scripts/vendor_three.py``) is inlined
  as ES modules behind an import map whose entries are ``data:`` URLs (module scripts from
  ``file://`` URLs are blocked by Chrome, inline and ``data:`` modules are not);
- the scene (``models/model.glb``, gzip + base64) and its ``manifest.json`` are inlined in
  a JSON data block;
- the CT is downsampled to at most ``max_size`` voxels per axis (strided, so the grid
  geometry stays exact), reoriented to the nearest LPS axes (``DICOMOrient``), windowed to
  uint8 and stored gzip-compressed with the owner map (0/1/2) on the same grid; the page
  decompresses both with the browser's ``DecompressionStream``.

The three CT slices are planes of that reoriented grid (axial: fixed k, coronal: fixed j,
sagittal: fixed i); for a grid that is oblique to the patient axes they are oblique too.

World coordinates in the page are LPS millimetres, as everywhere in twinsep. The glTF
scene is in metres with +Y up; the map from LPS mm to scene coordinates is
:data:`LPS_TO_GLTF` unless the manifest gives its own 4x4 ``frame.glb_from_lps_mm``.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from twinsep.errors import InputError
from twinsep.labels import TWIN_COLOURS

#: LPS millimetres -> glTF metres, +Y up: glTF (X, Y, Z) = (x, z, -y) / 1000, i.e. X to the
#: patient's left, Y superior, Z anterior (the front of the asset faces +Z, as glTF wants).
LPS_TO_GLTF: np.ndarray = np.array(
    [
        [0.001, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.001, 0.0],
        [0.0, -0.001, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)

#: Names of the scene in ``models/`` when the manifest does not name it.
GLB_NAMES: tuple[str, ...] = ("model.glb", "scene.glb")

#: Default CT window (HU) of the slices: a wide soft-tissue window (bone saturates white).
DEFAULT_WINDOW_HU: tuple[float, float] = (-160.0, 240.0)

#: Modules inlined into the page: import specifier -> file under ``static/vendor/three``.
THREE_MODULES: dict[str, str] = {
    "three": "build/three.module.js",
    "three/build/three.core.js": "build/three.core.js",
    "three/addons/loaders/GLTFLoader.js": "examples/jsm/loaders/GLTFLoader.js",
    "three/addons/utils/BufferGeometryUtils.js": "examples/jsm/utils/BufferGeometryUtils.js",
    "three/addons/utils/SkeletonUtils.js": "examples/jsm/utils/SkeletonUtils.js",
    "three/addons/controls/OrbitControls.js": "examples/jsm/controls/OrbitControls.js",
    "three/addons/webxr/VRButton.js": "examples/jsm/webxr/VRButton.js",
}

#: Relative imports inside the vendored modules, rewritten to the bare specifiers above
#: (a ``data:`` URL has no base to resolve relative specifiers against).
_RELATIVE = {
    "./three.core.js": "three/build/three.core.js",
    "../utils/BufferGeometryUtils.js": "three/addons/utils/BufferGeometryUtils.js",
    "../utils/SkeletonUtils.js": "three/addons/utils/SkeletonUtils.js",
}


@dataclass(frozen=True)
class ViewerResult:
    """What :func:`build_viewer` wrote."""

    index_html: Path
    size_bytes: int
    layers: list[str]
    slice_shape_kji: tuple[int, int, int]
    slice_spacing_mm: tuple[float, float, float]


def _static() -> Path:
    return Path(str(files("twinsep.view").joinpath("static")))


def three_version() -> str:
    """Version of the vendored three.js."""
    version = _static() / "vendor" / "three" / "VERSION"
    if not version.is_file():
        raise InputError(
            "the viewer's three.js is not vendored (run `python scripts/vendor_three.py` "
            "in the source tree)"
        )
    return version.read_text().strip()


def _module_source(rel: str) -> str:
    path = _static() / "vendor" / "three" / rel
    if not path.is_file():
        raise InputError(f"{path}: missing (run `python scripts/vendor_three.py`)")
    text = path.read_text(encoding="utf-8")

    def swap(m: re.Match) -> str:
        return m.group(1) + _RELATIVE[m.group(2)] + m.group(1)

    pattern = "|".join(re.escape(k) for k in _RELATIVE)
    return re.sub(rf"(['\"])({pattern})\1", swap, text)


def import_map() -> dict:
    """The import map of the page: every three.js module as a base64 ``data:`` URL."""
    imports = {}
    for spec, rel in THREE_MODULES.items():
        b64 = base64.b64encode(_module_source(rel).encode("utf-8")).decode("ascii")
        imports[spec] = "data:text/javascript;base64," + b64
    return {"imports": imports}


# --- the CT slices -----------------------------------------------------------------------
def slice_volumes(scan, owner, *, max_size: int = 256,
                  window_hu: tuple[float, float] = DEFAULT_WINDOW_HU) -> dict:
    """Downsampled, LPS-oriented CT (uint8) and owner map for the three slice views.

    ``scan`` and ``owner`` are :class:`twinsep.image.Volume` on the same grid (``owner``
    may be None). Returns JSON-ready metadata with the two arrays gzip+base64-encoded:
    ``shape_kji``, ``spacing_mm`` (i, j, k), ``origin_mm``, ``direction`` (row-major 3x3,
    columns i, j, k), ``affine`` (4x4 index -> LPS mm, row-major), ``window_hu``, ``ct``
    and ``owner``.
    """
    import SimpleITK as sitk

    from twinsep.image import Volume

    if owner is not None and not scan.same_grid(owner, tol_mm=1e-2):
        raise InputError("labels/twins.nii.gz is not on the grid of scan.nii.gz")
    ct_img = sitk.DICOMOrient(scan.to_sitk(), "LPS")
    ct = Volume.from_sitk(ct_img)
    own = None
    if owner is not None:
        own = Volume.from_sitk(sitk.DICOMOrient(owner.to_sitk(), "LPS"))
    steps = [max(1, int(np.ceil(n / max_size))) for n in ct.shape]  # k, j, i
    sl = tuple(slice(None, None, s) for s in steps)
    arr = ct.array[sl].astype(np.float32)
    lo, hi = float(window_hu[0]), float(window_hu[1])
    if hi <= lo:
        raise InputError(f"bad CT window {window_hu}: the upper value must exceed the lower")
    ct8 = np.clip(np.rint((arr - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
    if own is not None:
        own8 = own.array[sl].astype(np.uint8)
        own8[own8 > 2] = 0  # only twin A / twin B are drawn
    else:
        own8 = np.zeros_like(ct8)
    spacing = tuple(float(s * st) for s, st in zip(ct.spacing, steps[::-1], strict=True))
    small = Volume(ct8, ct.origin, spacing, ct.direction)

    def pack(a: np.ndarray) -> str:
        raw = gzip.compress(np.ascontiguousarray(a).tobytes(), compresslevel=6, mtime=0)
        return base64.b64encode(raw).decode("ascii")

    return {
        "shape_kji": [int(n) for n in ct8.shape],
        "spacing_mm": [round(s, 6) for s in spacing],
        "origin_mm": [round(v, 6) for v in small.origin],
        "direction": [round(v, 9) for v in small.direction],
        "affine": [round(float(v), 9) for v in small.affine.ravel()],
        "window_hu": [lo, hi],
        "ct": pack(ct8),
        "owner": pack(own8),
    }


# --- the page ----------------------------------------------------------------------------
def _manifest_transform(manifest: dict) -> np.ndarray:
    """The LPS mm -> scene matrix: the manifest's own, else :data:`LPS_TO_GLTF`."""
    frame = manifest.get("frame") if isinstance(manifest.get("frame"), dict) else {}
    for m in (frame.get("glb_from_lps_mm"), manifest.get("lps_to_gltf")):
        if m is not None:
            arr = np.asarray(m, dtype=float)
            if arr.size == 16:
                return arr.reshape(4, 4)
    return LPS_TO_GLTF


def _script_json(obj: object) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_page(*, glb: bytes, manifest: dict, slices: dict | None, title: str) -> str:
    """The HTML text of the viewer for a scene, its manifest and (optionally) CT slices."""
    static = _static()
    template = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "viewer.css").read_text(encoding="utf-8")
    js = (static / "viewer.js").read_text(encoding="utf-8")
    if "</script" in js.lower():
        raise RuntimeError("viewer.js must not contain '</script'")
    data = {
        "title": title,
        "manifest": manifest,
        "lps_to_scene": [float(v) for v in _manifest_transform(manifest).ravel()],
        "twin_colours": {k: list(v) for k, v in TWIN_COLOURS.items()},
        # gzip (level 1) takes the page's scene from ~0.86 to ~0.54 of the GLB's base64
        # size (indices compress well, floats less); the page inflates it with the
        # browser's DecompressionStream
        "glb_gzip": base64.b64encode(gzip.compress(glb, compresslevel=1, mtime=0)).decode(
            "ascii"),
        "slices": slices,
        "three_version": three_version(),
    }
    from twinsep import __version__

    parts = {
        "@@TITLE@@": html.escape(title),
        "@@VERSION@@": html.escape(__version__),
        "@@CSS@@": css,
        "@@IMPORTMAP@@": _script_json(import_map()),
        "@@DATA@@": _script_json(data),
        "@@VIEWER_JS@@": js,
    }
    # one pass, so that no substituted text is searched again
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], template)
