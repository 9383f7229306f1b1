"""Twin identity: which twin owns each voxel of a craniopagus scan.

Every non-background voxel of the tissue map gets an owner, twin A (purple, code 1) or
twin B (orange, code 2), on the scan's grid. The method (chosen by measurement, see
``docs/methods.md`` and ``benchmarks/bench_identity.py``):

1. **Heads.** The non-background voxels are split into connected parts. Two parts that
   each hold brain are two heads that do not touch (*not conjoined*; the closest distance
   between them is measured in mm).
2. **Brain centres and seeds.** In one part, the brain (closed and hole-filled on a 3 mm
   grid, so that sulci and fissures vanish) has one Euclidean distance transform (EDT)
   maximum per twin; the two are told apart by persistence (height above the saddle
   where they join). Where the brains are fused so deeply that there is no second
   maximum, an elongated brain is split across its long axis. A single brain has
   neither: "only one head". Each centre gives a seed, the deepest brain voxel near it;
   seeds may instead be given in world mm.
3. **Brain split.** Seed regions: a ball around each seed, the brain lying beyond each
   seed (away from the other) and each twin's persistent EDT core. The rest of the brain
   is split between them. Methods compared (see the benchmark): ``mincut`` (minimum-area
   cut of the brain, PyMaxflow; the default), ``watershed`` (marker watershed on the
   negated brain EDT), ``geodesic`` (nearest seed region by geodesic distance inside the
   brain), ``random_walker`` (harmonic potential) and ``nearest`` (nearest seed region
   by straight-line distance, a baseline).
4. **Other tissue.** Every other non-background voxel takes the owner of the nearest
   labelled brain voxel (exact anisotropic EDT with ``return_indices``), which is also
   how the phantoms' ground truth is defined.
5. **A/B rule.** Twin A is the twin whose brain centroid comes first (has the smaller
   world coordinate, in mm, LPS) along the world axis x, y or z on which the two brain
   centroids differ most. When seeds are given, the brain part holding ``seed_a`` is
   twin A whatever the rule says.

Large scans (voxels under 0.8 mm) are processed on a grid of blocks of about 1 mm and
the result is brought back to the scan's grid, so a 0.5 mm scan takes seconds and little
memory. Everything is deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from twinsep.errors import InputError
from twinsep.image import Volume, block_reduce
from twinsep.labels import Owner, Tissue

#: Brain split methods, in the order of the benchmark table.
METHODS: tuple[str, ...] = ("mincut", "watershed", "geodesic", "random_walker", "nearest")

#: Default method, chosen by measurement (see docs/methods.md).
DEFAULT_METHOD = "mincut"

#: Working-grid voxel size (mm): finer scans are processed in blocks of about this size.
WORK_VOXEL_MM = 1.0

#: Brain parts thinner than twice this radius (mm) take the owner of the nearest bulk brain.
OPEN_MM = 2.0

#: Voxel size (mm) of the coarse grid used to find the brain centres.
HEAD_GRID_MM = 3.0

#: A second maximum of the closed brain's EDT is a second brain when its persistence
#: (peak minus saddle, mm) is at least this fraction of its height ...
MIN_RELATIVE_PERSISTENCE = 0.1
#: ... and its height is at least this fraction of the highest maximum.
MIN_RELATIVE_HEIGHT = 0.4
#: Without such a maximum, a brain this elongated (ratio of the two largest principal
#: standard deviations) is two deeply fused brains; one infant brain measures about 1.2.
MIN_ELONGATION = 1.33

TWIN_A_RULE = (
    "Twin A (purple) is the twin whose brain centroid comes first, i.e. has the smaller "
    "world coordinate (mm, LPS), along the world axis (x, y or z) on which the two brain "
    "centroids differ most; seeds given with --seed-a/--seed-b override this rule."
)

_STRUCT26 = np.ones((3, 3, 3), dtype=bool)


# --- result ------------------------------------------------------------------------------
@dataclass
class IdentityResult:
    """Outcome of :func:`identify`.

    Attributes
    ----------
    owner : Volume
        uint8 owner codes on the scan's grid: 0 background, 1 twin A, 2 twin B.
    conjoined : bool
        False when the two heads do not touch.
    closest_distance_mm : float or None
        Closest distance (mm) between the two heads when not conjoined, else None.
    seed_a_mm, seed_b_mm : ndarray, shape (3,)
        Brain seeds (world mm) of twin A and twin B.
    seeds_given : bool
        True when the seeds came from the user (and set the A/B order).
    method : str
        Brain split method used.
    twin_a_rule : str
        How twin A was chosen, in words.
    brain_centroids_mm : dict
        ``{"A": [x, y, z], "B": [x, y, z]}`` brain centroids (world mm).
    seconds : float
        Wall time (s).
    """

    owner: Volume
    conjoined: bool
    closest_distance_mm: float | None
    seed_a_mm: np.ndarray
    seed_b_mm: np.ndarray
    seeds_given: bool
    method: str
    twin_a_rule: str
    brain_centroids_mm: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_plan(self) -> dict[str, Any]:
        """The ``identity`` section of plan.json."""
        return {
            "method": self.method,
            "seed_a_mm": [float(v) for v in self.seed_a_mm],
            "seed_b_mm": [float(v) for v in self.seed_b_mm],
            "seeds": "given" if self.seeds_given else "automatic",
            "twin_a_rule": self.twin_a_rule,
            "brain_centroid_a_mm": self.brain_centroids_mm.get("A"),
            "brain_centroid_b_mm": self.brain_centroids_mm.get("B"),
            "labels": {"0": "background", "1": "twin A (purple)", "2": "twin B (orange)"},
        }


# --- working grid ------------------------------------------------------------------------
@dataclass
class _Grid:
    """A cropped, possibly block-reduced view of the scan's grid.

    Working index ``w`` maps to scan index ``offset + factor * w + (factor - 1) / 2``.
    """

    ref: Volume
    offset: np.ndarray  # (3,) int, kji
    factor: np.ndarray  # (3,) int, kji
    shape: tuple[int, int, int]  # working shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s * f) for s, f in zip(self.ref.spacing_kji, self.factor, strict=True))  # type: ignore[return-value]

    def to_scan_index(self, w: np.ndarray) -> np.ndarray:
        return self.offset + self.factor * np.asarray(w, dtype=float) + (self.factor - 1) / 2.0

    def to_world(self, w: np.ndarray) -> np.ndarray:
        return self.ref.index_to_world(self.to_scan_index(w))

    def from_world(self, xyz: np.ndarray) -> np.ndarray:
        kji = self.ref.world_to_index(np.asarray(xyz, dtype=float))
        return (kji - self.offset - (self.factor - 1) / 2.0) / self.factor


def _coarse_mask(mask: np.ndarray, factor: np.ndarray, *, rule: str) -> np.ndarray:
    """A boolean mask on integer blocks of ``factor`` voxels (:func:`twinsep.image.block_reduce`):
    a block is set if any voxel is (``rule="any"``) or at least half of them (``"half"``)."""
    f = tuple(int(x) for x in factor)
    if f == (1, 1, 1):
        return mask.copy()
    if rule == "any":
        return block_reduce(mask, f, "any")
    return block_reduce(mask, f, "count") * 2 >= f[0] * f[1] * f[2]


def _working_grid(tissues: Volume) -> tuple[_Grid, np.ndarray, np.ndarray, tuple[slice, ...]]:
    """Crop to the non-background box and reduce to about WORK_VOXEL_MM voxels.

    Returns the grid, the working foreground and brain masks, and the scan crop slices.
    """
    lab = tissues.array
    fg_full = lab > 0
    if not fg_full.any():
        raise InputError("the tissue map is empty (no non-background voxel)")
    sl = ndi.find_objects(fg_full.astype(np.uint8))[0]
    fg = fg_full[sl]
    brain = lab[sl] == Tissue.BRAIN
    spacing = np.asarray(tissues.spacing_kji)
    factor = np.maximum(1, np.floor(WORK_VOXEL_MM / spacing + 1e-6)).astype(int)
    factor[spacing >= 0.8 * WORK_VOXEL_MM] = 1
    fg_w = _coarse_mask(fg, factor, rule="any")
    brain_w = _coarse_mask(brain, factor, rule="half")
    offset = np.array([s.start for s in sl], dtype=int)
    return _Grid(tissues, offset, factor, fg_w.shape), fg_w, brain_w, sl


def _to_scan(grid: _Grid, owner_w: np.ndarray, tissues: Volume, sl: tuple[slice, ...]) -> Volume:
    """Bring a working-grid owner map back to the scan's grid."""
    up = owner_w
    for axis, f in enumerate(grid.factor):
        if f > 1:
            up = np.repeat(up, int(f), axis=axis)
    crop_shape = tuple(s.stop - s.start for s in sl)
    up = up[: crop_shape[0], : crop_shape[1], : crop_shape[2]]
    out = np.zeros(tissues.shape, dtype=np.uint8)
    fg = tissues.array[sl] > 0
    out[sl] = np.where(fg, up, 0).astype(np.uint8)
    return tissues.with_array(out)


