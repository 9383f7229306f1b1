"""The "mock surgery doll": the joined heads as two solids, one per twin, for printing.

Each twin's solid is every head voxel the owner map gives that twin (scalp and all
inside, internal cavities filled); the two solids touch along the cut. They are meshed
like the layers (:func:`twinsep.models.surfaces.mask_surface`), scaled about the centre of
the joined heads (the doll is centred on the origin, mm) and checked:

* watertight (closed, consistently oriented);
* minimum wall thickness: a solid is thick enough where a ball of diameter
  ``min_wall_mm`` (at the doll's scale) fits; voxels no such ball covers (the solid minus
  its morphological opening by that ball, on the marching-cubes grid) are the thin parts,
  and their volume is reported. The opening is an erosion and a dilation with the ball as
  structuring element (or, for balls of many voxels, two Euclidean distance transforms,
  which give the same voxels).

Each solid is cut out on its own bounding box and its occupancy field is computed once,
for both the mesh and the wall check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume
from twinsep.labels import TWIN_COLOURS, Owner
from twinsep.mesh import block_factors, occupancy_field
from twinsep.models.surfaces import Surface, SurfaceSettings, field_surface, finish_surface

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
    scale: float = 1.0

    @property
    def watertight(self) -> bool:
        return self.surface.closed

    @property
    def volume_ml(self) -> float:
        """Volume of the doll's solid (doll mm, ml)."""
        return self.surface.volume_ml * self.scale ** 3

    @property
    def thin_fraction(self) -> float:
        return self.thin_volume_ml / self.solid_volume_ml if self.solid_volume_ml else 0.0

    @property
    def wall_ok(self) -> bool:
        return self.thin_fraction <= THIN_TOLERANCE


#: Largest ball (voxels) the wall check erodes and dilates with; larger balls use EDTs.
MAX_BALL_VOXELS = 400


def _ball(spacing_kji: tuple[float, float, float], radius: float) -> np.ndarray:
    """Offsets' distances (mm) on a grid just big enough for a ball of ``radius``."""
    rad = [int(np.ceil(radius / s)) for s in spacing_kji]
    g = np.ogrid[tuple(slice(-r, r + 1) for r in rad)]
    return np.sqrt(sum((g[a] * float(spacing_kji[a])) ** 2 for a in range(3)))


def thin_mask(solid: np.ndarray, spacing_kji: tuple[float, float, float],
              min_wall_mm: float) -> np.ndarray:
    """Voxels of ``solid`` that no ball of diameter ``min_wall_mm`` inside it covers.

    Distances are measured to the boundary between voxels (distance between voxel
    centres minus half a voxel): the core is every voxel whose nearest outside voxel is
    at least ``R = min_wall_mm / 2 + h`` away (``h`` half the finest spacing), and the
    covered voxels are those within ``R`` of the core.
    """
    r = min_wall_mm / 2.0
    h = min(spacing_kji) / 2.0
    radius = r + h
    dist = _ball(spacing_kji, radius)
    if np.count_nonzero(dist <= radius) <= MAX_BALL_VOXELS:
        core = ndi.binary_erosion(solid, structure=dist < radius, border_value=0)
        if not core.any():
            return solid.copy()
        opened = ndi.binary_dilation(core, structure=dist <= radius)
        return solid & ~opened
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
    import trimesh

    own = np.asarray(own)
    found = ndi.find_objects(own)  # per owner code; the head is every code > 0
    boxes = [b for b in found if b is not None]
    if not boxes:
        return []
    box = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                for a in range(3))
    lo = tissues.index_to_world(np.array([s.start for s in box], float))
    hi = tissues.index_to_world(np.array([s.stop - 1 for s in box], float))
    centre = (lo + hi) / 2.0
    factors = block_factors(tissues.spacing_kji, settings.mc_spacing_mm)
    coarse_spacing = tuple(s * f * scale for s, f in zip(tissues.spacing_kji, factors,
                                                         strict=True))
    vox_ml = float(np.prod(coarse_spacing)) / 1000.0
    parts = []
    for twin, code in (("A", Owner.A), ("B", Owner.B)):
        tb = found[int(code) - 1] if int(code) <= len(found) else None
        if tb is None:
            continue
        solid = ndi.binary_fill_holes(own[tb] == code)
        fld, offset, step = occupancy_field(solid, tuple(b.start for b in tb), factors)
        ex = field_surface(fld, offset, step, tissues, settings,
                           float(np.count_nonzero(solid)) * tissues.voxel_volume_ml, factors)
        surf = finish_surface(ex, max_faces)
        mesh = trimesh.Trimesh((np.asarray(surf.mesh.vertices) - centre) * scale,
                               np.asarray(surf.mesh.faces), process=False, validate=False)
        coarse = fld[1:-1, 1:-1, 1:-1] >= 0.5
        thin = thin_mask(coarse, coarse_spacing, min_wall_mm)
        parts.append(DollPart(twin, TWIN_COLOURS[twin], surf, mesh,
                              thin_volume_ml=float(np.count_nonzero(thin)) * vox_ml,
                              solid_volume_ml=float(np.count_nonzero(coarse)) * vox_ml,
                              scale=scale))
    return parts
