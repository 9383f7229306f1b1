"""The "mock surgery doll": the joined heads as two solids, one per twin, for printing.

Each twin's solid is every head voxel the owner map gives that twin (scalp and all
inside, internal cavities filled); the two solids touch along the cut. They are meshed
like the layers (:func:`twinsep.models.surfaces.mask_surface`), scaled about the centre of
the joined heads (the doll is centred on the origin, mm) and checked:

* watertight (closed, consistently oriented);
* minimum wall thickness: a solid is thick enough where a ball of diameter
  ``min_wall_mm`` (at the doll's scale) fits; voxels no such ball covers (the solid minus
  its morphological opening, computed with two Euclidean distance transforms) are the
  thin parts, and their volume is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume
from twinsep.labels import TWIN_COLOURS, Owner
from twinsep.models.surfaces import (
    Surface,
    SurfaceSettings,
    block_factors,
    bounding_box,
    coarse_field,
    mask_surface,
)

#: Largest share of a solid's volume that may be thinner than the minimum wall.
THIN_TOLERANCE = 0.001


@dataclass
class DollPart:
    """One twin's solid of the doll (mesh in doll mm: scaled, centred)."""

    twin: str
    colour: tuple[int, int, int]
    surface: Surface
    mesh: object
    thin_volume_ml: float
    solid_volume_ml: float

    @property
    def thin_fraction(self) -> float:
        return self.thin_volume_ml / self.solid_volume_ml if self.solid_volume_ml else 0.0

    @property
    def wall_ok(self) -> bool:
        return self.thin_fraction <= THIN_TOLERANCE


def thin_mask(solid: np.ndarray, spacing_kji: tuple[float, float, float],
              min_wall_mm: float) -> np.ndarray:
    """Voxels of ``solid`` that no ball of diameter ``min_wall_mm`` inside it covers.

    Distances are measured to the boundary between voxels (EDT minus half a voxel).
    """
    r = min_wall_mm / 2.0
    h = min(spacing_kji) / 2.0
    pad = np.pad(solid, 1)
    edt = ndi.distance_transform_edt(pad, sampling=spacing_kji)
    core = (edt - h) >= r
    if not core.any():
        return solid.copy()
    reach = ndi.distance_transform_edt(~core, sampling=spacing_kji)
    opened = reach <= r + h
    return (pad & ~opened)[1:-1, 1:-1, 1:-1]


def doll_parts(tissues: Volume, own: np.ndarray, *, scale: float = 1.0,
               min_wall_mm: float = 2.0, settings: SurfaceSettings = SurfaceSettings(),
               max_faces: int = 250_000) -> list[DollPart]:
    """The doll's two solids.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (for the grid; the head is ``own > 0``).
    own : ndarray
        Resolved owner 0/1/2 (array order).
    scale : float
        Doll size / real size (1.0: life size).
    min_wall_mm : float
        Minimum wall thickness of the printed doll, mm.
    settings : SurfaceSettings
        Meshing settings (smoothing; ``mc_spacing_mm`` also sets the wall check's grid).
    max_faces : int
        Face budget per solid.
    """
    head = own > 0
    box = bounding_box(head)
    if box is None:
        return []
    lo = tissues.index_to_world(np.array([s.start for s in box], float))
    hi = tissues.index_to_world(np.array([s.stop - 1 for s in box], float))
    centre = (lo + hi) / 2.0
    factors = block_factors(tissues.spacing_kji, settings.mc_spacing_mm)
    coarse_spacing = tuple(s * f * scale for s, f in zip(tissues.spacing_kji, factors,
                                                         strict=True))
    parts = []
    for twin, code in (("A", Owner.A), ("B", Owner.B)):
        solid = ndi.binary_fill_holes(own[box] == code)
        surf = mask_surface(solid, tissues, settings, box=box, max_faces=max_faces)
        if surf is None:
            continue
        mesh = surf.mesh.copy()
        mesh.vertices = (mesh.vertices - centre) * scale
        fld, _, _ = coarse_field(solid, (0, 0, 0), factors)
        coarse = fld[1:-1, 1:-1, 1:-1] >= 0.5
        thin = thin_mask(coarse, coarse_spacing, min_wall_mm)
        vox_ml = float(np.prod(coarse_spacing)) / 1000.0
        parts.append(DollPart(twin, TWIN_COLOURS[twin], surf, mesh,
                              thin_volume_ml=float(thin.sum()) * vox_ml,
                              solid_volume_ml=float(coarse.sum()) * vox_ml))
    return parts
