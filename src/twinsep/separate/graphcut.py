"""Minimum s-t cut of the voxel graph, on a narrow band, coarse to fine.

Nodes are tissue voxels, edges join 6-neighbours, an edge's capacity is the risk of
cutting the face between the two voxels (``area_mm2 * (c_u + c_v) / 2``, see
:mod:`twinsep.separate.risk`). Source = twin A, sink = twin B.

Only the voxels of a *band* around the current A/B interface are free; every tissue voxel
outside the band keeps its side, which enters the graph as terminal capacity on its band
neighbours (exactly equivalent to infinite terminal links on the fixed voxels). The first
(coarsest, about ``coarse_mm``) level's band is every tissue voxel within ``corridor_mm`` of
the interface of the starting owner map (the identity map); each finer level's band is the
voxels whose parent lies within ``band_voxels`` coarse voxels of the coarser cut. Each level
halves the spacing, so a 0.5 mm scan is cut at about 4, 2, 1 and 0.5 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import block_expand, block_reduce, bounding_box
from twinsep.separate.metrics import face_masks

_A, _B = 1, 2
_STRUCT6 = ndi.generate_binary_structure(3, 1)


@dataclass
class LevelStats:
    """What one pyramid level did."""

    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]
    band_voxels: int
    edges: int
    flow: float
    seconds: float


@dataclass
class CutResult:
    """Owner map after the cut (0 background, 1 A, 2 B) and per-level statistics."""

    owner: np.ndarray
    levels: list[LevelStats] = field(default_factory=list)

    @property
    def flow(self) -> float:
        """Max-flow value of the finest level (risk of the cut faces inside its band)."""
        return self.levels[-1].flow if self.levels else 0.0


# --- pyramid geometry ------------------------------------------------------------------
def pyramid_factors(
    spacing_kji: tuple[float, float, float], coarse_mm: float
) -> list[tuple[int, int, int]]:
    """Integer block factors per level, coarsest first, finest ``(1, 1, 1)`` last.

    Each level doubles the factor of the axes whose spacing stays at or below the level's
    target spacing (``min spacing * 2**L``), so the levels nest and anisotropic scans
    become about isotropic at the coarse levels.
    """
    s = np.asarray(spacing_kji, dtype=float)
    levels = [(1, 1, 1)]
    target = float(s.min())
    while target * 2 <= coarse_mm * 1.01:
        target *= 2
        prev = levels[-1]
        f = tuple(p * 2 if s[a] * p * 2 <= target * 1.01 else p for a, p in enumerate(prev))
        if f == prev:
            continue
        levels.append(f)  # type: ignore[arg-type]
    return levels[::-1]


def interface_mask(owner: np.ndarray) -> np.ndarray:
    """Voxels of A or B with a 6-neighbour of the other twin."""
    out = np.zeros(owner.shape, dtype=bool)
    for _, lo, hi, m in face_masks(owner):
        out[lo] |= m
        out[hi] |= m
    return out


def fill_unowned(owner: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Give tissue voxels without an owner (0 or 3) the owner of the nearest owned voxel.

    The nearest owned voxel is searched on the bounding box of the unowned voxels grown
    until every answer is closer than the box's margin (so it is exact), not on the whole
    volume.
    """
    owned = (owner == _A) | (owner == _B)
    todo = tissue & ~owned
    if not todo.any():
        return np.where(tissue, owner, 0).astype(np.uint8)
    if not owned.any():
        raise InputError("the owner map has no twin A or twin B voxels")
    out = np.where(tissue, np.where(owned, owner, 0), 0).astype(np.uint8)
    pad = 8
    while True:
        box = bounding_box(todo, pad)
        whole = all(b.start == 0 and b.stop == n for b, n in zip(box, todo.shape, strict=True))
        sub_owned = owned[box]
        if sub_owned.any():
            dist, idx = ndi.distance_transform_edt(~sub_owned, return_indices=True)
            sub_todo = todo[box]
            if whole or float(dist[sub_todo].max()) <= pad:
                filled = owner[box][tuple(idx)]
                out[box] = np.where(sub_todo, filled, out[box])
                return out
        pad *= 4


