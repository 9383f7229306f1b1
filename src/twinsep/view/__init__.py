"""The self-contained 3-D viewer of a case (``twinsep view CASE``).

:func:`build_viewer` writes ``CASE/viewer/index.html``: one HTML file with three.js, the
scene (``models/scene.glb``), its layer manifest and the CT slices with the owner overlay
inlined, so that it works offline, served on localhost (:func:`serve`) or opened as a file.
"""

from __future__ import annotations

from twinsep.view.build import LPS_TO_GLTF, ViewerResult, slice_volumes
from twinsep.view.case import STAGE, ViewSettings, build_viewer
from twinsep.view.serve import serve, start_server

__all__ = [
           "LPS_TO_GLTF",
           "STAGE",
           "ViewSettings",
           "ViewerResult",
           "build_viewer",
           "serve",
           "slice_volumes",
           "start_server",
]