# --- heads and seeds -----------------------------------------------------------------------
def _head_components(fg: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Label non-background parts; return labels and the parts holding a head's brain,
    largest brain first."""
    comp, n = ndi.label(fg, structure=_STRUCT26)
    if n == 0:
        raise InputError("the tissue map is empty (no non-background voxel)")
    counts = np.bincount(comp[brain], minlength=n + 1)
    counts[0] = 0
    if counts.max() == 0:
        raise InputError("no brain found in the tissue map (no voxel with the brain label 4)")
    heads = [
        int(c) for c in np.argsort(-counts, kind="stable") if counts[c] >= 0.1 * counts.max() and c
    ]
    return comp, heads


def _persistent_peaks(
    edt: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray | None, float, float, float, float]:
    """The highest maximum of ``edt`` and its most persistent other maximum.

    Returns ``(peak1, peak2, persistence2, height1, height2, saddle)``; indices in ``edt``'s array,
    ``peak2`` None when ``edt`` has a single maximum. Persistence is the height of the
    maximum above the saddle where it joins the higher one (superlevel sets, sampled every
    ``step``).
    """
    p1 = np.array(np.unravel_index(int(np.argmax(edt)), edt.shape))
    h1 = float(edt[tuple(p1)])
    best: tuple[float, np.ndarray | None, float, float] = (0.0, None, 0.0, 0.0)
    for t in np.arange(h1 - step, 0.0, -step):
        lab, n = ndi.label(edt >= t, structure=_STRUCT26)
        if n < 2:
            continue
        idx = np.arange(1, n + 1)
        heights = ndi.maximum(edt, lab, idx)
        g = lab[tuple(p1)]
        for c, h in zip(idx, heights, strict=True):
            if c != g and h - t > best[0]:
                pos = np.array(ndi.maximum_position(edt, lab, int(c)))
                best = (float(h - t), pos, float(h), float(t))
    return p1, best[1], best[0], h1, best[2], best[3]


def _closed_brain(grid: _Grid, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The brain on a ~HEAD_GRID_MM grid, closed (sulci and fissures filled) and hole-free.

    Returns the coarse mask, its voxel size (mm) and the block factor.
    """
    spacing = np.asarray(grid.spacing)
    f = np.maximum(1, np.round(HEAD_GRID_MM / spacing)).astype(int)
    coarse = _coarse_mask(brain, f, rule="half")
    pad = 4
    closed = ndi.binary_closing(
        np.pad(coarse, pad), ndi.generate_binary_structure(3, 1), iterations=2
    )
    closed = ndi.binary_fill_holes(closed[pad:-pad, pad:-pad, pad:-pad] | coarse)
    return closed, spacing * f, f


def _brain_centres(
    grid: _Grid, brain: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float, list | None]:
    """Working indices and radii (mm) of the two brain centres; InputError for one head.

    First choice: the two most persistent maxima of the EDT of the closed brain (each
    brain's core; the saddle between them is where the brains meet). When the brains are
    fused so deeply that the union has no second maximum, an elongated brain (principal
    standard deviations in a ratio of at least MIN_ELONGATION) is split across its long
    axis. A single brain has neither.
    """
    closed, cs, f = _closed_brain(grid, brain)
    edt = ndi.distance_transform_edt(closed, sampling=cs)
    step = max(1.0, float(cs.min()) / 3.0)
    p1, p2, pers, h1, h2, saddle = _persistent_peaks(edt, step)
    to_w = lambda p: np.asarray(p) * f + (f - 1) / 2.0  # noqa: E731 - coarse -> working index
    if (
        p2 is not None
        and h2 >= MIN_RELATIVE_HEIGHT * h1
        and pers >= max(MIN_RELATIVE_PERSISTENCE * h2, 2.0)
    ):
        # each brain's core: its superlevel component halfway between saddle and peak
        lab, _ = ndi.label(edt >= saddle + 0.5 * pers, structure=_STRUCT26)
        cores = []
        for p in (p1, p2):
            core = lab == lab[tuple(p)]
            for axis, fa in enumerate(f):
                core = np.repeat(core, int(fa), axis=axis)
            cores.append(core[: brain.shape[0], : brain.shape[1], : brain.shape[2]] & brain)
        if cores[0].any() and cores[1].any() and not (cores[0] & cores[1]).any():
            return to_w(p1), to_w(p2), h1, h2, cores
        return to_w(p1), to_w(p2), h1, h2, None
    pts = np.argwhere(brain).astype(float)
    w = pts * np.asarray(grid.spacing)
    centre = w.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov((w - centre).T))
    sd = np.sqrt(np.maximum(evals[::-1], 0.0))
    if sd[1] <= 0 or sd[0] / sd[1] < MIN_ELONGATION:
        raise InputError(
            "only one head found: the brain has a single centre "
            "(give --seed-a and --seed-b if there are two twins)"
        )
    axis = evecs[:, -1]
    c = [(centre + sgn * sd[0] * axis) / np.asarray(grid.spacing) for sgn in (-1.0, 1.0)]
    return c[0], c[1], float(sd[1]), float(sd[1]), None