# --- one band --------------------------------------------------------------------------
def solve_band(
    cost: np.ndarray,
    tissue: np.ndarray,
    owner: np.ndarray,
    band: np.ndarray,
    spacing_kji: tuple[float, float, float],
    force: np.ndarray | None = None,
    solver: str = "bk",
) -> tuple[np.ndarray, float, int]:
    """Re-cut the voxels of ``band``; everything else keeps its owner.

    Parameters
    ----------
    cost : ndarray float32
        Risk per mm2 of each voxel.
    tissue : ndarray bool
        Graph nodes (tissue voxels).
    owner : ndarray uint8
        Current owner (1 A, 2 B) of every tissue voxel.
    band : ndarray bool
        Free voxels (a subset of ``tissue``).
    spacing_kji : (3,) float
        Voxel spacing (mm) in array order; face areas follow from it.
    force : ndarray uint8, optional
        1/2 where a voxel must end up with twin A/B (infinite terminal link).
    solver : {"bk", "dinic"}
        PyMaxflow's Boykov-Kolmogorov, or scipy's Dinic (integer capacities) for comparison.

    Returns
    -------
    owner : ndarray uint8
        New owner map.
    flow : float
        Max-flow value (risk units).
    edges : int
        Number of neighbour edges in the graph.
    """
    band = band & tissue
    flat = np.flatnonzero(band)
    out = owner.copy()
    n = flat.size
    if n == 0:
        return out, 0.0, 0
    shape = band.shape
    strides = (shape[1] * shape[2], shape[2], 1)
    coords = np.unravel_index(flat, shape)
    cost_f = cost.ravel()
    tissue_f = tissue.ravel()
    owner_f = owner.ravel()
    src = np.zeros(n, dtype=np.float64)
    snk = np.zeros(n, dtype=np.float64)
    ei: list[np.ndarray] = []
    ej: list[np.ndarray] = []
    ec: list[np.ndarray] = []
    c_self = cost_f[flat].astype(np.float64)
    for ax in range(3):
        area = float(np.prod([spacing_kji[b] for b in range(3) if b != ax]))
        for d in (1, -1):
            ok = (coords[ax] + d >= 0) & (coords[ax] + d < shape[ax])
            idx = np.flatnonzero(ok)
            nb = flat[idx] + d * strides[ax]
            t = tissue_f[nb]
            idx, nb = idx[t], nb[t]
            w = area * 0.5 * (c_self[idx] + cost_f[nb])
            pos = np.searchsorted(flat, nb)
            pos_c = np.minimum(pos, n - 1)
            inb = flat[pos_c] == nb
            if d == 1:
                ei.append(idx[inb])
                ej.append(pos_c[inb])
                ec.append(w[inb])
            fixed = ~inb
            fo = owner_f[nb[fixed]]
            np.add.at(src, idx[fixed][fo == _A], w[fixed][fo == _A])
            np.add.at(snk, idx[fixed][fo == _B], w[fixed][fo == _B])
    i = np.concatenate(ei)
    j = np.concatenate(ej)
    c = np.concatenate(ec)
    if force is not None:
        fv = force.ravel()[flat]
        big = float(c.sum() + src.sum() + snk.sum()) * 4.0 + 1.0
        src[fv == _A] = big
        snk[fv == _A] = 0.0
        snk[fv == _B] = big
        src[fv == _B] = 0.0
    if solver == "bk":
        is_b, flow = _solve_bk(n, i, j, c, src, snk)
    elif solver == "dinic":
        is_b, flow = _solve_dinic(n, i, j, c, src, snk)
    else:
        raise ValueError(f"unknown solver {solver!r}")
    out.ravel()[flat] = np.where(is_b, _B, _A).astype(np.uint8)
    return out, flow, int(i.size)


def _solve_bk(n, i, j, c, src, snk) -> tuple[np.ndarray, float]:
    import maxflow

    g = maxflow.Graph[float](n, i.size)
    g.add_nodes(n)
    g.add_edges(i.astype(np.int32), j.astype(np.int32), c, c)
    nodes = np.arange(n, dtype=np.int32)
    g.add_grid_tedges(nodes, src, snk)
    flow = float(g.maxflow())
    return np.asarray(g.get_grid_segments(nodes), dtype=bool), flow


def _solve_dinic(n, i, j, c, src, snk) -> tuple[np.ndarray, float]:
    """scipy.sparse.csgraph.maximum_flow (Dinic) on capacities scaled to integers."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, maximum_flow

    s_node, t_node = n, n + 1
    sn = np.flatnonzero(src > 0)
    tn = np.flatnonzero(snk > 0)
    rows = np.concatenate([i, j, np.full(sn.size, s_node), tn])
    cols = np.concatenate([j, i, sn, np.full(tn.size, t_node)])
    caps = np.concatenate([c, c, src[sn], snk[tn]])
    scale = (2**30) / max(float(caps.sum()), 1.0)
    scale = min(scale, 1000.0)
    icap = np.maximum(np.round(caps * scale), 1).astype(np.int32)
    m = coo_matrix((icap, (rows, cols)), shape=(n + 2, n + 2)).tocsr()
    m.sum_duplicates()
    res = maximum_flow(m, s_node, t_node, method="dinic")
    resid = (m - res.flow).tocsr()
    resid.data[resid.data < 0] = 0
    resid.eliminate_zeros()
    reach = breadth_first_order(resid, s_node, directed=True, return_predecessors=False)
    is_a = np.zeros(n + 2, dtype=bool)
    is_a[reach] = True
    return ~is_a[:n], float(res.flow_value) / scale


# --- the pyramid -----------------------------------------------------------------------
def near_voxels(mask: np.ndarray, dist_mm: float, spacing_kji) -> np.ndarray:
    """Voxels within ``dist_mm`` of ``mask`` (computed on the mask's padded bounding box)."""
    out = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask, [math.ceil(dist_mm / s) + 1 for s in spacing_kji])
    if box is None:
        return out
    d = ndi.distance_transform_edt(~mask[box], sampling=spacing_kji)
    out[box] = d <= dist_mm
    return out


