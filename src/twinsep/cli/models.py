"""``twinsep models CASE``: VR model (GLB), STL, the 3MF doll, Slicer and DICOM-SEG."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, run_command


@app.command()
def models(
    case: Path = typer.Argument(..., help="Case folder (after `segment` and `identify`)."),
    scale: float | None = typer.Option(None, "--scale", min=0.01,
                                       help="Doll size / life size (default 1)."),
    min_wall_mm: float | None = typer.Option(
        None, "--min-wall-mm", min=0.0,
        help="Minimum wall thickness of the printed doll (mm, default 2)."
    ),
    mc_spacing_mm: float | None = typer.Option(
        None, "--mc-spacing-mm", min=0.1,
        help="Finest grid (mm, default 1) for marching cubes; finer scans are block-averaged "
        "in whole voxels (1.5 on a 1 mm scan stays 1 mm). Coarser is faster but loses thin "
        "parts: 2 mm on a 1 mm scan cuts the brain's area ~15% and a shared vessel's volume "
        "~25%.",
    ),
    smooth: int | None = typer.Option(None, "--smooth", min=0,
                                      help="Taubin smoothing iterations (default 10)."),
    max_faces: int | None = typer.Option(
        None, "--max-faces", min=1000, help="Triangle budget of the whole VR model."
    ),
    max_faces_layer: int | None = typer.Option(
        None, "--max-faces-layer", min=100, help="Triangle budget of one layer."
    ),
    dicom: Path | None = typer.Option(
        None, "--dicom", help="Source DICOM series folder: also write DICOM-SEG referencing it."
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Build surface meshes per twin and tissue and export GLB, STL, 3MF and segmentations."""
    from twinsep.errors import InputError

    if dicom is not None and not dicom.is_dir():
        raise InputError(f"--dicom {dicom}: not a folder")
    ms, section = run_command("models", case, {
        "scale": scale, "min_wall_mm": min_wall_mm, "mc_spacing_mm": mc_spacing_mm,
        "smooth_iterations": smooth, "max_faces_total": max_faces,
        "max_faces_layer": max_faces_layer, "dicom": dicom,
        "dicom_seg": True if dicom is not None else None}, set_).data
    dp = section["doll_print"]
    console.print(f"{len(ms.layers)} layers, {section['triangles_total']} triangles; "
                  f"doll at scale {dp['scale']:g}: watertight={dp['watertight']}, "
                  f"walls >= {dp['min_wall_mm']:g} mm: {dp['wall_ok']}")
    for note in section["notes"]:
        console.print(f"note: {note}")
    console.print("wrote models/model.glb, manifest.json, stl/, doll.3mf, segmentation.seg.nrrd"
                  + (", segmentation.dcm" if section["dicom_seg"] else "") + ", plan.json models")
