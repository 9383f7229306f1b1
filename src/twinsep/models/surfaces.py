"""Surface meshes of label masks, in world millimetres.

One mask becomes one closed triangle mesh:

1. crop to the mask's bounding box and, where the voxels are finer than
   ``mc_spacing_mm``, average blocks of voxels (the block mean is a partial-volume field,
   so the 0.5 iso-surface stays where the mask's boundary is);
2. pad with one empty voxel on every side, so marching cubes (Lewiner) closes the surface
   (iso-level just below 0.5, see :data:`MC_LEVEL`);
3. map the vertices through the image's affine (any spacing, any direction) to world LPS mm
   and orient the triangles outwards (positive volume);
4. Taubin smoothing (lambda/mu, which does not shrink the mesh as plain Laplacian
   smoothing does); the volume change is measured and reported;
5. quadric decimation (``fast_simplification``) to a face budget, keeping the mesh closed
   (the decimation is retried gentler, and finally skipped, if it opens the mesh).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twinsep.image import Volume

#: Iso-level of marching cubes on the 0-1 occupancy field. Just below 0.5: on a binary
#: field the saddle of two diagonal voxels is exactly 0.5, and skimage then resolves the
#: tie inconsistently (non-manifold edges); below 0.5 diagonal contacts are joined.
MC_LEVEL = 0.5 - 1e-3


@dataclass(frozen=True)
class SurfaceSettings:
    """How masks become meshes.

    Attributes
    ----------
    mc_spacing_mm : float
        Finest grid (mm) marching cubes runs on; finer scans are block-averaged to it.
    smooth_iterations : int
        Taubin smoothing iterations (0: none).
    taubin_lambda, taubin_mu : float
        Taubin factors (shrink with ``lambda``, inflate with ``-mu``; ``mu > lambda``).
    max_faces_layer : int
        Face budget of one layer.
    max_faces_total : int
        Face budget of the whole scene (a headset or browser handles ~1-2 M triangles).
    """

    mc_spacing_mm: float = 1.0
    smooth_iterations: int = 10
    taubin_lambda: float = 0.5
    taubin_mu: float = 0.53
    max_faces_layer: int = 150_000
    max_faces_total: int = 1_200_000


@dataclass
class Surface:
    """A closed mesh of one mask and what happened to it on the way.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Vertices in world LPS mm, triangles oriented outwards.
    voxel_volume_ml : float
        Volume of the mask (voxel count x voxel volume), ml.
    mc_volume_ml, smoothed_volume_ml : float
        Volume enclosed by the marching-cubes mesh before and after smoothing, ml.
    faces_extracted : int
        Triangles before decimation.
    grid_mm : (3,) float
        Spacing (i, j, k) of the grid marching cubes ran on, mm.
    """

    mesh: object
    voxel_volume_ml: float
    mc_volume_ml: float
    smoothed_volume_ml: float
    faces_extracted: int
    grid_mm: tuple[float, float, float]
    notes: list[str] = field(default_factory=list)

    @property
    def smoothing_volume_change_pct(self) -> float:
        """Volume change of the smoothing, percent of the marching-cubes volume."""
        if self.mc_volume_ml <= 0:
            return 0.0
        return 100.0 * (self.smoothed_volume_ml - self.mc_volume_ml) / self.mc_volume_ml

    @property
    def volume_ml(self) -> float:
        """Volume enclosed by the final mesh, ml."""
        return float(abs(self.mesh.volume)) / 1000.0

    @property
    def area_cm2(self) -> float:
        """Area of the final mesh, cm^2."""
        return float(self.mesh.area) / 100.0

    @property
    def watertight(self) -> bool:
        return bool(self.mesh.is_watertight)


def block_factors(spacing_kji: tuple[float, float, float], mc_spacing_mm: float) -> tuple[int, ...]:
    """Integer block size per array axis so that each block is at most ``mc_spacing_mm``
    (never below one voxel)."""
    return tuple(max(1, int(np.floor(mc_spacing_mm / s + 1e-6))) for s in spacing_kji)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box (array order) of the True voxels, or None when there are none."""
    out = []
    for ax in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != ax)
        hit = np.flatnonzero(mask.any(axis=other))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def coarse_field(mask: np.ndarray, start: tuple[int, ...], factors: tuple[int, ...]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-mean field of a cropped mask, padded by one empty voxel.

    Returns
    -------
    field : ndarray of float32
        Occupancy 0-1 on the coarse, padded grid.
    offset, step : (3,) ndarray
        Array index (k, j, i) of the original grid = ``offset + step * coarse index``.
    """
    f = np.asarray(factors)
    pad_end = [(-n) % fa for n, fa in zip(mask.shape, factors, strict=True)]
    m = mask.astype(np.float32, copy=False)
    if any(pad_end):
        m = np.pad(m, [(0, p) for p in pad_end])
    if (f > 1).any():
        nk, nj, ni = (n // fa for n, fa in zip(m.shape, factors, strict=True))
        m = m.reshape(nk, f[0], nj, f[1], ni, f[2]).mean(axis=(1, 3, 5), dtype=np.float32)
    m = np.pad(m, 1)
    offset = np.asarray(start, float) + (f - 1) / 2.0 - f
    return m, offset, f.astype(float)


def mask_surface(mask: np.ndarray, vol: Volume, settings: SurfaceSettings = SurfaceSettings(),
                 *, box: tuple[slice, ...] | None = None, max_faces: int | None = None
                 ) -> Surface | None:
    """Closed, smoothed, decimated surface of a boolean mask.

    Parameters
    ----------
    mask : ndarray of bool
        The mask, array order ``[k, j, i]``; either the full grid of ``vol`` or the crop
        ``box`` of it.
    vol : Volume
        Geometry of the full grid (origin, spacing in mm, direction).
    settings : SurfaceSettings
    box : tuple of slice, optional
        Where ``mask`` lies in the full grid when it is a crop.
    max_faces : int, optional
        Face budget (default ``settings.max_faces_layer``).

    Returns
    -------
    Surface or None
        None when the mask is empty.
    """
    import trimesh
    from skimage.measure import marching_cubes

    mask = np.asarray(mask, bool)
    start = (0, 0, 0) if box is None else tuple(s.start for s in box)
    bb = bounding_box(mask)
    if bb is None:
        return None
    sub = mask[bb]
    start = tuple(s0 + b.start for s0, b in zip(start, bb, strict=True))
    factors = block_factors(vol.spacing_kji, settings.mc_spacing_mm)
    fld, offset, step = coarse_field(sub, start, factors)
    verts, faces, _, _ = marching_cubes(fld, level=MC_LEVEL, allow_degenerate=False)
    kji = offset + verts * step
    world = vol.index_to_world(kji)
    mesh = trimesh.Trimesh(world, faces, process=True, validate=False)
    if mesh.volume < 0:
        mesh.invert()
    notes: list[str] = []
    mc_volume = float(mesh.volume) / 1000.0
    if settings.smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=settings.taubin_lambda, nu=settings.taubin_mu,
                                        iterations=settings.smooth_iterations)
    smoothed = float(mesh.volume) / 1000.0
    extracted = len(mesh.faces)
    budget = settings.max_faces_layer if max_faces is None else max_faces
    mesh = decimate(mesh, budget, notes)
    grid = tuple(float(s * fa) for s, fa in zip(vol.spacing, factors[::-1], strict=True))
    return Surface(mesh=mesh, voxel_volume_ml=float(sub.sum()) * vol.voxel_volume_ml,
                   mc_volume_ml=mc_volume, smoothed_volume_ml=smoothed,
                   faces_extracted=extracted, grid_mm=grid, notes=notes)  # type: ignore[arg-type]


def decimate(mesh, max_faces: int, notes: list[str] | None = None):
    """Quadric decimation of ``mesh`` to at most ``max_faces`` triangles, kept closed.

    If the decimated mesh is not watertight (after merging vertices and filling holes),
    slightly smaller budgets and then a gentler reduction are tried; if all fail, the mesh
    is returned undecimated and a note is added to ``notes``.
    """
    import fast_simplification
    import trimesh

    n = len(mesh.faces)
    if n <= max_faces or max_faces <= 0:
        return mesh
    was_closed = mesh.is_watertight
    # an opened mesh is usually a local accident of one collapse order: try targets near
    # the budget first, then gentler reductions
    targets = [max_faces, int(max_faces * 0.93), int(max_faces * 0.86), (max_faces + n) // 2]
    for target in targets:
        reduction = 1.0 - target / n
        v, f = fast_simplification.simplify(
            np.ascontiguousarray(mesh.vertices, np.float32),
            np.ascontiguousarray(mesh.faces, np.int32), target_reduction=reduction)
        out = trimesh.Trimesh(v, f, process=True, validate=True)
        if not out.is_watertight:
            out.fill_holes()
        if out.is_watertight or not was_closed:
            if out.volume < 0:
                out.invert()
            return out
    if notes is not None:
        notes.append(f"decimation opened the mesh; kept {n} triangles")
    return mesh
