"""``twinsep phantom``: write a synthetic craniopagus CT with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console


@app.command("phantom")
def phantom_command(
    out: Path = typer.Option(..., "--out", help="Output folder (created; must be empty)."),
    fusion: str = typer.Option("total", "--fusion", help="total or partial."),
    axial_rotation: float = typer.Option(
        0.0, "--axial-rotation", help="Rotation of twin B about the contact normal (degrees): "
        "0 type I, 180 type II, between type III."),
    long_axis_angle: float = typer.Option(
        180.0, "--long-axis-angle", help="Angle between the long axes (degrees); < 140 angular."),
    fusion_depth: float | None = typer.Option(
        None, "--fusion-depth", help="Interpenetration of the heads (mm); default 26 total, "
        "6 partial."),
    shared_sinus: bool | None = typer.Option(
        None, "--shared-sinus/--no-shared-sinus",
        help="Circular sinus joined to both sagittal sinuses (default: on for total)."),
    spacing: str = typer.Option("1,1,1", "--spacing", help="Voxel size X,Y,Z (mm) or one value."),
    oblique: float = typer.Option(
        0.0, "--oblique", help="Rotate the image grid by this angle (degrees) about (1,2,3)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    separate: bool = typer.Option(False, "--separate", help="Two heads with a ~10 mm gap."),
    scale_a: float = typer.Option(0.73, "--scale-a", help="Template scale of twin A."),
    scale_b: float = typer.Option(0.71, "--scale-b", help="Template scale of twin B."),
    undulation: float = typer.Option(2.0, "--undulation", help="Interface waviness (mm)."),
    junction_offset: float = typer.Option(
        0.0, "--junction-offset", help="Shift of twin B off the vertex axis (mm)."),
    noise: float = typer.Option(10.0, "--noise", help="Noise standard deviation (HU)."),
    age_months: float | None = typer.Option(
        None, "--age-months", help="Growth option: the same twins (same --seed) at this age "
        "(months): larger heads, wider junction, larger circular sinus, placed differently in "
        "the scanner. Default: the phantom as it is (6 months)."),
    placement: str | None = typer.Option(
        None, "--placement", help="Rigid placement RX,RY,RZ,TX,TY,TZ (degrees about world "
        "x, y, z; mm). Default: none, or a ~9 degree / 9 mm move with --age-months."),
    dicom: bool = typer.Option(False, "--dicom", help="Also write the CT as a DICOM series."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Generate an infant craniopagus phantom: ct.nii.gz, tissues.nii.gz, owner.nii.gz,
    truth.json (and dicom/)."""
    from pydantic import ValidationError

    from twinsep.errors import InputError
    from twinsep.phantom import PhantomSpec, make_phantom, write_phantom

    try:
        parts = [float(v) for v in spacing.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3:
        raise InputError(f"--spacing must be X,Y,Z in mm (or one value), got {spacing!r}")
    place = None
    if placement is not None:
        try:
            place = tuple(float(v) for v in placement.split(","))
        except ValueError:
            place = ()
        if len(place) != 6:
            raise InputError(f"--placement must be RX,RY,RZ,TX,TY,TZ, got {placement!r}")
    growth = {} if age_months is None else {"age_months": age_months}
    if place is not None:
        growth["placement"] = place
    try:
        spec = PhantomSpec(
            fusion=fusion, axial_rotation=axial_rotation, long_axis_angle=long_axis_angle,
            fusion_depth=fusion_depth, shared_sinus=shared_sinus, spacing=tuple(parts),
            oblique=oblique, seed=seed, separate=separate, scale_a=scale_a, scale_b=scale_b,
            undulation=undulation, junction_offset=junction_offset, noise=noise, **growth,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "options"
        raise InputError(f"bad phantom option {loc}: {err['msg']}") from None
    from twinsep.cli._app import progress_bar

    with progress_bar("phantom") as report:
        ph = make_phantom(spec, progress=report)
    write_phantom(ph, out, dicom=dicom, overwrite=overwrite)
    c = ph.truth["classification"]
    console.print(
        f"phantom written to {out}: {ph.ct.size_ijk} voxels, "
        f"{c['fusion']} {c['orientation']} type {c['type']}"
    )
