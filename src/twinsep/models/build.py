"""``twinsep models``: build every layer and write the exports into ``CASE/models/``.

Files (paths relative to the case folder)::

    models/model.glb               the VR model: named nodes, PBR materials (metres, +Y up)
    models/manifest.json           every layer: name, colour, node, STL, size, volume, area
    models/stl/<A-brain>.stl       one watertight STL per closed layer (world LPS mm)
    models/stl/doll-A.stl, -B.stl  the doll's solids (doll mm)
    models/doll.3mf                the doll: both solids, each in its twin's colour (mm)
    models/segmentation.seg.nrrd   the layers as a 3D Slicer segmentation
    models/segmentation.dcm        DICOM-SEG referencing the source series (DICOM input)

After ``twinsep simulate`` the GLB and the manifest also hold the separated twins (stage
``separated``: heads, skulls, implants, expanders and wounds; see
:mod:`twinsep.models.separated`), whose STL files are the ones ``simulate`` wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinsep.casefolder import Case, load_plan, read_json, update_plan, write_json
from twinsep.errors import InputError
from twinsep.image import Volume
from twinsep.models.doll import THIN_TOLERANCE, DollPart, doll_parts
from twinsep.models.scene import (
    Layer,
    build_layers,
    cut_surface_layer,
    layer_labelmap,
    resolved_owner,
)
from twinsep.models.separated import reconstruction_layers
from twinsep.models.surfaces import SurfaceSettings, is_closed, signed_volume, surface_area

ProgressFn = Callable[[str, int, int], None]

MANIFEST_FORMAT = "twinsep-models"
MANIFEST_VERSION = 1
GLB_NAME = "model.glb"
MANIFEST_NAME = "manifest.json"
DOLL_NAME = "doll.3mf"
SEG_NRRD_NAME = "segmentation.seg.nrrd"
DICOM_SEG_NAME = "segmentation.dcm"


@dataclass
class ModelSet:
    """Everything :func:`build_models` made (meshes in world LPS mm; doll in doll mm)."""

    labelmap: Volume
    layers: list[Layer]
    doll: list[DollPart]
    settings: SurfaceSettings
    scale: float
    min_wall_mm: float
    notes: list[str] = field(default_factory=list)

    @property
    def triangles(self) -> int:
        """Triangles in the GLB (all layers with a mesh)."""
        return sum(len(ly.mesh.faces) for ly in self.layers if ly.mesh is not None)


def build_models(tissues: Volume, owner: Volume, *, cut_surface: Path | None = None,
                 settings: SurfaceSettings = SurfaceSettings(), scale: float = 1.0,
                 min_wall_mm: float = 2.0, doll_max_faces: int = 250_000,
                 progress: ProgressFn | None = None) -> ModelSet:
    """Meshes of every twin x tissue, every shared vessel, the cut surface and the doll.

    Parameters
    ----------
    tissues, owner : Volume
        Tissue codes and owner codes (0/1/2, 3 allowed) on one grid.
    cut_surface : Path or None
        ``models/cut_surface.ply`` (world mm), if any.
    settings : SurfaceSettings
        Meshing, smoothing and face budgets.
    scale : float
        Doll size / life size.
    min_wall_mm : float
        Minimum wall thickness of the printed doll (mm, at its scale).
    doll_max_faces : int
        Face budget of each doll solid.
    progress : callable or None
        ``progress(description, done, total)``.
    """
    if scale <= 0:
        raise InputError(f"--scale must be positive, got {scale}")
    if min_wall_mm < 0:
        raise InputError(f"--min-wall-mm must not be negative, got {min_wall_mm}")
    if not tissues.same_grid(owner, tol_mm=1e-2):
        raise InputError("tissue map and owner map are not on the same grid")
    own = resolved_owner(tissues, owner)
    labelmap, layers = layer_labelmap(tissues, owner, own)
    if not layers:
        raise InputError("the tissue map is empty: nothing to model")
    build_layers(labelmap, layers, settings, progress)
    layers = [ly for ly in layers if ly.mesh is not None]
    notes = [f"{ly.name}: {n}" for ly in layers for n in ly.surface.notes]
    if cut_surface is not None:
        cut = cut_surface_layer(Path(cut_surface))
        if cut is not None:
            layers.append(cut)
    if progress is not None:
        progress("doll", 0, 1)
    doll = doll_parts(tissues, own, scale=scale, min_wall_mm=min_wall_mm, settings=settings,
                      max_faces=doll_max_faces)
    if progress is not None:
        progress("doll", 1, 1)
    return ModelSet(labelmap, layers, doll, settings, scale, min_wall_mm, notes)


def _segments(ms: ModelSet):
    from twinsep.exchange.segmentation import Segment

    out = []
    for ly in ms.layers:
        if ly.label is None:
            continue
        name = f"{ly.twin} {ly.tissue}" if ly.twin else ly.name.replace("/", " ")
        out.append(Segment(ly.label, name, ly.colour, ly.tissue))
    return out


def _layer_entry(ly: Layer, stl: str | None) -> dict:
    mesh = ly.mesh
    if ly.surface is not None:  # measured once when the surface was built
        closed, volume, area = ly.surface.closed, ly.surface.volume_mm3, ly.surface.area_mm2
    else:
        closed = is_closed(mesh.vertices, mesh.faces)
        volume = signed_volume(mesh.vertices, mesh.faces) if closed else 0.0
        area = surface_area(mesh.vertices, mesh.faces)
    entry = {
        "name": ly.name, "node": ly.name, "twin": ly.twin, "tissue": ly.tissue,
        "colour_rgb": list(ly.colour), "opacity": ly.opacity, "stl": stl,
        "triangles": len(mesh.faces), "watertight": bool(closed),
        "volume_ml": round(abs(volume) / 1000.0, 3) if closed else None,
        "area_cm2": round(area / 100.0, 3), "label": ly.label, "stage": ly.stage,
    }
    if ly.vessel_id is not None:
        entry["vessel_id"] = ly.vessel_id
    return entry


def write_models(case: Case, ms: ModelSet, *, dicom: Path | None = None,
                 progress: ProgressFn | None = None) -> dict:
    """Write the exports of ``ms`` into ``case.models`` and plan.json ``models``.

    Returns
    -------
    dict
        The plan.json ``models`` section.
    """
    from twinsep import __version__
    from twinsep.exchange.gltf import LPS_MM_TO_GLTF, GltfPart, write_glb
    from twinsep.exchange.mesh_files import write_3mf, write_stl
    from twinsep.exchange.segmentation import write_dicom_seg, write_seg_nrrd

    out = case.models
    (out / "stl").mkdir(parents=True, exist_ok=True)
    steps = 5
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress is not None:
            progress("writing models", done, steps)
        done += 1

    step("stl")
    entries = []
    for ly in ms.layers:
        stl = ly.source_stl
        if stl is None and ly.closed:
            stl = f"stl/{ly.file_stem}.stl"
            write_stl(out / stl, ly.mesh)
        entries.append(_layer_entry(ly, stl))
    step("glb")

    def group(ly: Layer) -> str | None:
        if ly.stage != "joined":
            return ly.stage
        return ly.twin if ly.twin else ("shared" if ly.label else None)

    parts = [GltfPart(ly.name, ly.mesh.vertices, ly.mesh.faces, ly.colour, ly.opacity,
                      group=group(ly), double_sided=not ly.closed)
             for ly in ms.layers]
    write_glb(out / GLB_NAME, parts, generator=f"twinsep {__version__}",
              extras={"units": "m", "frame": "glTF +Y up (superior), +Z anterior, "
                      "+X patient left; from world LPS mm by manifest frame.glb_from_lps_mm"})
    step("doll")
    doll_entries = []
    for p in ms.doll:
        stl = f"stl/doll-{p.twin}.stl"
        write_stl(out / stl, p.mesh, header=f"twinsep doll twin {p.twin}, mm, scale {ms.scale}")
        doll_entries.append({
            "twin": p.twin, "colour_rgb": list(p.colour), "stl": stl,
            "triangles": len(p.mesh.faces), "watertight": bool(p.watertight),
            "volume_ml": round(p.volume_ml, 3),
            "thin_volume_ml": round(p.thin_volume_ml, 3), "wall_ok": p.wall_ok})
    if ms.doll:
        write_3mf(out / DOLL_NAME, [(f"twin {p.twin}", p.mesh, p.colour) for p in ms.doll],
                  title="twinsep mock surgery doll")
    step("seg")
    segments = _segments(ms)
    write_seg_nrrd(out / SEG_NRRD_NAME, ms.labelmap, segments)
    step("dicom-seg")
    source = read_json(case.case_json).get("source", {}) if case.case_json.exists() else {}
    fmt = str(source.get("format", ""))
    dicom_seg: str | None = None
    dicom_note = None
    if dicom is not None:
        write_dicom_seg(out / DICOM_SEG_NAME, ms.labelmap, segments, Path(dicom),
                        series_uid=source.get("series_uid") or None,
                        software_version=__version__)
        dicom_seg = f"models/{DICOM_SEG_NAME}"
    elif fmt.lower().startswith("dicom"):
        dicom_note = ("input was DICOM; DICOM-SEG carries the source's patient identifiers: "
                      "`twinsep models CASE --dicom DIR` or `twinsep plan --keep-phi` writes it")
    else:
        dicom_note = f"input was {fmt or 'not DICOM'}; no DICOM-SEG"
    if dicom_seg is None and (out / DICOM_SEG_NAME).exists():
        (out / DICOM_SEG_NAME).unlink()
    step("done")
    written = {e["stl"] for e in entries if e["stl"]} | {d["stl"] for d in doll_entries}
    for old in (out / "stl").glob("*.stl"):  # layers of an earlier run that are gone now
        if f"stl/{old.name}" not in written:
            old.unlink()

    frame = {"glb_units": "m", "glb_from_lps_mm": LPS_MM_TO_GLTF.tolist(),
             "stl_units": "mm", "stl_frame": "world LPS",
             "doll_frame": "world LPS minus the centre of the joined heads, times scale"}
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "glb": GLB_NAME,
        "frame": frame, "layers": entries,
        "doll": {"file": DOLL_NAME if ms.doll else None, "scale": ms.scale,
                 "min_wall_mm": ms.min_wall_mm, "parts": doll_entries},
        "segmentation": SEG_NRRD_NAME, "dicom_seg": DICOM_SEG_NAME if dicom_seg else None,
    }
    write_json(out / MANIFEST_NAME, manifest)

    s = ms.settings
    section = {
        "glb": f"models/{GLB_NAME}", "manifest": f"models/{MANIFEST_NAME}",
        "doll": f"models/{DOLL_NAME}" if ms.doll else None,
        "segmentation": f"models/{SEG_NRRD_NAME}", "dicom_seg": dicom_seg,
        "triangles_total": ms.triangles,
        "layers": [{
            "name": e["name"], "stl": f"models/{e['stl']}" if e["stl"] else None,
            "triangles": e["triangles"], "watertight": e["watertight"],
            "volume_ml": e["volume_ml"], "area_cm2": e["area_cm2"],
            "smoothing_volume_change_pct": (
                round(ly.surface.smoothing_volume_change_pct, 3) if ly.surface else None),
            "triangles_extracted": ly.surface.faces_extracted if ly.surface else None,
        } for e, ly in zip(entries, ms.layers, strict=True)],
        "doll_print": {"scale": ms.scale, "min_wall_mm": ms.min_wall_mm,
                       "thin_tolerance": THIN_TOLERANCE,
                       "watertight": all(d["watertight"] for d in doll_entries),
                       "wall_ok": all(d["wall_ok"] for d in doll_entries),
                       "parts": [{**d, "stl": f"models/{d['stl']}"} for d in doll_entries]},
        "settings": {"mc_spacing_mm": s.mc_spacing_mm, "smooth": "taubin",
                     "smooth_iterations": s.smooth_iterations, "taubin_lambda": s.taubin_lambda,
                     "taubin_mu": s.taubin_mu, "max_faces_layer": s.max_faces_layer,
                     "max_faces_total": s.max_faces_total},
        "frame": {"glb": "metres, +Y superior, +Z anterior, +X patient left",
                  "stl": "world LPS mm"},
        "notes": ms.notes + ([dicom_note] if dicom_note else []),
    }
    update_plan(case, models=section)
    if progress is not None:
        progress("writing models", steps, steps)
    return section


def models_case(case: Case, *, settings: SurfaceSettings = SurfaceSettings(),
                scale: float = 1.0, min_wall_mm: float = 2.0, dicom: Path | None = None,
                doll_max_faces: int = 250_000, progress: ProgressFn | None = None
                ) -> tuple[ModelSet, dict]:
    """Build and write the models of a case folder (see the module docstring).

    Reads ``labels/tissues.nii.gz``, ``labels/twins.nii.gz`` and, if present,
    ``models/cut_surface.ply``. Returns the :class:`ModelSet` and the plan section.
    """
    case.require(case.tissues, hint="run `twinsep segment` first")
    case.require(case.twins, hint="run `twinsep identify` first")
    if dicom is not None and not Path(dicom).is_dir():
        raise InputError(f"--dicom {dicom}: not a folder")
    tissues = Volume.read(case.tissues)
    owner = Volume.read(case.twins)
    if tissues.shape != owner.shape:
        raise InputError(f"tissue map {tissues.shape} and owner map {owner.shape} differ")
    ms = build_models(tissues, owner.with_array(np.asarray(owner.array, np.uint8)),
                      cut_surface=case.models / "cut_surface.ply", settings=settings,
                      scale=scale, min_wall_mm=min_wall_mm, doll_max_faces=doll_max_faces,
                      progress=progress)
    ms.layers += reconstruction_layers(case.models, load_plan(case).get("reconstruction"),
                                       notes=ms.notes)
    return ms, write_models(case, ms, dicom=dicom, progress=progress)
