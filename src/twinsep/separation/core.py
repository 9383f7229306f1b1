"""Separation: the minimum-risk cut, its alternatives, staging, and the case folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinsep.casefolder import Case
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.labels import Owner
from twinsep.separation.alternatives import (
    ALTERNATIVES,
    plane_owner,
    resolve_choice,
    shared_sinus,
    sinus_constraints,
)
from twinsep.separation.graphcut import _fill_unowned, pyramid_cut
from twinsep.separation.mesh import cut_surface, mesh_area_mm2
from twinsep.separation.metrics import crossings, face_measures, vessel_components
from twinsep.separation.risk import RiskModel, load_risk, vessel_cross_section
from twinsep.separation.staging import plan_stages

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


def _measure(
    owner: np.ndarray, tissues: Volume, cost: np.ndarray, xsec: np.ndarray,
    vlab: tuple[np.ndarray, int],
) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
    sk = tissues.spacing_kji
    fm = face_measures(owner, tissues.array, cost, sk)
    verts, faces = cut_surface(owner, tissues)
    mesh_mm2 = mesh_area_mm2(verts, faces)
    ratio = mesh_mm2 / fm["total_mm2"] if fm["total_mm2"] > 0 else 1.0
    cx = crossings(owner, tissues.array, xsec, tissues, vlab)
    out = {
        "risk": fm["risk"],
        "cut_area_cm2": {k: v * ratio / 100.0 for k, v in fm["area_mm2"].items()},
        "cut_area_total_cm2": mesh_mm2 / 100.0,
        "cut_area_faces_cm2": {k: v / 100.0 for k, v in fm["area_mm2"].items()},
        "area_correction": ratio,
        "vessels_cut": len(cx),
        "vessel_cross_section_cut_mm2": sum(c["cross_section_mm2"] for c in cx),
        "crossing_vessels": cx,
        "volume_ml": {
            "A": float(np.count_nonzero(owner == _A)) * tissues.voxel_volume_ml,
            "B": float(np.count_nonzero(owner == _B)) * tissues.voxel_volume_ml,
        },
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
    sk = tissues.spacing_kji
    xsec = vessel_cross_section(tis, sk)
    cost = risk.voxel_cost(tis, xsec)
    vlab = vessel_components(tis)
    t["prepare"] = time.perf_counter() - t0

    kw = {"coarse_mm": coarse_mm, "corridor_mm": corridor_mm, "solver": solver}
    owners: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    t0 = time.perf_counter()
    res = pyramid_cut(tis, own0, cost, sk, **kw)
    owners["min_risk"] = res.owner
    info["min_risk"] = {"levels": [
        {"spacing_mm": list(lv.spacing_mm[::-1]), "band_voxels": lv.band_voxels,
         "edges": lv.edges} for lv in res.levels]}
    t["cut_min_risk"] = time.perf_counter() - t0

    # identity owner with 0/3 on tissue filled, for the sinus and plane
    own_filled = None
    comp = None
    if alternatives or choose in ("sinus_to_a", "sinus_to_b"):
        own_filled = _fill_owner(own0, tissue)
        comp = shared_sinus(vlab, own_filled)
    sinus_masks = {}
    for key, keeper in (("sinus_to_a", _A), ("sinus_to_b", _B)):
        if not (alternatives or choose == key):
            continue
        if comp is None:
            info[key] = {"available": False, "reason": "no vessel is shared by the twins"}
            continue
        t0 = time.perf_counter()
        force, sinus = sinus_constraints(vlab, comp, own_filled, sk, keeper, sinus_mm)
        r = pyramid_cut(tis, own0, cost, sk, force=force, **kw)
        owners[key] = r.owner
        sinus_masks[key] = sinus
        info[key] = {"sinus_vessel_id": comp,
                     "sinus_voxels_with_keeper": float(np.mean(r.owner[sinus] == keeper))}
        t[f"cut_{key}"] = time.perf_counter() - t0
    if plane is not None:
        owners["plane"] = plane_owner(tissue, own_filled if own_filled is not None
                                      else _fill_owner(own0, tissue), tissues,
                                      plane[:3], plane[3:])
        info["plane"] = {"point_mm": list(plane[:3]), "normal": list(plane[3:])}
    elif alternatives or choose == "plane":
        info["plane"] = {"available": False, "reason": "no --plane given"}
    if choose not in owners:
        raise InputError(f"alternative {choose!r} is not available: {info[choose]['reason']}")

    t0 = time.perf_counter()
    table = []
    chosen_mesh = (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    measured = {}
    for key, (letter, title) in ALTERNATIVES.items():
        if key not in info:
            continue
        row = {"key": key, "letter": letter, "title": title,
               "available": key in owners, **info[key]}
        if key in owners:
            m, mesh = _measure(owners[key], tissues, cost, xsec, vlab)
            measured[key] = m
            if key == choose:
                chosen_mesh = mesh
            row.update({k: m[k] for k in (
                "risk", "cut_area_cm2", "cut_area_total_cm2", "vessels_cut",
                "vessel_cross_section_cut_mm2")})
            row["crossing_vessel_ids"] = [c["vessel_id"] for c in m["crossing_vessels"]]
        table.append(row)
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
        "shared_sinus_vessel_id": comp,
        "pyramid": info["min_risk"]["levels"],
        "alternatives": table,
        "staging": plan_stages(m["crossing_vessels"], stages, max_share),
    }
    return Separation(owners=owners, summary=summary, mesh=chosen_mesh, timings_s=t)


def _fill_owner(own0: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    o = np.where((own0 == _A) | (own0 == _B), own0, 0).astype(np.uint8)
    return _fill_unowned(o, tissue)


# --- the case folder -------------------------------------------------------------------
def identity_copy_path(case: Case) -> Path:
    """``labels/twins-identity.nii.gz``: the identity owner map kept by ``separate``."""
    return case.labels / "twins-identity.nii.gz"


def separate_case(case: Case, *, risk_file: str | Path | None = None, **kwargs) -> Separation:
    """Run :func:`separate` on a case folder and write its results.

    Reads ``labels/tissues.nii.gz`` and the identity owner map; writes
    ``labels/twins.nii.gz`` (the final owner map, 0/1/2), ``models/cut_surface.ply`` and
    plan.json ``separation``. The identity map is first saved to
    ``labels/twins-identity.nii.gz``; it is refreshed whenever ``labels/twins.nii.gz`` is
    not the map the last separation wrote (``identify`` was run again).
    """
    from twinsep.casefolder import load_plan, sha256_array, sha256_file, update_plan

    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep identify` first")
    ident_path = identity_copy_path(case)
    plan = load_plan(case)
    twins = Volume.read(case.twins)
    written = (plan.get("separation") or {}).get("owner_map_sha256")
    if not ident_path.exists() or sha256_array(twins.array) != written:
        _write_volume_atomic(twins, ident_path)
    identity = Volume.read(ident_path)
    tissues = Volume.read(case.tissues)
    risk = load_risk(risk_file)
    sep = separate(tissues, identity, risk, **kwargs)
    final = tissues.with_array(sep.owner.astype(np.uint8))
    _write_volume_atomic(final, case.twins)
    case.models.mkdir(parents=True, exist_ok=True)
    from twinsep.separation.mesh import write_ply

    mesh_path = case.models / "cut_surface.ply"
    write_ply(mesh_path, *sep.mesh, comment="twinsep separation cut surface")
    sep.summary.update({
        "owner_map": "labels/twins.nii.gz",
        "identity_map": "labels/twins-identity.nii.gz",
        "identity_map_sha256": sha256_array(identity.array),
        "owner_map_sha256": sha256_array(final.array),
        "cut_surface": "models/cut_surface.ply",
        "cut_surface_sha256": sha256_file(mesh_path),
        "owner_codes": {str(int(Owner.BACKGROUND)): "background", str(int(Owner.A)): "A",
                        str(int(Owner.B)): "B"},
    })
    update_plan(case, separation=sep.summary)
    return sep


def _write_volume_atomic(vol: Volume, path: Path) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".nii.gz", dir=path.parent)
    os.close(fd)
    try:
        vol.write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
