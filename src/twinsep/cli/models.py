"""``twinsep models CASE``: VR model (GLB), STL, the 3MF doll, Slicer and DICOM-SEG."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, progress_reporter


@app.command()
def models(
    case: Path = typer.Argument(..., help="Case folder (after `segment` and `identify`)."),
    scale: float = typer.Option(1.0, "--scale", min=0.01, help="Doll size / life size."),
    min_wall_mm: float = typer.Option(
        2.0, "--min-wall-mm", min=0.0, help="Minimum wall thickness of the printed doll (mm)."
    ),
    mc_spacing_mm: float = typer.Option(
        1.0, "--mc-spacing-mm", min=0.1,
        help="Finest grid (mm) for marching cubes; finer scans are block-averaged in whole "
        "voxels (1.5 on a 1 mm scan stays 1 mm). Coarser is faster but loses thin parts: "
        "2 mm on a 1 mm scan cuts the brain's area ~15% and a shared vessel's volume ~25%.",
    ),
    smooth: int = typer.Option(10, "--smooth", min=0, help="Taubin smoothing iterations."),
    max_faces: int = typer.Option(
        1_200_000, "--max-faces", min=1000, help="Triangle budget of the whole VR model."
    ),
    max_faces_layer: int = typer.Option(
        150_000, "--max-faces-layer", min=100, help="Triangle budget of one layer."
    ),
    dicom: Path | None = typer.Option(
        None, "--dicom", help="Source DICOM series folder: also write DICOM-SEG referencing it."
    ),
) -> None:
    """Build surface meshes per twin and tissue and export GLB, STL, 3MF and segmentations."""
    from twinsep.casefolder import Case
    from twinsep.models import SurfaceSettings, models_case

    settings = SurfaceSettings(mc_spacing_mm=mc_spacing_mm, smooth_iterations=smooth,
                               max_faces_layer=max_faces_layer, max_faces_total=max_faces)
    with progress_reporter() as report:
        ms, section = models_case(Case(case), settings=settings, scale=scale,
                                  min_wall_mm=min_wall_mm, dicom=dicom, progress=report)
    dp = section["doll_print"]
    console.print(f"{len(ms.layers)} layers, {section['triangles_total']} triangles; "
                  f"doll at scale {scale:g}: watertight={dp['watertight']}, "
                  f"walls >= {min_wall_mm:g} mm: {dp['wall_ok']}")
    for note in section["notes"]:
        console.print(f"note: {note}")
    console.print("wrote models/model.glb, manifest.json, stl/, doll.3mf, segmentation.seg.nrrd"
                  + (", segmentation.dcm" if section["dicom_seg"] else "") + ", plan.json models")
