"""``twinsep simulate``: each child's geometry after the cut, defects, expanders, implant.

Inputs: ``labels/tissues.nii.gz`` and ``labels/twins.nii.gz`` (owner 1 A, 2 B after the cut;
a leftover 0 or 3 inside the head is given to the nearest twin).

Defect areas (cm2, world mm via the affine): marching cubes on the twin's own nested masks
(scalp level: all its tissue; bone level: bone and everything inside; dura level: CSF/dura
and inside), lightly smoothed (0.5 voxel) so the staircase does not inflate the area; only
the faces that face the other twin count (face centre within ``0.5 max + 0.25 min`` voxel
spacing of the other twin's tissue). ``scalp_defect_cm2`` is the open wound the skin must
cover, ``bone_defect_cm2`` the skull opening (the cut inside the outer skull surface),
``dura_defect_cm2`` the dural opening. ``scalp_needed_cm2`` (= ``skin_missing_cm2``) is the
area of the closed head's skin over the defect: the outer surface of the closed cranium
(see :mod:`twinsep.reconstruction.cranium`) grown by the scalp thickness, in the opened space.

Frame: everything written by this stage (plan.json points and frames, ``models/twin_*``) is
in the *separated* frame: scan world mm (LPS) plus the twin's ``translation_mm``, i.e. each
twin moved half of ``separation_distance_mm`` along the separation normal, away from the
other. Subtract ``translation_mm`` to get scan coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from twinsep.image import Volume
from twinsep.labels import Owner, Tissue
from twinsep.reconstruction import cranium as cr
from twinsep.reconstruction import expanders as ex
from twinsep.reconstruction.settings import ReconstructionSettings, load_settings

TWINS = {"A": (Owner.A, Owner.B), "B": (Owner.B, Owner.A)}
MAX_DISPLAY_FACES = 150_000


@dataclass
class Surface:
    """A marching-cubes surface in world mm (scan frame) with per-face data."""

    verts: np.ndarray
    faces: np.ndarray
    centres_kji: np.ndarray
    areas_mm2: np.ndarray
    cut: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def centres(self) -> np.ndarray:
        return self.verts[self.faces].mean(1)

    def normals(self) -> np.ndarray:
        v = self.verts[self.faces]
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def surface(mask: np.ndarray, vol: Volume, sigma_vox: float = 0.5) -> Surface:
    """Closed marching-cubes surface of ``mask`` (level 0.5 after a light Gaussian)."""
    from skimage.measure import marching_cubes

    if not mask.any():
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), int), np.zeros((0, 3)), np.zeros(0),
                       np.zeros(0, bool))
    sl = ndi.find_objects(mask.astype(np.uint8))[0]
    lo = [max(0, s.start - 3) for s in sl]
    hi = [min(n, s.stop + 3) for s, n in zip(sl, mask.shape, strict=True)]
    sub = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
    sub = np.pad(sub, 1)
    if sigma_vox > 0:
        sub = ndi.gaussian_filter(sub, sigma_vox)
    v, f, _, _ = marching_cubes(sub, 0.5)
    kji = v - 1 + np.asarray(lo, float)
    verts = vol.index_to_world(kji)
    tri = verts[f]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return Surface(verts, f.astype(np.int64), kji[f].mean(1), areas)


def sample(field_: np.ndarray, kji: np.ndarray, order: int = 1) -> np.ndarray:
    """Values of ``field_`` at fractional indices ``kji`` (n, 3)."""
    return ndi.map_coordinates(field_.astype(np.float32), kji.T, order=order, mode="nearest")


def resolve_owner(tissues: np.ndarray, owner: np.ndarray, sampling) -> np.ndarray:
    """Owner map with every tissue voxel 1 (A) or 2 (B): 0/3 inside tissue -> nearest twin."""
    own = np.where(tissues > 0, owner, 0).astype(np.uint8)
    sure = (own == Owner.A) | (own == Owner.B)
    todo = (tissues > 0) & ~sure
    if todo.any() and sure.any():
        _, idx = ndi.distance_transform_edt(~sure, sampling=sampling, return_indices=True)
        own[todo] = own[tuple(i[todo] for i in idx)]
    return own


def _outline(s: Surface) -> np.ndarray:
    """Largest closed loop of boundary edges of the cut faces (world mm, ordered)."""
    f = s.faces[s.cut]
    if not len(f):
        return np.zeros((0, 3))
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    uniq, cnt = np.unique(e, axis=0, return_counts=True)
    edges = uniq[cnt == 1]
    nbr: dict[int, list[int]] = {}
    for a, b in edges:
        nbr.setdefault(int(a), []).append(int(b))
        nbr.setdefault(int(b), []).append(int(a))
    seen: set[int] = set()
    best: list[int] = []
    for start in sorted(nbr):
        if start in seen:
            continue
        loop, prev, cur = [start], -1, start
        seen.add(start)
        while True:
            nxt = [n for n in nbr[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            seen.add(cur)
            loop.append(cur)
        if len(loop) > len(best):
            best = loop
    return s.verts[best]


def _plane(s: Surface, towards: np.ndarray) -> dict:
    """Centre, normal (towards the other twin) and in-plane axes/extents of the cut faces."""
    c = s.centres[s.cut]
    w = s.areas_mm2[s.cut]
    centre = (c * w[:, None]).sum(0) / w.sum()
    d = c - centre
    cov = (d * w[:, None]).T @ d / w.sum()
    evals, evecs = np.linalg.eigh(cov)
    normal = evecs[:, 0]
    if normal @ (towards - centre) < 0:
        normal = -normal
    e1 = evecs[:, 2] * (1 if evecs[2, 2] >= 0 else -1)
    e2 = np.cross(normal, e1)
    return {"centre": centre, "normal": normal, "e1": e1, "e2": e2,
            "length_mm": 4.0 * np.sqrt(max(evals[2], 0.0)),
            "width_mm": 4.0 * np.sqrt(max(evals[1], 0.0))}


def _write_stl(mesh, path: Path, shift: np.ndarray, max_faces: int | None = None) -> None:
    import trimesh

    from twinsep.casefolder import write_text_atomic

    m = mesh.copy()
    if max_faces and len(m.faces) > max_faces:
        try:
            import fast_simplification

            v, f = fast_simplification.simplify(np.asarray(m.vertices, np.float32),
                                                np.asarray(m.faces), 1.0 - max_faces / len(m.faces))
            m = trimesh.Trimesh(v, f, process=True)
        except Exception:
            pass
    m.apply_translation(shift)
    write_text_atomic(path, m.export(file_type="stl"))


def _mesh(s: Surface, faces_mask: np.ndarray | None = None):
    import trimesh

    f = s.faces if faces_mask is None else s.faces[faces_mask]
    return trimesh.Trimesh(s.verts, f, process=True)


def _place(head: Surface, plane: dict, cand: ex.Candidate, scalp_mm: float,
           s: ReconstructionSettings, head_centre: np.ndarray) -> list[dict]:
    """Positions/frames (scan mm) of ``cand.n`` expanders on the healthy scalp."""
    from scipy.spatial import cKDTree

    cut_c = head.centres[head.cut]
    c = head.centres
    dist = cKDTree(cut_c).query(c)[0] if len(cut_c) else np.full(len(c), np.inf)
    nrm = head.normals()
    flip = ((c - head_centre) * nrm).sum(1) < 0
    nrm[flip] *= -1
    target = s.placement.clearance_mm + cand.product.width_cm * 10.0 / 2.0
    tol = max(3.0, 2 * max(np.abs(np.diff(head.verts[head.faces[:1]], axis=1)).max(), 1.0))
    band = (~head.cut) & (np.abs(dist - target) <= tol)
    rel = c - plane["centre"]
    ang = np.arctan2(rel @ plane["e1"], rel @ plane["e2"])
    out = []
    for k in range(cand.n):
        phi = 2 * np.pi * k / cand.n
        if not band.any():
            break
        diff = np.abs(np.angle(np.exp(1j * (ang - phi))))
        diff[~band] = np.inf
        i = int(np.argmin(diff))
        p, n = c[i], nrm[i]
        toward = plane["centre"] - p
        t = toward - (toward @ n) * n
        t /= max(np.linalg.norm(t), 1e-9)
        long = np.cross(t, n)
        frame = np.eye(4)
        frame[:3, 0], frame[:3, 1], frame[:3, 2] = long, t, n
        frame[:3, 3] = p - n * scalp_mm
        out.append({"surface_point": p, "normal": n, "long_axis": long, "frame": frame,
                    "distance_to_defect_mm": float(dist[i]), "angle_deg": float(np.rad2deg(phi))})
    return out


def _ring_cm(head: Surface, plane: dict, target_mm: float) -> float:
    """Circumference (cm) of the ring of scalp ``target_mm`` from the defect (in-plane radius)."""
    from scipy.spatial import cKDTree

    cut_c = head.centres[head.cut]
    if not len(cut_c):
        return 0.0
    dist = cKDTree(cut_c).query(head.centres)[0]
    band = (~head.cut) & (np.abs(dist - target_mm) <= 3.0)
    if not band.any():
        return 0.0
    rel = head.centres[band] - plane["centre"]
    r = np.hypot(rel @ plane["e1"], rel @ plane["e2"])
    return float(2 * np.pi * np.median(r) / 10.0)


def simulate_arrays(tissues: Volume, owner: Volume, *, products: list[ex.Product],
                    settings: ReconstructionSettings | None = None,
                    models_dir: Path | None = None,
                    progress: Callable[[str, float], None] | None = None) -> dict:
    """The ``reconstruction`` section (and meshes in ``models_dir``) for a label pair.

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes on the same grid.
    products : list of Product
        Expander catalogue.
    settings : ReconstructionSettings, optional
    models_dir : Path, optional
        Where to write ``twin_{A,B}_{head,skull,defect,implant,expander_N}.stl``.
    progress : callable, optional
        ``progress(text, fraction)``.

    Returns
    -------
    dict
        The ``reconstruction`` section of plan.json, plus ``_arrays`` (per twin: implant and
        closed masks) for tests; :func:`simulate_case` drops ``_arrays``.
    """
    import trimesh

    from twinsep.errors import InputError

    s = settings or load_settings()
    report = progress or (lambda t, f: None)
    if not tissues.same_grid(owner):
        raise InputError("labels/twins.nii.gz is not on the grid of labels/tissues.nii.gz")
    sp = tissues.spacing_kji
    tis = tissues.array
    own = resolve_owner(tis, owner.array, sp)
    heads = {k: (own == code) & (tis > 0) for k, (code, _) in TWINS.items()}
    if not heads["A"].any() or not heads["B"].any():
        raise InputError("labels/twins.nii.gz must hold tissue of both twins (1 A, 2 B)")
    dist = {k: ndi.distance_transform_edt(~m, sampling=sp) for k, m in heads.items()}
    tol = 0.5 * max(sp) + 0.25 * min(sp)
    centres = {k: tissues.index_to_world(np.argwhere(m).mean(0)) for k, m in heads.items()}
    n_ab = centres["B"] - centres["A"]
    twins_out, scalp_out, cran_out, exp_out, arrays = {}, {}, {}, {}, {}
    warnings_all: list[str] = []
    planes = {}
    for step, (name, _codes) in enumerate(TWINS.items()):
        other = "B" if name == "A" else "A"
        report(f"twin {name}: defects", 0.05 + 0.45 * step)
        hx = heads[name]
        cran = hx & (tis >= Tissue.BONE)
        intra = hx & (tis >= Tissue.CSF)
        bone = hx & (tis == Tissue.BONE)
        brain = hx & (tis == Tissue.BRAIN)
        d_other, d_own = dist[other], dist[name]
        surfs = {}
        for level, m in (("scalp", hx), ("bone", cran), ("dura", intra)):
            su = surface(m, tissues)
            su.cut = sample(d_other, su.centres_kji) < tol
            surfs[level] = su
        head = surfs["scalp"]
        if not head.cut.any():
            raise InputError(f"twin {name} does not touch twin {other}: nothing to reconstruct")
        plane = _plane(head, centres[other])
        planes[name] = plane
        # thickness of the scalp and of the skull near the defect: volume / outer area
        lo, hi = s.implant.fit_band_mm
        band_vox = (d_other >= lo) & (d_other <= hi)
        skull = surfs["bone"]
        sk_band = (~skull.cut) & (sample(band_vox, skull.centres_kji, 0) > 0.5)
        hd_band = (~head.cut) & (sample(band_vox, head.centres_kji, 0) > 0.5)
        area_sk = skull.areas_mm2[sk_band].sum()
        area_hd = head.areas_mm2[hd_band].sum()
        vox = tissues.voxel_volume_mm3
        t_bone = (bone & band_vox).sum() * vox / area_sk if area_sk else s.implant.min_thickness_mm
        t_scalp = ((hx & (tis == Tissue.SCALP) & band_vox).sum() * vox / area_hd
                   if area_hd else 4.0)
        if s.implant.thickness_mm is not None:
            t_bone = s.implant.thickness_mm
        t_bone = float(np.clip(t_bone, s.implant.min_thickness_mm, s.implant.max_thickness_mm))
        if s.placement.scalp_thickness_mm is not None:
            t_scalp = s.placement.scalp_thickness_mm
        t_scalp = float(t_scalp)
        # implant
        report(f"twin {name}: implant", 0.2 + 0.45 * step)
        des = cr.design_implant(tissues, cran, intra, d_own, d_other, t_bone, s.implant)
        implant = des["implant"]
        check = cr.closure_check(bone, implant, cran, intra, des["opened"])
        brain_overlap = int((implant & brain).sum())
        if implant.any() and brain.any():
            d_brain = ndi.distance_transform_edt(~brain, sampling=sp)
            min_brain = float(d_brain[implant].min())
        else:
            min_brain = None
        imp_surf = surface(implant, tissues, sigma_vox=0.0)
        imp_mesh = trimesh.Trimesh(imp_surf.verts, imp_surf.faces, process=True)
        # closed head: scalp over the closed cranium, in the opened space
        d_closed = ndi.distance_transform_edt(~des["closed"], sampling=sp)
        reach = dist[name] <= s.implant.max_bulge_mm + t_scalp
        closed_head = hx | (des["opened"] & (d_closed <= t_scalp) & reach)
        ch = surface(closed_head, tissues)
        new = sample(des["opened"], ch.centres_kji) > 0.5
        scalp_needed = float(ch.areas_mm2[new].sum() / 100.0)
        # missing skull: the outer surface of the closed cranium in the opened space
        cs = surface(des["closed"], tissues)
        in_open = sample(des["opened"], cs.centres_kji) > 0.5
        bone_missing = float(cs.areas_mm2[in_open].sum() / 100.0)
        arrays[name] = {"implant": implant, "closed": des["closed"], "opened": des["opened"]}
        # separated frame
        unit = n_ab / np.linalg.norm(n_ab)
        shift = (-0.5 if name == "A" else 0.5) * s.separation_distance_mm * unit
        areas = {lvl: float(su.areas_mm2[su.cut].sum() / 100.0) for lvl, su in surfs.items()}
        outline = _outline(head)
        if len(outline) > 96:
            outline = outline[np.linspace(0, len(outline) - 1, 96).astype(int)]
        models = {}
        if models_dir is not None:
            files = {
                "head": (_mesh(head), MAX_DISPLAY_FACES),
                "skull": (_mesh(surface(bone, tissues, sigma_vox=0.0)), MAX_DISPLAY_FACES),
                "defect": (_mesh(head, head.cut), None),
            }
            if len(imp_mesh.faces):
                files["implant"] = (imp_mesh, None)
            for key, (m, cap) in files.items():
                fn = f"twin_{name}_{key}.stl"
                _write_stl(m, models_dir / fn, shift, cap)
                models[key] = f"models/{fn}"
        twins_out[name] = {
            "scalp_defect_cm2": areas["scalp"],
            "bone_defect_cm2": bone_missing,
            "bone_opening_cm2": areas["bone"],
            "dura_defect_cm2": areas["dura"],
            "scalp_needed_cm2": scalp_needed,
            "defect_length_cm": plane["length_mm"] / 10.0,
            "defect_width_cm": plane["width_mm"] / 10.0,
            "defect_centre_mm": plane["centre"] + shift,
            "defect_normal": plane["normal"],
            "defect_outline_mm": outline + shift if len(outline) else [],
            "translation_mm": shift,
            "scalp_thickness_mm": t_scalp,
            "skull_thickness_mm": t_bone,
            "models": models,
        }
        # scalp plan
        report(f"twin {name}: expanders", 0.35 + 0.45 * step)
        width_cm = plane["width_mm"] / 10.0
        typical_w = float(np.median([p.width_cm for p in products])) * 10.0
        ring = _ring_cm(head, plane, s.placement.clearance_mm + typical_w / 2.0)
        cand, warns = ex.choose(products, scalp_needed, width_cm, ring, s)
        places = _place(head, plane, cand, t_scalp, s, centres[name])
        if len(places) < cand.n:
            warns.append(f"only {len(places)} of {cand.n} expanders could be placed on the "
                         "healthy scalp")
        items = []
        for k, pl in enumerate(places, start=1):
            h_cm = ex.height_for_volume(cand.product.shape, cand.product.length_cm,
                                        cand.product.width_cm,
                                        cand.product.volume_ml * s.overfill_factor)
            entry = {
                "index": k, "product": cand.product.id, "shape": cand.product.shape,
                "length_cm": cand.product.length_cm, "width_cm": cand.product.width_cm,
                "nominal_volume_ml": cand.product.volume_ml, "fill_volume_ml":
                cand.product.volume_ml * s.overfill_factor, "dome_height_cm": h_cm,
                "geometric_gain_cm2": cand.gain.geometric_cm2,
                "expected_gain_cm2": cand.gain.expected_cm2,
                "efficiency": cand.gain.efficiency, "expanded_width_cm": cand.gain.arc_width_cm,
                "position_mm": pl["surface_point"] + shift, "normal": pl["normal"],
                "long_axis": pl["long_axis"], "base_centre_mm": pl["frame"][:3, 3] + shift,
                "distance_to_defect_mm": pl["distance_to_defect_mm"],
                "schedule": ex.fill_schedule(cand.product.volume_ml, s),
            }
            if models_dir is not None:
                fn = f"twin_{name}_expander_{k}.stl"
                dome = ex.expander_mesh(cand.product, h_cm, pl["frame"])
                _write_stl(dome, models_dir / fn, shift)
                entry["model"] = f"models/{fn}"
            items.append(entry)
        exp_out[name] = items
        need_vol = s.aya.min_volume_ml_per_cm2 * scalp_needed
        need_w = s.aya.min_width_ratio * width_cm
        scalp_out[name] = {
            "skin_missing_cm2": scalp_needed,
            "defect_width_cm": width_cm,
            "n_expanders": len(items),
            "expected_gain_cm2": sum(i["expected_gain_cm2"] for i in items),
            "geometric_gain_cm2": sum(i["geometric_gain_cm2"] for i in items),
            "total_volume_ml": sum(i["fill_volume_ml"] for i in items),
            "expanded_width_cm": sum(i["expanded_width_cm"] for i in items),
            "weeks": max((i["schedule"]["weeks"] for i in items), default=0),
            "aya": {"required_volume_ml": need_vol, "required_width_cm": need_w,
                    "volume_ok": cand.checks["aya_volume"], "width_ok": cand.checks["aya_width"],
                    "satisfied": cand.checks["aya_volume"] and cand.checks["aya_width"]},
            "gain_covers_skin": cand.checks["gain_covers_skin"],
            "ring_cm": ring,
            "warnings": warns,
        }
        warnings_all += [f"twin {name}: {w}" for w in warns]
        cran_out[name] = {
            "bone_defect_cm2": bone_missing,
            "bone_opening_cm2": areas["bone"],
            "implant": {
                "model": models.get("implant"),
                "area_cm2": float(imp_mesh.area / 200.0),
                "surface_area_cm2": float(imp_mesh.area / 100.0),
                "volume_ml": float(abs(imp_mesh.volume) / 1000.0) if len(imp_mesh.faces) else 0.0,
                "voxel_volume_ml": float(implant.sum() * tissues.voxel_volume_ml),
                "thickness_mm": t_bone,
                "watertight_mesh": bool(imp_mesh.is_watertight) if len(imp_mesh.faces) else False,
                "sphere_centre_mm": des["sphere_centre_mm"] + shift,
                "sphere_radius_mm": des["sphere_radius_mm"],
                "fit_points": des["fit_points"],
            },
            "closure": {**check, "smallest_detectable_hole_mm": float(max(tissues.spacing))},
            "brain_overlap_voxels": brain_overlap,
            "min_brain_distance_mm": min_brain,
        }
        if not check["closed"]:
            warnings_all.append(f"twin {name}: skull plus implant leaves the cavity open "
                                f"({check['leak_voxels']} voxels reach the outside)")
    report("done", 1.0)
    return {
        "frame": "separated: scan world mm (LPS) + translation_mm of each twin",
        "separation_normal": n_ab / np.linalg.norm(n_ab),
        "separation_distance_mm": s.separation_distance_mm,
        "twins": twins_out,
        "scalp": {"twins": scalp_out, "expanders": exp_out},
        "cranium": {"twins": cran_out},
        "settings": s.model_dump(mode="json"),
        "warnings": warnings_all,
        "_arrays": arrays,
    }


def simulate_case(case, *, catalog: Path, settings: Path | None = None,
                  progress: Callable[[str, float], None] | None = None) -> dict:
    """Run :func:`simulate_arrays` on a case folder; write models and plan.json.

    Returns the ``reconstruction`` section as written.
    """
    from twinsep.casefolder import update_plan

    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep separate` first")
    s = load_settings(settings)
    products = ex.load_catalog(catalog)
    tissues = Volume.read(case.tissues)
    owner = Volume.read(case.twins)
    case.models.mkdir(parents=True, exist_ok=True)
    section = simulate_arrays(tissues, owner, products=products, settings=s,
                              models_dir=case.models, progress=progress)
    section.pop("_arrays")
    section["catalog"] = Path(catalog).name
    update_plan(case, reconstruction=section)
    return section