def _deepest_brain_near(
    grid: _Grid, brain: np.ndarray, edt_brain: np.ndarray, centre_w: np.ndarray, radius_mm: float
) -> np.ndarray:
    """Working index of the deepest brain voxel within ``radius_mm`` of ``centre_w``
    (the nearest brain voxel when none is that close)."""
    pts = np.argwhere(brain)
    d = np.sqrt((((pts - centre_w) * np.asarray(grid.spacing)) ** 2).sum(axis=1))
    near = d <= radius_mm
    if near.any():
        cand = pts[near]
        depth = edt_brain[tuple(cand.T)]
        return cand[int(np.argmax(depth))]
    return pts[int(np.argmin(d))]


def _snap_seed(
    grid: _Grid, brain: np.ndarray, xyz: np.ndarray, name: str, max_mm: float = 30.0
) -> np.ndarray:
    """Working index of the brain voxel nearest a world point (InputError if far)."""
    w = grid.from_world(xyz)
    pts = np.argwhere(brain)
    d = np.sqrt((((pts - w) * np.asarray(grid.spacing)) ** 2).sum(axis=1))
    i = int(np.argmin(d))
    if d[i] > max_mm:
        raise InputError(
            f"{name} ({', '.join(f'{v:g}' for v in xyz)}) is {d[i]:.0f} mm from the nearest "
            "brain voxel"
        )
    return pts[i]


