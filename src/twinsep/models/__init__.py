"""3-D models of the twins: surface meshes, the VR scene, the printable doll, exports.

``models_case(case)`` builds every layer (twin x tissue, shared vessels, the cut surface)
and writes ``CASE/models/``: ``model.glb``, ``manifest.json``, ``stl/*.stl``,
``doll.3mf``, ``segmentation.seg.nrrd`` and, for DICOM input, ``segmentation.dcm``.
See :mod:`twinsep.models.build`.
"""

from twinsep.models.build import ModelSet, build_models
from twinsep.models.case import STAGE, ModelsSettings, models_case, write_models
from twinsep.models.surfaces import Surface, SurfaceSettings, mask_surface

__all__ = ["STAGE", "ModelSet", "ModelsSettings", "Surface", "SurfaceSettings", "build_models",
           "mask_surface", "models_case", "write_models"]
