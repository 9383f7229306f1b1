"""Triangle meshes in world millimetres: the one mesh type, marching cubes to world mm
with the closedness fix, smoothing, decimation that keeps a mesh closed, and measures.

A :class:`Mesh` carries its frame: the name of the coordinate system of its vertices
(:data:`LPS_MM`, the scan's world LPS mm, unless said otherwise, e.g. the separated frame
of ``twinsep simulate`` or the doll's frame).

Closed surfaces of masks (what models, implants and skulls are made of):

1. the mask's crop, block-summed where the voxels are finer than the grid asked for
   (:func:`occupancy_field`: the block mean is a partial-volume field, so the 0.5
   iso-surface stays where the mask's boundary is; blocks aligned to the scan's grid),
   padded with one empty voxel on every side;
2. marching cubes (Lewiner) at :data:`MC_LEVEL`, just below 0.5 (the closedness fix: on a
   binary field the saddle of two diagonal voxels is exactly 0.5, where skimage resolves
   the tie inconsistently and leaves non-manifold edges), vertices mapped through the
   image's affine to world mm (any spacing, any direction), triangles oriented outwards
   (positive volume): :func:`marching_cubes`;
3. Taubin smoothing (:func:`taubin`), which does not shrink the mesh as Laplacian smoothing
   does;
4. quadric decimation to a face budget, kept closed (:func:`decimate`).

Volumes, areas and the closedness test are computed with numpy (:func:`signed_volume`,
:func:`surface_area`, :func:`is_closed`) rather than through trimesh's cached properties,
which are much slower on meshes of 10^5 triangles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from twinsep.image import Volume, block_reduce, bounding_box

#: Iso-level of marching cubes on the 0-1 occupancy field. Just below 0.5: on a binary
#: field the saddle of two diagonal voxels is exactly 0.5, and skimage then resolves the
#: tie inconsistently (non-manifold edges); below 0.5 diagonal contacts are joined.
MC_LEVEL = 0.5 - 1e-3

#: The frame of world coordinates: the scan's physical LPS millimetres.
LPS_MM = "world LPS mm"

#: Taubin factors of the smoothing of every closed surface (the defaults of
#: ``models.SurfaceSettings``): shrink with lambda, inflate with -mu (mu > lambda).
TAUBIN_LAMBDA = 0.5
TAUBIN_MU = 0.53


@dataclass(eq=False)
class Mesh:
    """A triangle mesh and the frame of its vertices.

    Attributes
    ----------
    vertices : ndarray (n, 3) of float64
        Vertex coordinates, mm, in ``frame``.
    faces : ndarray (m, 3) of int64
        Triangles (vertex indices); outward normals by the right-hand rule when closed.
    frame : str
        The coordinate system (:data:`LPS_MM` by default).
    """

    vertices: np.ndarray
    faces: np.ndarray
    frame: str = LPS_MM

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, np.int64).reshape(-1, 3)

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @property
    def area_mm2(self) -> float:
        """Area, mm^2 (:func:`surface_area`)."""
        return surface_area(self.vertices, self.faces)

    @property
    def volume_mm3(self) -> float:
        """Signed enclosed volume, mm^3 (:func:`signed_volume`; meaningful when closed)."""
        return signed_volume(self.vertices, self.faces)

    @property
    def closed(self) -> bool:
        """Watertight and consistently oriented (:func:`is_closed`)."""
        return is_closed(self.vertices, self.faces)

    def moved(self, shift: Sequence[float], frame: str) -> Mesh:
        """The mesh translated by ``shift`` (mm) into ``frame``."""
        return Mesh(self.vertices + np.asarray(shift, float), self.faces, frame)

    def to_trimesh(self):
        """A :class:`trimesh.Trimesh` of the same arrays (no processing)."""
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False, validate=False)


def grid_to_world(vol: Volume, kji: np.ndarray, offset: Sequence[float] = (0.0, 0.0, 0.0),
                  step: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """World mm of the grid positions ``offset + step * kji`` (array order ``k, j, i``,
    fractional) of ``vol``'s grid, as one contiguous matrix product."""
    cols = np.asarray(vol.affine, np.float64)[:3, :3][:, ::-1]  # columns for k, j, i
    world = np.asarray(kji, np.float64) @ np.ascontiguousarray((cols * np.asarray(step)).T)
    world += np.asarray(vol.affine, np.float64)[:3, 3] + cols @ np.asarray(offset, float)
    return world