def find_seeds(tissues: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Automatic brain seeds of the two twins (world mm), ordered A then B.

    Robust when the two brains touch (one connected brain): the seeds come from the two
    head centres (persistent maxima of the head's distance transform), each moved to the
    deepest brain voxel near it. The order follows the A/B rule applied to the seeds
    (:func:`identify` applies it to the brain centroids after the split).

    Parameters
    ----------
    tissues : Volume
        Tissue codes (:class:`twinsep.labels.Tissue`).

    Returns
    -------
    seed_a, seed_b : ndarray, shape (3,)
        World positions (mm).

    Raises
    ------
    InputError
        No brain, or only one head.
    """
    grid, fg, brain, _ = _working_grid(tissues)
    comp, heads = _head_components(fg, brain)
    if len(heads) >= 2:
        seeds = []
        for c in heads[:2]:
            m = brain & (comp == c)
            e = ndi.distance_transform_edt(m, sampling=grid.spacing)
            seeds.append(np.array(np.unravel_index(int(np.argmax(e)), e.shape)))
    else:
        seeds, _ = _auto_seeds(grid, brain & (comp == heads[0]))
    a, b = (grid.to_world(s) for s in seeds)
    if _rule_order(a, b)[0] == 1:
        a, b = b, a
    return a, b


def _auto_seeds(grid: _Grid, brain: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    c1, c2, h1, h2, cores = _brain_centres(grid, brain)
    edt_brain = ndi.distance_transform_edt(brain, sampling=grid.spacing)
    s1 = _deepest_brain_near(grid, brain, edt_brain, c1, 0.15 * h1)
    s2 = _deepest_brain_near(grid, brain, edt_brain, c2, 0.15 * h2)
    if np.array_equal(s1, s2):
        raise InputError("only one head found: both brain centres lead to the same voxel")
    return [s1, s2], cores


def _rule_order(c1: np.ndarray, c2: np.ndarray) -> tuple[int, int]:
    """(index of A, axis) for two world points by the A/B rule."""
    diff = np.asarray(c2, dtype=float) - np.asarray(c1, dtype=float)
    axis = int(np.argmax(np.abs(diff)))
    return (0 if diff[axis] >= 0 else 1), axis


# --- brain split -------------------------------------------------------------------------
def _markers(
    grid: _Grid, brain: np.ndarray, seeds: list[np.ndarray], edt_brain: np.ndarray
) -> np.ndarray:
    """Seed regions: brain balls around each seed, half its depth, not overlapping."""
    spacing = np.asarray(grid.spacing)
    sep = float(np.sqrt((((seeds[0] - seeds[1]) * spacing) ** 2).sum()))
    markers = np.zeros(brain.shape, dtype=np.int32)
    for lab, s in enumerate(seeds, start=1):
        r = min(0.5 * float(edt_brain[tuple(s)]), 0.4 * sep)
        r = max(r, 0.0)
        n = np.ceil(r / spacing).astype(int)
        lo = np.maximum(s - n, 0)
        hi = np.minimum(s + n + 1, brain.shape)
        kk, jj, ii = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        d2 = (
            ((kk - s[0]) * spacing[0]) ** 2
            + ((jj - s[1]) * spacing[1]) ** 2
            + ((ii - s[2]) * spacing[2]) ** 2
        )
        box = markers[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        ball = (d2 <= r * r) & brain[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] & (box == 0)
        box[ball] = lab
        markers[tuple(s)] = lab
    return markers


def _split_watershed(brain, markers, spacing, edt_brain):
    from skimage.segmentation import watershed

    return watershed(-edt_brain, markers, mask=brain, connectivity=1).astype(np.int32)


def _split_geodesic(brain, markers, spacing, edt_brain):
    from skimage.graph import MCP_Geometric

    costs = np.where(brain, 1.0, -1.0)  # negative costs are impassable
    dist = []
    for lab in (1, 2):
        mcp = MCP_Geometric(costs, sampling=spacing, fully_connected=True)
        cum, _ = mcp.find_costs([tuple(p) for p in np.argwhere(markers == lab)])
        dist.append(np.where(brain, cum, np.inf))
    out = np.where(dist[0] <= dist[1], 1, 2).astype(np.int32)
    out[~brain | ~np.isfinite(np.minimum(dist[0], dist[1]))] = 0
    return out


def _split_random_walker(brain, markers, spacing, edt_brain):
    from skimage.segmentation import random_walker

    comp, _ = ndi.label(brain, structure=_STRUCT26)
    keep = np.isin(comp, np.unique(comp[markers > 0]))
    labels = np.where(keep, markers, -1).astype(np.int32)
    data = np.zeros(brain.shape, dtype=np.float32)
    outside = np.argwhere(labels < 0)
    if len(outside):  # a non-constant image (skimage scales by its std); weights stay 1
        data[tuple(outside[0])] = 1.0
    out = random_walker(data, labels, beta=1, mode="cg_j", tol=1e-3, spacing=spacing)
    out = np.asarray(out, dtype=np.int32)
    out[~keep] = 0
    return out


def _split_mincut(brain, markers, spacing, edt_brain):
    """Minimum-area cut of the brain between the seed regions (6-neighbour graph whose
    edge capacities are the areas (mm^2) of the voxel faces they cross)."""
    import maxflow

    comp, _ = ndi.label(brain, structure=_STRUCT26)
    reached = np.isin(comp, np.unique(comp[markers > 0]))
    ws = np.where(reached, markers, 0).astype(np.int32)
    free = brain & reached & (markers == 0)
    if not free.any():
        return ws
    sl = ndi.find_objects(free.astype(np.uint8))[0]
    sl = tuple(
        slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(sl, brain.shape, strict=True)
    )
    b, w, f = brain[sl], ws[sl], free[sl]
    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(b.shape)
    sp = np.asarray(spacing, dtype=float)
    for axis in range(3):
        area = float(np.prod(np.delete(sp, axis)))
        both = b.copy()
        src = [slice(None)] * 3
        src[axis] = slice(0, -1)
        dst = [slice(None)] * 3
        dst[axis] = slice(1, None)
        both[tuple(src)] &= b[tuple(dst)]
        last = [slice(None)] * 3
        last[axis] = slice(-1, None)
        both[tuple(last)] = False
        structure = np.zeros((3, 3, 3))
        offs = [1, 1, 1]
        offs[axis] = 2
        structure[tuple(offs)] = 1
        g.add_grid_edges(nodes, weights=both * area, structure=structure, symmetric=True)
    big = 1e9
    g.add_grid_tedges(
        nodes, np.where(b & ~f & (w == 1), big, 0.0), np.where(b & ~f & (w == 2), big, 0.0)
    )
    g.maxflow()
    sink = g.get_grid_segments(nodes)
    out = ws.copy()
    sub = np.where(sink, 2, 1).astype(np.int32)
    region = out[sl]
    region[f] = sub[f]
    return out


def _split_nearest(brain, markers, spacing, edt_brain):
    """Nearest seed region by straight-line distance (a baseline)."""
    idx = ndi.distance_transform_edt(
        markers == 0, sampling=spacing, return_distances=False, return_indices=True
    )
    return np.where(brain, markers[tuple(idx)], 0).astype(np.int32)


_SPLITTERS: dict[str, Callable[..., np.ndarray]] = {
    "watershed": _split_watershed,
    "geodesic": _split_geodesic,
    "random_walker": _split_random_walker,
    "mincut": _split_mincut,
    "nearest": _split_nearest,
}


def check_method(method: str | None) -> str:
    method = DEFAULT_METHOD if method is None else method
    if method not in _SPLITTERS:
        raise InputError(f"unknown identity method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def _split_brain(
    grid: _Grid,
    brain: np.ndarray,
    seeds: list[np.ndarray],
    method: str,
    cores: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Brain voxels labelled 1 (seeds[0]) or 2 (seeds[1]); 0 elsewhere. Works on the
    box of the brain only. ``cores`` (working-grid masks) enlarge the seed regions."""
    sl = ndi.find_objects(brain.astype(np.uint8))[0]
    off = np.array([s.start for s in sl])
    b = brain[sl]
    s_local = [np.asarray(s) - off for s in seeds]
    edt_brain = ndi.distance_transform_edt(b, sampling=grid.spacing).astype(np.float32)
    markers = _markers(grid, b, s_local, edt_brain)
    half = _halfspace_cores(grid, brain, seeds)
    if cores is not None:
        half = [h | c for h, c in zip(half, cores, strict=True)]
    clash = half[0] & half[1]
    for lab, core in enumerate(half, start=1):
        markers[core[sl] & ~clash[sl] & b & (markers == 0)] = lab
    lab = _SPLITTERS[method](b, markers, grid.spacing, edt_brain)
    out = np.zeros(brain.shape, dtype=np.int32)
    out[sl] = np.where(b, lab, 0)
    return out


def _halfspace_cores(grid: _Grid, brain: np.ndarray, seeds: list[np.ndarray]) -> list[np.ndarray]:
    """Seed regions from two seeds: the brain lying beyond each seed, away from the other,
    along the line through both (big regions, so that a minimum cut cannot just circle a
    small seed ball)."""
    sp = np.asarray(grid.spacing)
    a, b = (np.asarray(x, dtype=float) * sp for x in seeds)
    u = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
    kk, jj, ii = (np.arange(n) * s_ for n, s_ in zip(brain.shape, sp, strict=True))
    t = kk[:, None, None] * u[0] + jj[None, :, None] * u[1] + ii[None, None, :] * u[2]
    return [brain & (t <= a @ u), brain & (t >= b @ u)]


def _thick(brain_lab: np.ndarray, spacing, radius_mm: float = OPEN_MM) -> np.ndarray:
    """Labelled brain without its parts thinner than ``2 * radius_mm`` (opening by a
    ball): thin sheets (CSF read as brain on a CT, partial volume) then take the owner
    of the nearest bulk brain instead of lending theirs to the tissue around them."""
    mask = brain_lab > 0
    eroded = ndi.distance_transform_edt(mask, sampling=spacing) > radius_mm
    if not eroded.any():
        return brain_lab
    opened = (ndi.distance_transform_edt(~eroded, sampling=spacing) <= radius_mm) & mask
    out = np.where(opened, brain_lab, 0)
    if not ((out == 1).any() and (out == 2).any()):
        return brain_lab
    return out


def _propagate(brain_lab: np.ndarray, fg: np.ndarray, spacing) -> np.ndarray:
    """Every foreground voxel takes the label of the nearest labelled brain voxel."""
    indices = np.zeros((3, *brain_lab.shape), dtype=np.int32)
    ndi.distance_transform_edt(
        brain_lab == 0,
        sampling=spacing,
        return_distances=False,
        return_indices=True,
        indices=indices,
    )
    owner = brain_lab[indices[0], indices[1], indices[2]]
    del indices
    return np.where(fg, owner, 0).astype(np.uint8)


def assign_owner(
    tissues: Volume,
    seed_a_mm: np.ndarray,
    seed_b_mm: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
) -> Volume:
    """Owner map (uint8, 0 background, 1 A, 2 B) from two brain seeds.

    Parameters
    ----------
    tissues : Volume
        Tissue codes.
    seed_a_mm, seed_b_mm : array-like, shape (3,)
        World positions (mm) inside (or within 30 mm of) each twin's brain.
    method : str
        Brain split method, one of :data:`METHODS`.

    Returns
    -------
    Volume
        Owner codes on the grid of ``tissues``.
    """
    return identify(tissues, seed_a_mm=seed_a_mm, seed_b_mm=seed_b_mm, method=method).owner


def identify(
    tissues: Volume,
    *,
    seed_a_mm: np.ndarray | None = None,
    seed_b_mm: np.ndarray | None = None,
    method: str | None = None,
) -> IdentityResult:
    """Give every non-background voxel an owner, twin A or twin B.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (:class:`twinsep.labels.Tissue`) on the scan's grid.
    seed_a_mm, seed_b_mm : array-like, shape (3,), optional
        Brain seeds in world mm; both or neither. Given seeds set which twin is A and skip
        the automatic head count.
    method : str, optional
        Brain split method, one of :data:`METHODS` (default :data:`DEFAULT_METHOD`).

    Returns
    -------
    IdentityResult
        With ``conjoined=False`` and ``closest_distance_mm`` when the heads do not touch.

    Raises
    ------
    InputError
        No brain, only one head, a seed far from any brain, or a bad method name.
    """
    t0 = time.perf_counter()
    method = check_method(method)
    if (seed_a_mm is None) != (seed_b_mm is None):
        raise InputError("give both --seed-a and --seed-b, or neither")
    given = seed_a_mm is not None
    grid, fg, brain, sl = _working_grid(tissues)
    comp, heads = _head_components(fg, brain)
    conjoined = len(heads) < 2
    distance: float | None = None
    if not conjoined:
        h1, h2 = (comp == heads[0]), (comp == heads[1])
        d1 = ndi.distance_transform_edt(~h1, sampling=grid.spacing)
        distance = float(d1[h2].min())
        brain_lab = np.zeros(brain.shape, dtype=np.int32)
        brain_lab[brain & h1] = 1
        brain_lab[brain & h2] = 2
        if given:
            sa = _snap_seed(grid, brain_lab > 0, np.asarray(seed_a_mm, float), "seed-a")
            sb = _snap_seed(grid, brain_lab > 0, np.asarray(seed_b_mm, float), "seed-b")
        else:
            sa, sb = (
                np.array(
                    np.unravel_index(
                        int(
                            np.argmax(
                                ndi.distance_transform_edt(brain_lab == lab, sampling=grid.spacing)
                            )
                        ),
                        brain.shape,
                    )
                )
                for lab in (1, 2)
            )
        seeds = [sa, sb]
        method_used = "connected components (not conjoined)"
    else:
        head = comp == heads[0]
        hbrain = brain & head
        cores = None
        if given:
            seeds = [
                _snap_seed(grid, hbrain, np.asarray(seed_a_mm, float), "seed-a"),
                _snap_seed(grid, hbrain, np.asarray(seed_b_mm, float), "seed-b"),
            ]
            if np.array_equal(seeds[0], seeds[1]):
                raise InputError("seed-a and seed-b fall on the same brain voxel")
        else:
            seeds, cores = _auto_seeds(grid, hbrain)
        brain_lab = _split_brain(grid, hbrain, seeds, method, cores)
        method_used = method
    # which label is twin A
    centroids = [grid.to_world(np.argwhere(brain_lab == lab).mean(axis=0)) for lab in (1, 2)]
    if given:
        a_index = 0 if brain_lab[tuple(seeds[0])] != 2 else 1
        rule = "given seeds: the twin whose brain holds --seed-a is twin A (purple)"
    else:
        a_index, axis = _rule_order(*centroids)
        rule = f"{TWIN_A_RULE} Here: axis {'xyz'[axis]}."
    if a_index == 1:
        brain_lab = np.where(brain_lab > 0, 3 - brain_lab, 0)
        centroids = centroids[::-1]
        if not given:
            seeds = seeds[::-1]
    owner_w = _propagate(_thick(brain_lab, grid.spacing), fg, grid.spacing)
    owner = _to_scan(grid, owner_w, tissues, sl)
    return IdentityResult(
        owner=owner,
        conjoined=conjoined,
        closest_distance_mm=distance,
        seed_a_mm=grid.to_world(seeds[0]),
        seed_b_mm=grid.to_world(seeds[1]),
        seeds_given=given,
        method=method_used,
        twin_a_rule=rule,
        brain_centroids_mm={
            "A": [float(v) for v in centroids[0]],
            "B": [float(v) for v in centroids[1]],
        },
        seconds=time.perf_counter() - t0,
    )


# --- scoring (tests and benchmark) ---------------------------------------------------------
def dice_scores(
    owner: np.ndarray, truth: np.ndarray, spacing_kji=None, near_mm: float | None = None
) -> dict[str, float]:
    """Dice of twin A and twin B against a truth owner map over unambiguous voxels.

    Parameters
    ----------
    owner, truth : ndarray
        Owner codes (truth may hold 3 = ambiguous, which is left out).
    spacing_kji : sequence of float, optional
        Voxel size (mm, array order); needed with ``near_mm``.
    near_mm : float, optional
        Score only voxels within this distance (mm) of the true A/B interface.

    Returns
    -------
    dict
        ``{"A": dice_a, "B": dice_b}``.
    """
    valid = (truth == Owner.A) | (truth == Owner.B)
    if near_mm is not None:
        da = ndi.distance_transform_edt(truth != Owner.A, sampling=spacing_kji)
        db = ndi.distance_transform_edt(truth != Owner.B, sampling=spacing_kji)
        # a voxel is near the interface when both twins are within near_mm of it
        valid &= np.maximum(da, db) <= near_mm
    out = {}
    for name, code in (("A", Owner.A), ("B", Owner.B)):
        p = (owner == code) & valid
        t = (truth == code) & valid
        denom = int(p.sum()) + int(t.sum())
        out[name] = 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom
    return out


__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "TWIN_A_RULE",
    "IdentityResult",
    "assign_owner",
    "check_method",
    "dice_scores",
    "find_seeds",
    "identify",
]