def _dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """26-neighbour dilation by ``iterations`` voxels, on the mask's padded bounding box."""
    out = np.zeros(mask.shape, dtype=bool)
    box = bounding_box(mask, [iterations + 1] * 3)
    if box is None:
        return out
    out[box] = ndi.binary_dilation(mask[box], structure=np.ones((3, 3, 3), bool),
                                   iterations=iterations)
    return out


def block_owner(owner: np.ndarray, tissue_l: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """Owner per ``f``-block by majority of its A and B voxels (ties and tissue blocks
    without either filled from the nearest block), 0 off ``tissue_l``."""
    if f == (1, 1, 1):
        own = np.where(tissue_l, owner, 0).astype(np.uint8)
    else:
        na = block_reduce(owner == _A, f, "count")
        nb = block_reduce(owner == _B, f, "count")
        own = np.where(na > nb, _A, np.where(nb > na, _B, 0)).astype(np.uint8)
    return fill_unowned(own, tissue_l)


@dataclass
class _Level:
    factor: tuple[int, int, int]
    spacing: tuple[float, float, float]
    tissue: np.ndarray
    cost: np.ndarray
    base: np.ndarray  # owner of the voxels outside the cut's free region


class Pyramid:
    """The levels of a coarse-to-fine cut, prepared once and cut any number of times.

    Per level: the tissue blocks, the block-mean cost and the starting owner (block
    majority of the identity owner). The coarsest level's free band is every tissue voxel
    within ``corridor_mm`` of the starting interface; voxels outside a cut's coarsest band
    (the twins' cores) keep the starting owner at every level. :meth:`cut` makes one cut,
    optionally with forced voxels; the levels are shared, so alternatives that only
    differ by their constraints do not redo the block reductions.

    Parameters are those of :func:`pyramid_cut`.
    """

    def __init__(
        self,
        tissues: np.ndarray,
        owner0: np.ndarray,
        cost: np.ndarray,
        spacing_kji: tuple[float, float, float],
        *,
        coarse_mm: float = 4.0,
        corridor_mm: float = 10.0,
        band_voxels: int = 2,
    ) -> None:
        tissue = tissues > 0
        if not tissue.any():
            raise InputError("no tissue voxels to separate")
        own = np.where((owner0 == _A) | (owner0 == _B), owner0, 0).astype(np.uint8)
        own = fill_unowned(own, tissue)
        if not ((own == _A).any() and (own == _B).any()):
            raise InputError("the owner map needs both twin A and twin B voxels")
        s = np.asarray(spacing_kji, dtype=float)
        self.shape = tissue.shape
        self.corridor_mm = corridor_mm
        self.band_voxels = band_voxels
        # finest to coarsest, each level reduced from the next finer one (the levels nest):
        # tissue = any, A/B voxel counts and cost sums (float64) add up exactly
        self.levels: list[_Level] = []
        prev = None
        for f in pyramid_factors(spacing_kji, coarse_mm)[::-1]:
            sp = tuple(float(v) for v in s * np.asarray(f))
            if prev is None:
                t_l, na, nb, csum = tissue, own == _A, own == _B, cost
                lv = _Level(f, sp, tissue, cost.astype(np.float32, copy=False),
                            np.where(tissue, own, 0).astype(np.uint8))
            else:
                r = tuple(a // b for a, b in zip(f, prev, strict=True))
                t_l = block_reduce(t_l, r, "any")
                na = block_reduce(na, r, "sum", dtype=np.int32)
                nb = block_reduce(nb, r, "sum", dtype=np.int32)
                csum = block_reduce(csum, r, "sum", dtype=np.float64)
                base = np.where(na > nb, _A, np.where(nb > na, _B, 0)).astype(np.uint8)
                lv = _Level(f, sp, t_l, (csum / float(np.prod(f))).astype(np.float32),
                            fill_unowned(base, t_l))
            self.levels.append(lv)
            prev = f
        self.levels.reverse()
        top = self.levels[0]
        if not ((top.base == _A).any() and (top.base == _B).any()):
            raise InputError("the owner map needs both twin A and twin B voxels")
        self.free0 = near_voxels(interface_mask(top.base), corridor_mm, top.spacing) & top.tissue

    def _force_levels(self, force: np.ndarray) -> list[np.ndarray]:
        """``force`` on every level, coarsest first: a block is forced to a twin when it
        holds voxels forced to that twin and none forced to the other."""
        out = []
        fa, fb = force == _A, force == _B
        prev = (1, 1, 1)
        for lv in self.levels[::-1]:
            f = lv.factor
            if f == (1, 1, 1):
                out.append(force)
            else:
                r = tuple(a // b for a, b in zip(f, prev, strict=True))
                fa, fb = block_reduce(fa, r, "any"), block_reduce(fb, r, "any")
                out.append(np.where(fa & ~fb, _A, np.where(fb & ~fa, _B, 0)).astype(np.uint8))
            prev = f
        return out[::-1]

    def cut(self, force: np.ndarray | None = None, solver: str = "bk") -> CutResult:
        """One cut, coarse to fine; ``force`` (1/2) pins voxels to A/B."""
        import time

        result = CutResult(owner=np.zeros(self.shape, dtype=np.uint8))
        owner = None
        free = None
        prev_f = None
        f0 = self.levels[0].factor
        forces = [None] * len(self.levels) if force is None else self._force_levels(force)
        for lv, force_l in zip(self.levels, forces, strict=True):
            t0 = time.perf_counter()
            f, t_l = lv.factor, lv.tissue
            if owner is None:
                own = lv.base
                band = self.free0.copy()
                if force_l is not None:
                    wrong = (force_l != 0) & (force_l != own)
                    if wrong.any():
                        band |= near_voxels(wrong, self.corridor_mm, lv.spacing) & t_l
                free = band.copy()
                free_l = free
            else:
                ratio = tuple(p // q for p, q in zip(prev_f, f, strict=True))
                free_l = block_expand(free, tuple(p // q for p, q in zip(f0, f, strict=True)),
                                  t_l.shape) & t_l
                near = _dilate(interface_mask(owner), self.band_voxels)
                own = np.where(free_l, block_expand(owner, ratio, t_l.shape), lv.base)
                own[~t_l] = 0
                if ((own == 0) & t_l).any():
                    own = fill_unowned(own, t_l)
                band = block_expand(near, ratio, t_l.shape) & free_l
                if force_l is not None:
                    band |= (force_l != 0) & (force_l != own)
            band &= t_l
            owner, flow, nedges = solve_band(lv.cost, t_l, own, band, lv.spacing, force_l,
                                             solver)
            result.levels.append(
                LevelStats(lv.spacing, tuple(int(v) for v in t_l.shape), int(band.sum()),
                           nedges, flow, time.perf_counter() - t0)
            )
            prev_f = f
        result.owner = owner
        return result


def pyramid_cut(
    tissues: np.ndarray,
    owner0: np.ndarray,
    cost: np.ndarray,
    spacing_kji: tuple[float, float, float],
    *,
    coarse_mm: float = 4.0,
    corridor_mm: float = 10.0,
    band_voxels: int = 2,
    force: np.ndarray | None = None,
    solver: str = "bk",
) -> CutResult:
    """Minimum-risk cut between twin A (source) and twin B (sink), coarse to fine.

    Parameters
    ----------
    tissues : ndarray uint8
        Tissue codes; every non-zero voxel is a graph node.
    owner0 : ndarray uint8
        Starting owner map (1 A, 2 B; 0 or 3 are filled from the nearest twin).
    cost : ndarray float32
        Risk per mm2 of each voxel (:meth:`RiskModel.voxel_cost`).
    spacing_kji : (3,) float
        Spacing (mm) in array order.
    coarse_mm : float
        Spacing (mm) of the coarsest level.
    corridor_mm : float
        How far (mm) the cut may move from the starting interface (coarsest band).
    band_voxels : int
        Half-width of the finer bands in voxels of the coarser level.
    force : ndarray uint8, optional
        1/2 where voxels must go to A/B (constraints of the alternatives).
    solver : {"bk", "dinic"}
        Max-flow solver.
    """
    pyr = Pyramid(tissues, owner0, cost, spacing_kji, coarse_mm=coarse_mm,
                  corridor_mm=corridor_mm, band_voxels=band_voxels)
    return pyr.cut(force, solver)
