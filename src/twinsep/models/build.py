"""``twinsep models``: build every layer and write the exports into ``CASE/models/``.

Files (paths relative to the case folder)::

    models/model.glb               the VR model: named nodes, PBR materials (metres, +Y up)
    models/manifest.json           every layer: name, colour, node, STL, size, volume, area
    models/stl/<A-brain>.stl       one watertight STL per closed layer (world LPS mm)
    models/stl/doll-A.stl, -B.stl  the doll's solids (doll mm)
    models/doll.3mf                the doll: both solids, each in its twin's colour (mm)
    models/segmentation.seg.nrrd   the layers as a 3D Slicer segmentation
    models/segmentation.dcm        DICOM-SEG referencing the source series (DICOM input)

After ``twinsep simulate`` the GLB and the manifest also hold the separated twins (stage
``separated``: heads, skulls, implants, expanders and wounds; see
:mod:`twinsep.models.separated`), whose STL files are the ones ``simulate`` wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.models.doll import DollPart, doll_parts
from twinsep.models.scene import (
    Layer,
    build_layers,
    cut_surface_layer,
    layer_labelmap,
    resolved_owner,
)
from twinsep.models.surfaces import SurfaceSettings
from twinsep.progress import Progress

MANIFEST_FORMAT = "twinsep-models"
MANIFEST_VERSION = 1
GLB_NAME = "model.glb"
MANIFEST_NAME = "manifest.json"
DOLL_NAME = "doll.3mf"
SEG_NRRD_NAME = "segmentation.seg.nrrd"
DICOM_SEG_NAME = "segmentation.dcm"


@dataclass
class ModelSet:
    """Everything :func:`build_models` made (meshes in world LPS mm; doll in doll mm)."""

    labelmap: Volume
    layers: list[Layer]
    doll: list[DollPart]
    settings: SurfaceSettings
    scale: float
    min_wall_mm: float
    notes: list[str] = field(default_factory=list)

    @property
    def triangles(self) -> int:
        """Triangles in the GLB (all layers with a mesh)."""
        return sum(len(ly.mesh.faces) for ly in self.layers if ly.mesh is not None)


def build_models(tissues: Volume, owner: Volume, *, cut_surface: Path | None = None,
                 settings: SurfaceSettings = SurfaceSettings(), scale: float = 1.0,
                 min_wall_mm: float = 2.0, doll_max_faces: int = 250_000,
                 progress: Progress | None = None) -> ModelSet:
    """Meshes of every twin x tissue, every shared vessel, the cut surface and the doll.

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes (0/1/2, 3 allowed) on one grid.
    cut_surface : Path or None
        ``models/cut_surface.ply`` (world mm), if any.
    settings : SurfaceSettings
        Meshing, smoothing and face budgets.
    scale : float
        Doll size / life size.
    min_wall_mm : float
        Minimum wall thickness of the printed doll (mm, at its scale).
    doll_max_faces : int
        Face budget of each doll solid.
    progress : callable or None
        ``progress(message, fraction)``.
    """
    if scale <= 0:
        raise InputError(f"--scale must be positive, got {scale}")
    if min_wall_mm < 0:
        raise InputError(f"--min-wall-mm must not be negative, got {min_wall_mm}")
    if not tissues.same_grid(owner, tol_mm=1e-2):
        raise InputError("tissue map and owner map are not on the same grid")
    own = resolved_owner(tissues, owner)
    labelmap, layers = layer_labelmap(tissues, owner, own)
    if not layers:
        raise InputError("the tissue map is empty: nothing to model")
    build_layers(labelmap, layers, settings, progress)
    layers = [ly for ly in layers if ly.mesh is not None]
    notes = [f"{ly.name}: {n}" for ly in layers for n in ly.surface.notes]
    if cut_surface is not None:
        cut = cut_surface_layer(Path(cut_surface))
        if cut is not None:
            layers.append(cut)
    if progress is not None:
        progress("doll", 0.0)
    doll = doll_parts(tissues, own, scale=scale, min_wall_mm=min_wall_mm, settings=settings,
                      max_faces=doll_max_faces)
    if progress is not None:
        progress("doll", 1.0)
    return ModelSet(labelmap, layers, doll, settings, scale, min_wall_mm, notes)