def iso_surface(field: np.ndarray, level: float, *, step_size: int = 1,
                allow_degenerate: bool = False, mask: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (Lewiner, skimage) of ``field`` at ``level``, the one call of it:
    vertices in the field's array indices (float32, as skimage gives them) and triangles
    (int64), as skimage orients them. ``mask``: only the cubes where it is true."""
    from skimage.measure import marching_cubes as _lewiner

    verts, faces, _, _ = _lewiner(field, level=level, step_size=step_size,
                                  allow_degenerate=allow_degenerate, mask=mask)
    return verts, np.asarray(faces, np.int64)


def marching_cubes(field: np.ndarray, vol: Volume, *, offset: Sequence[float] = (0, 0, 0),
                   step: Sequence[float] = (1, 1, 1), level: float = MC_LEVEL,
                   step_size: int = 1, allow_degenerate: bool = False, orient: bool = True
                   ) -> tuple[Mesh, float]:
    """The iso-surface of ``field`` in world mm, and its signed volume (mm^3).

    ``field`` samples ``vol``'s grid at ``offset + step * index`` (array order). With
    ``orient`` the triangles are turned outwards (positive volume, returned as such). The
    closedness fix is the default ``level`` (:data:`MC_LEVEL`) on a field padded with one
    empty voxel (see :func:`occupancy_field`).
    """
    verts, faces = iso_surface(field, level, step_size=step_size,
                               allow_degenerate=allow_degenerate)
    world = grid_to_world(vol, verts, offset, step)
    volume = signed_volume(world, faces)
    if orient and volume < 0:
        faces = faces[:, ::-1].copy()
        volume = -volume
    return Mesh(world, faces), volume


class OccupancyField(NamedTuple):
    """The padded occupancy field of a mask's crop (:func:`mask_field`)."""

    field: np.ndarray  # float32, 0-1
    offset: np.ndarray  # grid index (k, j, i) = offset + step * field index
    step: np.ndarray
    factors: tuple[int, ...]  # block size per axis
    voxels: float  # number of voxels of the mask


def mask_field(mask: np.ndarray, vol: Volume, *, start: Sequence[int] = (0, 0, 0),
               mc_spacing_mm: float = 0.0) -> OccupancyField | None:
    """Step 1 of the module docstring for a boolean mask: its bounding box, in blocks of at
    most ``mc_spacing_mm`` (whole voxels; 0: the voxels themselves), padded. ``mask`` is
    ``vol``'s grid or a crop of it whose first voxel is at index ``start``. None when empty.
    """
    mask = np.asarray(mask, bool)
    bb = bounding_box(mask)
    if bb is None:
        return None
    sub = mask[bb]
    start = tuple(s0 + b.start for s0, b in zip(start, bb, strict=True))
    factors = block_factors(vol.spacing_kji, mc_spacing_mm)
    fld, offset, step = occupancy_field(sub, start, factors)
    return OccupancyField(fld, offset, step, factors, float(np.count_nonzero(sub)))


def mask_mesh(mask: np.ndarray, vol: Volume, *, start: Sequence[int] = (0, 0, 0),
              mc_spacing_mm: float = 0.0, smooth_iterations: int = 0,
              taubin_lambda: float = TAUBIN_LAMBDA, taubin_mu: float = TAUBIN_MU
              ) -> Mesh | None:
    """Closed surface of a boolean mask in world mm (steps 1-3 of the module docstring):
    :func:`mask_field`, :func:`marching_cubes` with the closedness fix and
    ``smooth_iterations`` of :func:`taubin`. None for an empty mask."""
    occ = mask_field(mask, vol, start=start, mc_spacing_mm=mc_spacing_mm)
    if occ is None:
        return None
    mesh, _ = marching_cubes(occ.field, vol, offset=occ.offset, step=occ.step)
    if smooth_iterations > 0:
        mesh = Mesh(taubin(mesh.vertices, mesh.faces, taubin_lambda, taubin_mu,
                           smooth_iterations), mesh.faces, mesh.frame)
    return mesh


def simplify(vertices: np.ndarray, faces: np.ndarray, max_faces: int | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation (``fast_simplification`` on float32) to about ``max_faces``
    triangles, for display only: the result may be open (:func:`decimate` keeps a closed
    mesh closed). The input itself when it has no more triangles or the decimation fails."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if max_faces and len(f) > max_faces:
        try:
            import fast_simplification

            v32, f32 = fast_simplification.simplify(v.astype(np.float32), f.astype(np.int32),
                                                    1.0 - max_faces / len(f))
            v, f = np.asarray(v32, np.float64), np.asarray(f32, np.int64)
        except Exception:
            pass
    return v, f


# --- measures ---------------------------------------------------------------------------
def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (mm^3) enclosed by a closed triangle mesh (positive: outward)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if len(f) == 0:
        return 0.0
    v = v - v.mean(axis=0)  # about the centre: fewer cancelling digits
    x, y, z = (np.ascontiguousarray(v[:, c]) for c in range(3))
    f0, f1, f2 = f[:, 0], f[:, 1], f[:, 2]
    y1, z1, y2, z2 = y[f1], z[f1], y[f2], z[f2]
    det = x[f0] * (y1 * z2 - z1 * y2)
    det += y[f0] * (z1 * x[f2] - x[f1] * z2)
    det += z[f0] * (x[f1] * y2 - y1 * x[f2])
    return float(det.sum()) / 6.0


def surface_area(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Area (mm^2) of a triangle mesh."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if len(f) == 0:
        return 0.0
    a = v[f[:, 0]]
    n = np.cross(v[f[:, 1]] - a, v[f[:, 2]] - a)
    return 0.5 * float(np.sqrt(np.einsum("ij,ij->i", n, n)).sum())


def is_closed(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Watertight and consistently oriented, as an STL reader would see it.

    Vertices that coincide in float32 (what STL stores) are merged first; then no triangle
    may be degenerate, and every directed edge must occur exactly once with its reverse
    occurring exactly once too (each edge shared by two triangles of opposite winding).
    """
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    if len(f) == 0:
        return False
    v32 = np.ascontiguousarray(vertices, np.float32) + np.float32(0.0)  # -0 is 0
    if _may_coincide(v32):
        keys = v32.view(np.dtype((np.void, 12))).ravel()
        _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        if len(first) < len(v32):
            f = inv.reshape(-1)[f]
    if ((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])).any():
        return False
    n = np.int64(f.max() + 1)
    a = f.ravel()
    b = np.roll(f, -1, axis=1).ravel()
    fwd = np.sort(a * n + b)
    if (fwd[1:] == fwd[:-1]).any():
        return False
    return bool(np.array_equal(fwd, np.sort(b * n + a)))


def _may_coincide(v32: np.ndarray) -> bool:
    """False when no two rows of a float32 (n, 3) array are equal (a hash of each row's
    bits, sorted; equal hashes only say "maybe")."""
    if len(v32) < 2:
        return False
    bits = v32.view(np.uint32).astype(np.uint64)
    h = bits[:, 0] * np.uint64(0x9E3779B97F4A7C15)
    h ^= bits[:, 1] * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= bits[:, 2] * np.uint64(0x165667B19E3779F9)
    h.sort()
    return bool((h[1:] == h[:-1]).any())


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no triangle uses (keeping their order)."""
    f = np.asarray(faces, np.int64)
    used = np.zeros(len(vertices), bool)
    used[f.ravel()] = True
    if used.all():
        return np.asarray(vertices), f
    remap = np.cumsum(used) - 1
    return np.asarray(vertices)[used], remap[f]


# --- smoothing and decimation -----------------------------------------------------------
def taubin(vertices: np.ndarray, faces: np.ndarray, lamb: float, mu: float,
           iterations: int) -> np.ndarray:
    """Taubin smoothing (equal-weight umbrella operator, as ``trimesh.smoothing``).

    Even iterations move each vertex by ``lamb`` towards the mean of its neighbours, odd
    ones by ``mu`` away from it. Returns new vertices.
    """
    from scipy import sparse

    v = np.array(vertices, np.float64)
    if iterations <= 0 or len(faces) == 0:
        return v
    n = len(v)
    f = np.asarray(faces, np.int64)
    rows = f.ravel()
    cols = np.roll(f, -1, axis=1).ravel()
    # CSR of the half-edges by start vertex (a repeated edge is one more entry, which the
    # product sums: the same weights as summing duplicates)
    order = np.argsort(rows, kind="stable")
    deg = np.bincount(rows, minlength=n)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(deg, out=indptr[1:])
    w = 1.0 / np.maximum(deg, 1).astype(np.float64)
    op = sparse.csr_matrix((np.repeat(w, deg), cols[order], indptr), shape=(n, n))
    for it in range(iterations):
        d = op @ v
        d -= v
        v += (lamb if it % 2 == 0 else -mu) * d
    return v


def decimate(vertices: np.ndarray, faces: np.ndarray, max_faces: int,
             notes: list[str] | None = None, *, closed: bool | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation to at most ``max_faces`` triangles, kept closed.

    If the decimated mesh is not watertight (after merging vertices and filling holes),
    slightly smaller budgets and then a gentler reduction are tried; if all fail, the mesh
    is returned undecimated and a note is added to ``notes``. ``closed`` says whether the
    input is watertight (tested when None). Returns vertices and faces (the decimation
    keeps the winding; :func:`finish_surface` checks the orientation).
    """
    import fast_simplification

    v_in = np.asarray(vertices)
    f_in = np.asarray(faces, np.int64)
    n = len(f_in)
    if n <= max_faces or max_faces <= 0:
        return v_in, f_in
    was_closed = is_closed(v_in, f_in) if closed is None else closed
    pts = np.ascontiguousarray(v_in, np.float64)
    tris = np.ascontiguousarray(f_in, np.int32)
    # an opened mesh is usually a local accident of one collapse order: try targets near
    # the budget first, then gentler reductions
    targets = [max_faces, int(max_faces * 0.93), int(max_faces * 0.86), (max_faces + n) // 2]
    for target in targets:
        v, f = fast_simplification.simplify(pts, tris, target_reduction=1.0 - target / n)
        v, f = compact(np.asarray(v, np.float64), np.asarray(f, np.int64))
        v, f = drop_pillows(v, f)
        ok = is_closed(v, f)
        if not ok and was_closed:
            v, f, ok = unpinch(v, f)
        if not ok and was_closed:
            v, f, ok = _repair(v, f)
        if ok or not was_closed:
            return v, f
    if notes is not None:
        notes.append(f"decimation opened the mesh; kept {n} triangles")
    return v_in, f_in


#: How far (mm) :func:`unpinch` moves the copies of a split vertex apart, each into its
#: own sheet's solid side.
UNPINCH_MM = 0.01


def _edge_groups(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-edges (corner ``3 * face + i`` to the next corner) grouped by undirected edge:
    the half-edge order, the group starts in it and the group sizes."""
    a = f.ravel()
    b = np.roll(f, -1, axis=1).ravel()
    n = np.int64(f.max() + 1)
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    sizes = np.diff(np.r_[starts, len(ks)])
    return order, starts, sizes


def drop_pillows(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove pairs of triangles on the same three vertices with opposite windings (flat
    two-triangle "pillows" a decimation can leave, alone or glued onto the surface along
    an edge, which then has four triangles). Each pair uses every one of its edges once in
    each direction, so removing it keeps a closed mesh closed."""
    n = np.int64(f.max() + 1) if len(f) else 0
    if len(f) < 2 or n > 2_000_000:  # (keys below must fit in int64)
        return v, f
    s = np.sort(f, axis=1)
    key = (s[:, 0] * n + s[:, 1]) * n + s[:, 2]
    order = np.argsort(key, kind="stable")
    ks = key[order]
    same = ks[1:] == ks[:-1]
    if not same.any():
        return v, f
    # the few triangles whose vertex set occurs more than once
    many = np.zeros(len(f), bool)
    many[1:] |= same
    many[:-1] |= same
    cand = np.sort(order[many])
    fc = f[cand]
    # winding parity: (a, b, c) with a the smallest vertex is "even" when b < c
    lo = np.argmin(fc, axis=1)
    rows = np.arange(len(fc))
    odd = fc[rows, (lo + 1) % 3] > fc[rows, (lo + 2) % 3]
    seen: dict[int, list[list[int]]] = {}
    for i, k, o in zip(cand.tolist(), key[cand].tolist(), odd.tolist(), strict=True):
        seen.setdefault(k, [[], []])[int(o)].append(i)
    dropped = [i for even, odds in seen.values() for i in
               even[:min(len(even), len(odds))] + odds[:min(len(even), len(odds))]]
    if not dropped:
        return v, f
    drop = np.zeros(len(f), bool)
    drop[dropped] = True
    rest = f[~drop]
    if len(rest) == 0:
        return v, f
    return compact(v, rest)


def unpinch(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Split the vertices where a decimation pinched two sheets of the surface together
    (edges of four triangles), one copy per fan of triangles around the vertex, and move
    each copy :data:`UNPINCH_MM` into its own side; then test :func:`is_closed`.

    A fan is a set of a vertex's triangles joined through edges of exactly two
    triangles. Returns vertices, faces and whether the result is closed.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(f, np.int64)
    order, starts, sizes = _edge_groups(f)
    if (sizes % 2).any() or (sizes == 2).all():
        return v, f, is_closed(v, f)
    pair = starts[sizes == 2]
    h1, h2 = order[pair], order[pair + 1]
    nxt = 3 * (np.arange(3 * len(f)) // 3) + (np.arange(3 * len(f)) + 1) % 3
    a = f.ravel()
    same = a[h1] == a[h2]  # same direction: inconsistent winding (joined start to start)
    c1 = np.concatenate([h1, nxt[h1]])
    c2 = np.concatenate([np.where(same, h2, nxt[h2]), np.where(same, nxt[h2], h2)])
    m = 3 * len(f)
    graph = sparse.coo_matrix((np.ones(len(c1), np.int8), (c1, c2)), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    # one vertex per (vertex, fan); fans ordered by vertex, then by their first corner
    first = np.full(comp.max() + 1, m, np.int64)
    np.minimum.at(first, comp, np.arange(m))
    fan_vertex = a[first]
    fan_order = np.lexsort((first, fan_vertex))
    new_id = np.empty_like(fan_order)
    new_id[fan_order] = np.arange(len(fan_order))
    nf = new_id[comp].reshape(-1, 3)
    nv = np.asarray(v, np.float64)[fan_vertex[fan_order]].copy()
    split = np.bincount(fan_vertex, minlength=len(v))[fan_vertex[fan_order]] > 1
    if split.any():
        tri = nv[nf]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal = np.zeros_like(nv)
        for c in range(3):
            normal[:, c] = np.bincount(nf.ravel(), weights=np.repeat(fn[:, c], 3),
                                       minlength=len(nv))
        length = np.linalg.norm(normal, axis=1)
        move = split & (length > 0)
        nv[move] -= UNPINCH_MM * normal[move] / length[move, None]
    return nv, nf, is_closed(nv, nf)


def _repair(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """trimesh's processing (merge vertices, drop degenerate and duplicate triangles, fix
    winding) and hole filling; slow, so only for a decimation that opened the mesh."""
    import trimesh

    out = trimesh.Trimesh(v, f, process=True, validate=True)
    if not out.is_watertight:
        out.fill_holes()
    v2, f2 = np.asarray(out.vertices, np.float64), np.asarray(out.faces, np.int64)
    return v2, f2, is_closed(v2, f2)


# --- grids ------------------------------------------------------------------------------
def block_factors(spacing_kji: tuple[float, float, float], mc_spacing_mm: float) -> tuple[int, ...]:
    """Integer block size per array axis so that each block is at most ``mc_spacing_mm``
    (never below one voxel)."""
    return tuple(max(1, int(np.floor(mc_spacing_mm / s + 1e-6))) for s in spacing_kji)


def occupancy_field(mask: np.ndarray, start: tuple[int, ...], factors: tuple[int, ...],
                    *, align: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block-mean field of a cropped mask, padded by one empty voxel.

    Parameters
    ----------
    mask : ndarray of bool
        The crop of the mask.
    start : (3,) int
        Array index (k, j, i) of the crop's first voxel in the full grid.
    factors : (3,) int
        Block size per axis.
    align : bool
        Align blocks to the full grid (block edges at multiples of ``factors``), so that
        crops of different masks share one coarse grid.

    Returns
    -------
    field : ndarray of float32
        Occupancy 0-1 on the coarse, padded grid.
    offset, step : (3,) ndarray
        Array index (k, j, i) of the original grid = ``offset + step * coarse index``.
    """
    f = np.asarray(factors)
    start = np.asarray(start, int)
    lead = start % f if align else np.zeros(3, int)
    if (f > 1).any():
        m = np.asarray(mask, bool).view(np.uint8)
        pad_end = [(-(n + ld)) % fa for n, ld, fa in zip(m.shape, lead, factors, strict=True)]
        if any(pad_end) or lead.any():
            m = np.pad(m, [(int(ld), int(p)) for ld, p in zip(lead, pad_end, strict=True)])
        s = block_reduce(m, tuple(int(x) for x in f), "count")
        m = s.astype(np.float32)
        m *= np.float32(1.0 / float(np.prod(f)))
    else:
        m = np.asarray(mask, bool).astype(np.float32)
    m = np.pad(m, 1)
    offset = (start - lead).astype(float) + (f - 1) / 2.0 - f
    return m, offset, f.astype(float)
