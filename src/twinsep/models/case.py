"""The case layer of ``twinsep models``: reads the tissue and owner maps, the cut surface
and simulate's meshes; writes ``models/`` (GLB, manifest, STL, 3MF doll, Slicer
segmentation, DICOM-SEG) and plan.json ``models``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from twinsep import __version__
from twinsep.casefolder import Case, load_plan, read_json, update_plan, write_json
from twinsep.errors import InputError
from twinsep.exchange.gltf import LPS_MM_TO_GLTF, GltfPart, write_glb
from twinsep.exchange.mesh_files import write_3mf, write_stl
from twinsep.exchange.segmentation import write_dicom_seg, write_seg_nrrd
from twinsep.image import Volume
from twinsep.mesh import is_closed, signed_volume, surface_area
from twinsep.models.build import (
    DICOM_SEG_NAME,
    DOLL_NAME,
    GLB_NAME,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    SEG_NRRD_NAME,
    ModelSet,
    build_models,
)
from twinsep.models.doll import THIN_TOLERANCE
from twinsep.models.scene import Layer
from twinsep.models.separated import reconstruction_layers
from twinsep.models.surfaces import SurfaceSettings
from twinsep.progress import Progress
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class ModelsSettings(Settings):
    """Options of ``twinsep models`` (defaults: ``models`` in defaults.yaml)."""

    scale: float = Field(default("models.scale"), gt=0, description="Doll size / life size.")
    min_wall_mm: float = Field(default("models.min_wall_mm"), ge=0,
                               description="Minimum wall thickness of the printed doll (mm).")
    mc_spacing_mm: float = Field(default("models.mc_spacing_mm"), gt=0,
                                 description="Finest grid (mm) for marching cubes.")
    smooth_iterations: int = Field(default("models.smooth_iterations"), ge=0,
                                   description="Taubin smoothing iterations.")
    taubin_lambda: float = Field(default("models.taubin_lambda"), gt=0,
                                 description="Taubin shrink factor.")
    taubin_mu: float = Field(default("models.taubin_mu"), gt=0,
                             description="Taubin inflate factor (> lambda).")
    max_faces_layer: int = Field(default("models.max_faces_layer"), ge=100,
                                 description="Triangle budget of one layer.")
    max_faces_total: int = Field(default("models.max_faces_total"), ge=1000,
                                 description="Triangle budget of the whole VR model.")
    doll_max_faces: int = Field(default("models.doll_max_faces"), ge=1000,
                                description="Triangle budget of the printed doll.")
    dicom_seg: bool = Field(default("models.dicom_seg"),
                            description="Write the DICOM-SEG (needs `dicom`).")
    dicom: Path | None = Field(default("models.dicom"),
                               description="Source DICOM series folder of the DICOM-SEG.")

    def surface(self) -> SurfaceSettings:
        """The meshing settings."""
        return SurfaceSettings(mc_spacing_mm=self.mc_spacing_mm,
                               smooth_iterations=self.smooth_iterations,
                               taubin_lambda=self.taubin_lambda, taubin_mu=self.taubin_mu,
                               max_faces_layer=self.max_faces_layer,
                               max_faces_total=self.max_faces_total)


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


def models_case(case: Case, *, settings: SurfaceSettings | None = None,
                scale: float = 1.0, min_wall_mm: float = 2.0, dicom: Path | None = None,
                doll_max_faces: int = 250_000, progress: Progress | None = None
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
                      cut_surface=case.models / "cut_surface.ply",
                      settings=settings or SurfaceSettings(),
                      scale=scale, min_wall_mm=min_wall_mm, doll_max_faces=doll_max_faces,
                      progress=progress)
    ms.layers += reconstruction_layers(case.models, load_plan(case).get("reconstruction"),
                                       notes=ms.notes)
    return ms, write_models(case, ms, dicom=dicom, progress=progress)


def write_models(case: Case, ms: ModelSet, *, dicom: Path | None = None,
                 progress: Progress | None = None) -> dict:
    """Write the exports of ``ms`` into ``case.models`` and plan.json ``models``.

    Returns
    -------
    dict
        The plan.json ``models`` section.
    """
    out = case.models
    (out / "stl").mkdir(parents=True, exist_ok=True)
    steps = 5
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress is not None:
            progress("writing models", done / max(steps, 1))
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
    info = read_json(case.case_json) if case.case_json.exists() else {}
    source = info.get("source", {})
    fmt = str(source.get("format", ""))
    dicom_seg: str | None = None
    dicom_note = None
    if dicom is not None:
        write_dicom_seg(out / DICOM_SEG_NAME, ms.labelmap, segments, Path(dicom),
                        series_uid=(info.get("phi", {}).get("series_instance_uid")
                                    or source.get("series_pseudonym") or None),
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
        progress("writing models", 1.0)
    return section


def _source_is_dicom(case: Case) -> bool:
    source = read_json(case.case_json).get("source", {}) if case.case_json.exists() else {}
    return str(source.get("format", "")).lower().startswith("dicom")


def _run(case: Case, settings: ModelsSettings, progress: Progress) -> StageResult:
    # DICOM-SEG copies the source's patient and study modules (as the standard requires):
    # written only when asked for (plan: --keep-phi) and the source is a DICOM series
    dicom = None
    if settings.dicom_seg and settings.dicom is not None:
        if settings.dicom.is_dir():
            dicom = settings.dicom
        elif _source_is_dicom(case):  # a file of the series
            dicom = settings.dicom.parent
    ms, section = models_case(case, settings=settings.surface(), scale=settings.scale,
                              min_wall_mm=settings.min_wall_mm, dicom=dicom,
                              doll_max_faces=settings.doll_max_faces, progress=progress)
    notes = tuple(section.get("notes") or ())
    logger.info("%d layers, %d triangles", len(ms.layers), section["triangles_total"])
    return StageResult(sections={"models": section}, notes=notes, summary="; ".join(notes),
                       data=(ms, section))


def _record(settings: ModelsSettings) -> dict[str, Any]:
    return {"dicom_seg": settings.dicom_seg}


STAGE = Stage(
    name="models",
    title="3-D models",
    settings=ModelsSettings,
    inputs=("labels/tissues.nii.gz", "labels/twins.nii.gz", "models/cut_surface.ply"),
    outputs=("plan:models",),
    run=_run,
    hint="run `twinsep models CASE` to see the full message",
    record=_record,
    described=("dicom_seg", "dicom"),
)

__all__ = ["STAGE", "ModelsSettings", "models_case", "write_models"]
