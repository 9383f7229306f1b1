"""Separation: the minimum-risk cut, its alternatives, staging, and the case folder."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinsep.errors import InputError
from twinsep.image import Volume, block_reduce, bounding_box, crop
from twinsep.labels import Tissue
from twinsep.mesh import surface_area
from twinsep.separate.alternatives import (
    ALTERNATIVES,
    plane_owner,
    resolve_choice,
    shared_sinus,
    sinus_constraints,
)
from twinsep.separate.graphcut import (
    Pyramid,
    block_owner,
    fill_unowned,
    interface_mask,
    near_voxels,
    pyramid_factors,
)
from twinsep.separate.mesh import cut_surface
from twinsep.separate.metrics import crossings, face_measures, vessel_components
from twinsep.separate.risk import RiskModel, load_risk
from twinsep.separate.staging import plan_stages
from twinsep.separate.vessels import interface_distance, local_calibre

_A, _B = 1, 2


@dataclass
class Separation:
    """The outcome of :func:`separate`.

    Attributes
    ----------
    owners : dict
        Owner map (0 background, 1 A, 2 B) of each computed alternative.
    summary : dict
        The ``separation`` section of plan.json (chosen alternative, table, staging).
    mesh : tuple
        Vertices (world mm) and triangles of the chosen cut surface.
    timings_s : dict
        Seconds per step (not written to plan.json, which stays deterministic).
    """

    owners: dict[str, np.ndarray]
    summary: dict
    mesh: tuple[np.ndarray, np.ndarray]
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def owner(self) -> np.ndarray:
        """Owner map of the chosen alternative."""
        return self.owners[self.summary["chosen"]]


def _paste(src_box: tuple[slice, ...] | None, src: np.ndarray, box: tuple[slice, ...],
           shape: tuple[int, ...]) -> np.ndarray:
    """The part of ``src`` (given on ``src_box``) inside ``box``, zeros elsewhere."""
    out = np.zeros(shape, dtype=src.dtype)
    if src_box is None:
        return out
    lo = [max(a.start, b.start) for a, b in zip(src_box, box, strict=True)]
    hi = [min(a.stop, b.stop) for a, b in zip(src_box, box, strict=True)]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return out
    dst = tuple(slice(lo_ - b.start, h - b.start) for lo_, h, b in zip(lo, hi, box, strict=True))
    sel = tuple(slice(lo_ - a.start, h - a.start)
                for lo_, h, a in zip(lo, hi, src_box, strict=True))
    out[dst] = src[sel]
    return out


def _work_box(own: np.ndarray, tissue: np.ndarray, spacing_kji, coarse_mm: float,
              corridor_mm: float, sinus: tuple[np.ndarray, float] | None = None,
              ) -> tuple[slice, ...]:
    """The part of the volume a cut can change, found on the coarsest pyramid level: the
    tissue within ``corridor_mm`` of the starting interface and, with ``sinus`` (the shared
    vessel's mask and ``sinus_mm``), within ``corridor_mm`` of that vessel's part near the
    interface (the reach of alternatives b and c); grown by two coarse blocks and aligned
    with them, so the pyramid on the box has the same blocks as on the whole volume."""
    f0 = pyramid_factors(spacing_kji, coarse_mm)[0]
    t0 = block_reduce(tissue, f0, "any")
    base0 = block_owner(own, t0, f0)
    sp0 = tuple(float(s) * f for s, f in zip(spacing_kji, f0, strict=True))
    diag = float(np.linalg.norm(sp0))
    iface = interface_mask(base0)
    near = near_voxels(iface, corridor_mm + diag, sp0)
    if sinus is not None:
        mask, sinus_mm = sinus
        part = block_reduce(mask, f0, "any") & near_voxels(iface, sinus_mm + diag, sp0)
        near |= near_voxels(part, corridor_mm + diag, sp0)
    cb = bounding_box(near & t0, 2)
    if cb is None:
        return tuple(slice(0, n) for n in own.shape)
    return tuple(slice(b.start * f, min(b.stop * f, n))
                 for b, f, n in zip(cb, f0, own.shape, strict=True))


@dataclass
class _Region:
    """A box of the volume with what the measures need on it."""

    tis: np.ndarray
    lab: np.ndarray
    volume: Volume
    cost: np.ndarray  # the plain risk per mm2
    xsec: np.ndarray  # the local vessel calibre (mm2)


def _vessel_index(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the vessel voxels and their component labels."""
    idx = np.flatnonzero(lab)
    return idx, lab.ravel()[idx]


def _counts(owner: np.ndarray, vindex: tuple[np.ndarray, np.ndarray], n: int):
    """Voxels of A and of B, and per vessel component (``vindex`` from
    :func:`_vessel_index` on the same grid)."""
    idx, vl = vindex
    ov = owner.ravel()[idx]
    return ((int(np.count_nonzero(owner == _A)), int(np.count_nonzero(owner == _B))),
            (np.bincount(vl[ov == _A], minlength=n + 1),
             np.bincount(vl[ov == _B], minlength=n + 1)))


def _measure(owner: np.ndarray, reg: _Region, n_vessels: int,
             totals: tuple[int, int], comp_totals: tuple[np.ndarray, np.ndarray],
             ) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    """Measures of a cut given on ``reg``'s box; ``totals`` and ``comp_totals`` are the
    voxels of A and of B (all, and per vessel component) over the whole volume. Faces
    and mesh are taken on the bounding box of the cut only."""
    sk = reg.volume.spacing_kji
    win = bounding_box(interface_mask(owner), 4) or tuple(slice(0, n) for n in owner.shape)
    fm = face_measures(owner[win], reg.tis[win], reg.cost[win], sk)
    verts, faces = cut_surface(owner[win], crop(reg.volume, win, owner[win]))
    mesh_mm2 = surface_area(verts, faces)
    ratio = mesh_mm2 / fm["total_mm2"] if fm["total_mm2"] > 0 else 1.0
    cx = crossings(owner, reg.tis, reg.xsec, reg.volume, (reg.lab, n_vessels),
                   counts=comp_totals, window=win)
    vox_ml = reg.volume.voxel_volume_ml
    out = {
        "risk": fm["risk"],
        "cut_area_cm2": {k: v * ratio / 100.0 for k, v in fm["area_mm2"].items()},
        "cut_area_total_cm2": mesh_mm2 / 100.0,
        "cut_area_faces_cm2": {k: v / 100.0 for k, v in fm["area_mm2"].items()},
        "area_correction": ratio,
        "vessels_cut": len(cx),
        "vessel_cross_section_cut_mm2": sum(c["cross_section_mm2"] for c in cx),
        "crossing_vessels": cx,
        "volume_ml": {"A": float(totals[0]) * vox_ml, "B": float(totals[1]) * vox_ml},
    }
    return out, (verts, faces)


def separate(
    tissues: Volume,
    identity: Volume,
    risk: RiskModel | None = None,
    *,
    choose: str = "min_risk",
    plane: tuple[float, float, float, float, float, float] | None = None,
    stages: int | None = None,
    max_share: float = 0.5,
    coarse_mm: float = 4.0,
    corridor_mm: float = 10.0,
    sinus_mm: float = 12.0,
    solver: str = "bk",
    alternatives: bool = True,
) -> Separation:
    """Cut the joined heads into twin A and twin B.

    Parameters
    ----------
    tissues : Volume
        Tissue codes (0 background ... 5 vessel).
    identity : Volume
        Starting owner map on the same grid (1 A, 2 B; 0/3 on tissue are filled from the
        nearest twin), e.g. ``labels/twins.nii.gz`` from ``identify`` or a phantom's
        ``owner.nii.gz``.
    risk : RiskModel, optional
        Risk per tissue (default: ``twinsep/data/risk.yaml``).
    choose : str
        Alternative to adopt: ``min_risk``, ``sinus_to_a``, ``sinus_to_b``, ``plane`` (or
        a-d).
    plane : (6,) float, optional
        Point and normal (world mm) of the user plane, alternative (d).
    stages : int, optional
        Number of operations for the vessel division; automatic from ``max_share``.
    max_share : float
        Largest share (0-1] of the crossing cross-section divided per stage (automatic).
    coarse_mm, corridor_mm : float
        Coarsest pyramid spacing (mm) and how far (mm) the cut may leave the identity
        interface.
    sinus_mm : float
        Reach (mm) of "the sinus" around the identity interface for (b)/(c).
    solver : {"bk", "dinic"}
        Max-flow solver.
    alternatives : bool
        Compute (b)-(d) too (False: only the chosen one and the minimum-risk cut).

    Notes
    -----
    Only the box of the volume that a cut can change (the tissue within the corridor of
    the identity interface, and within the reach of the sinus alternatives, plus a margin)
    is processed; outside it every tissue voxel keeps its identity owner. The pyramid
    levels of that box are built once and shared by the cuts (a)-(c).
    """
    risk = risk or load_risk()
    choose = resolve_choice(choose)
    if not tissues.same_grid(identity):
        raise InputError("the owner map and the tissue map are not on the same grid")
    t = {}
    t0 = time.perf_counter()
    tis = np.asarray(tissues.array).astype(np.uint8, copy=False)
    tissue = tis > 0
    own0 = np.asarray(identity.array).astype(np.uint8, copy=False)
    if not ((own0 == _A) & tissue).any() or not ((own0 == _B) & tissue).any():
        raise InputError("the owner map needs tissue voxels of both twin A and twin B")
    need_sinus = alternatives or choose in ("sinus_to_a", "sinus_to_b")
    w = _prepare(tissues, tis, own0, risk, need_sinus=need_sinus, coarse_mm=coarse_mm,
                 corridor_mm=corridor_mm, sinus_mm=sinus_mm)
    t["prepare"] = time.perf_counter() - t0

    owners_c: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    t0 = time.perf_counter()
    res = w.pyr.cut(solver=solver)
    owners_c["min_risk"] = res.owner
    info["min_risk"] = {"levels": [
        {"spacing_mm": list(lv.spacing_mm[::-1]), "band_voxels": lv.band_voxels,
         "edges": lv.edges} for lv in res.levels]}
    t["cut_min_risk"] = time.perf_counter() - t0
    for key, keeper in (("sinus_to_a", _A), ("sinus_to_b", _B)):
        if alternatives or choose == key:
            t0 = time.perf_counter()
            _sinus_cut(w, key, keeper, sinus_mm, solver, owners_c, info)
            t[f"cut_{key}"] = time.perf_counter() - t0
    plane_full = None
    if plane is not None:
        plane_full = plane_owner(w.tissue, w.own_f, tissues, plane[:3], plane[3:])
        info["plane"] = {"point_mm": list(plane[:3]), "normal": list(plane[3:])}
    elif alternatives or choose == "plane":
        info["plane"] = {"available": False, "reason": "no --plane given"}
    if choose not in owners_c and not (choose == "plane" and plane_full is not None):
        raise InputError(f"alternative {choose!r} is not available: {info[choose]['reason']}")

    t0 = time.perf_counter()
    table, measured, owners, chosen_mesh = _alternatives(w, tissues, risk, owners_c,
                                                          plane_full, info, choose)
    t["measure"] = time.perf_counter() - t0
    m = measured[choose]
    summary = {
        "method": "minimum s-t cut (Boykov-Kolmogorov max-flow, PyMaxflow) of the 6-connected "
                  "tissue-voxel graph on a narrow band, coarse to fine" if solver == "bk" else
                  f"minimum s-t cut ({solver}) on a narrow band, coarse to fine",
        "chosen": choose,
        "risk_model": risk.as_dict(),
        "settings": {"coarse_mm": coarse_mm, "corridor_mm": corridor_mm, "sinus_mm": sinus_mm,
                     "solver": solver},
        "total_risk": m["risk"],
        "cut_area_cm2": m["cut_area_cm2"],
        "cut_area_total_cm2": m["cut_area_total_cm2"],
        "cut_area_faces_cm2": m["cut_area_faces_cm2"],
        "area_correction": m["area_correction"],
        "crossing_vessels": m["crossing_vessels"],
        "volume_ml": m["volume_ml"],
        "shared_sinus_vessel_id": w.comp,
        "pyramid": info["min_risk"]["levels"],
        "alternatives": table,
        "staging": plan_stages(m["crossing_vessels"], stages, max_share),
    }
    return Separation(owners=owners, summary=summary, mesh=chosen_mesh, timings_s=t)


@dataclass
class _Prepared:
    """What every cut and measure shares: the whole-grid labels and owner, the working box
    with its pyramid, and the vessel counts outside the box."""

    spacing_kji: tuple[float, float, float]
    tis: np.ndarray
    tissue: np.ndarray
    own_f: np.ndarray
    vlab: np.ndarray
    nv: int
    vindex: Any
    comp: int | None
    box: tuple[slice, ...]
    own_c: np.ndarray
    lab_c: np.ndarray
    pyr: Pyramid
    sinus_near: np.ndarray | None
    reg: _Region
    vindex_c: Any
    out_totals: tuple
    out_comp: tuple


def _prepare(tissues: Volume, tis: np.ndarray, own0: np.ndarray, risk: RiskModel, *,
             need_sinus: bool, coarse_mm: float, corridor_mm: float,
             sinus_mm: float) -> _Prepared:
    """The working box around the interface (and the shared sinus), its costs and pyramid."""
    tissue = tis > 0
    sk = tissues.spacing_kji
    own_f = _fill_owner(own0, tissue)
    vlab, nv = vessel_components(tis)
    vindex = _vessel_index(vlab)
    totals0, comp0 = _counts(own_f, vindex, nv)
    comp = shared_sinus((vlab, nv), own_f, counts=comp0) if need_sinus else None
    box = _work_box(own_f, tissue, sk, coarse_mm, corridor_mm,
                    None if comp is None else (vlab == comp, sinus_mm))
    # on the box: tissue, identity owner, vessel components, costs
    tis_c = np.ascontiguousarray(tis[box])
    own_c = np.ascontiguousarray(own_f[box])
    lab_c = np.ascontiguousarray(vlab[box])
    xsec_c = _calibre_on(tis, box, sk)
    vox = np.argwhere(lab_c > 0)
    vdist = interface_distance(vox, interface_mask(own_c), sk)
    dist_c = np.zeros(tis_c.shape, dtype=np.float32)
    dist_c[tuple(vox.T)] = vdist
    pyr = Pyramid(tis_c, own_c, risk.voxel_cost(tis_c, xsec_c, dist_c), sk,
                  coarse_mm=coarse_mm, corridor_mm=corridor_mm)
    del dist_c
    sinus_near = None
    if comp is not None:
        sinus_near = np.zeros(tis_c.shape, dtype=bool)
        sinus_near[tuple(vox[vdist <= sinus_mm].T)] = True
    reg = _Region(tis_c, lab_c, crop(tissues, box, tis_c),
                  risk.voxel_cost(tis_c, xsec_c), xsec_c)
    vindex_c = _vessel_index(lab_c)
    in_totals, in_comp = _counts(own_c, vindex_c, nv)
    return _Prepared(
        spacing_kji=sk, tis=tis, tissue=tissue, own_f=own_f, vlab=vlab, nv=nv, vindex=vindex,
        comp=comp,
        box=box, own_c=own_c, lab_c=lab_c, pyr=pyr, sinus_near=sinus_near, reg=reg,
        vindex_c=vindex_c,
        out_totals=tuple(a - b for a, b in zip(totals0, in_totals, strict=True)),
        out_comp=tuple(a - b for a, b in zip(comp0, in_comp, strict=True)))


def _sinus_cut(w: _Prepared, key: str, keeper: int, sinus_mm: float, solver: str,
               owners_c: dict, info: dict) -> None:
    """Alternative (b) or (c): the cut with the shared sinus kept wholly by ``keeper``."""
    if w.comp is None:
        info[key] = {"available": False, "reason": "no vessel is shared by the twins"}
        return
    force, sinus = sinus_constraints((w.lab_c, w.nv), w.comp, w.own_c, w.spacing_kji, keeper,
                                     sinus_mm, near=w.sinus_near)
    r = w.pyr.cut(force, solver=solver)
    owners_c[key] = r.owner
    info[key] = {"sinus_vessel_id": w.comp,
                 "sinus_voxels_with_keeper": float(np.mean(r.owner[sinus] == keeper))}


def _alternatives(w: _Prepared, tissues: Volume, risk: RiskModel, owners_c: dict,
                  plane_full: np.ndarray | None, info: dict, choose: str
                  ) -> tuple[list[dict], dict, dict, tuple[np.ndarray, np.ndarray]]:
    """Measure every alternative on the whole grid: the table rows, the measures, the
    owner maps and the chosen cut's mesh."""
    table = []
    chosen_mesh = (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    measured = {}
    owners: dict[str, np.ndarray] = {}
    for key, (letter, title) in ALTERNATIVES.items():
        if key not in info:
            continue
        available = key in owners_c or (key == "plane" and plane_full is not None)
        row = {"key": key, "letter": letter, "title": title, "available": available,
               **info[key]}
        if available:
            if key == "plane":
                m, mesh = _measure_whole(plane_full, tissues, w.tis, (w.vlab, w.nv), w.vindex,
                                         risk)
                owners[key] = plane_full
            else:
                oc = owners_c[key]
                tot_in, comp_in = _counts(oc, w.vindex_c, w.nv)
                totals = tuple(a + b for a, b in zip(w.out_totals, tot_in, strict=True))
                comps = tuple(a + b for a, b in zip(w.out_comp, comp_in, strict=True))
                m, mesh = _measure(oc, w.reg, w.nv, totals, comps)
                full = w.own_f.copy()
                full[w.box] = oc
                owners[key] = full
            measured[key] = m
            if key == choose:
                chosen_mesh = mesh
            row.update({k: m[k] for k in (
                "risk", "cut_area_cm2", "cut_area_total_cm2", "vessels_cut",
                "vessel_cross_section_cut_mm2")})
            row["crossing_vessel_ids"] = [c["vessel_id"] for c in m["crossing_vessels"]]
        table.append(row)
    return table, measured, owners, chosen_mesh


def _calibre_on(tis: np.ndarray, box: tuple[slice, ...], spacing_kji,
                margin_mm: float = 12.0) -> np.ndarray:
    """Local vessel calibre (mm2) on ``box``, computed on the box grown by ``margin_mm``
    (the vessels' walls and centre lines just outside the box count)."""
    pad = [math.ceil(margin_mm / s) for s in spacing_kji]
    big = tuple(slice(max(b.start - p, 0), min(b.stop + p, n))
                for b, p, n in zip(box, pad, tis.shape, strict=True))
    vbox, vxs = local_calibre(tis[big] == Tissue.VESSEL, spacing_kji)
    if vbox is not None:
        vbox = tuple(slice(v.start + g.start, v.stop + g.start)
                     for v, g in zip(vbox, big, strict=True))
    shape = tuple(b.stop - b.start for b in box)
    return _paste(vbox, vxs, box, shape)


def _measure_whole(owner: np.ndarray, tissues: Volume, tis: np.ndarray,
                   vessel_labels: tuple[np.ndarray, int],
                   vindex: tuple[np.ndarray, np.ndarray], risk: RiskModel):
    """Measures of a cut given on the whole volume (the user plane), made on the box of
    its interface."""
    vlab, nv = vessel_labels
    totals, comps = _counts(owner, vindex, nv)
    box = bounding_box(interface_mask(owner), 2) or tuple(slice(0, n) for n in owner.shape)
    tis_b = np.ascontiguousarray(tis[box])
    xs_b = _calibre_on(tis, box, tissues.spacing_kji)
    reg = _Region(tis_b, np.ascontiguousarray(vlab[box]), crop(tissues, box, tis_b),
                  risk.voxel_cost(tis_b, xs_b), xs_b)
    return _measure(np.ascontiguousarray(owner[box]), reg, nv, totals, comps)


def _fill_owner(own0: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    o = np.where((own0 == _A) | (own0 == _B), own0, 0).astype(np.uint8)
    return fill_unowned(o, tissue)
