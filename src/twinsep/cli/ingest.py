"""``twinsep ingest SCAN --out CASE``: read a scan into a new case folder."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, run_command


@app.command()
def ingest(
    scan: Path = typer.Argument(
        ..., help="DICOM folder or file, NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr) or MHA/MHD."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Case folder to create."),
    series: str | None = typer.Option(
        None, "--series", help="The series to take when the folder holds several: its "
        "pseudonym or series number as listed, or its SeriesInstanceUID."
    ),
    keep_phi: bool = typer.Option(
        False, "--keep-phi", help="Keep patient name, ID, birth date... in case.json."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a case folder twinsep made (its own files only)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Read a scan (any orientation, kept exactly) and write CASE/scan.nii.gz + case.json."""
    result = run_command("ingest", out, {"scan": scan, "series_uid": series,
                                         "keep_phi": keep_phi or None,
                                         "overwrite": overwrite or None}, set_).data
    if len(result.series) > 1:
        console.print(f"{len(result.series)} series in the scan folder:")
        for line in result.series:
            console.print(f"  {line}", soft_wrap=True)
    for note in result.notes:
        console.print(note, soft_wrap=True)
    g = result.info["geometry"]
    size = "x".join(str(n) for n in g["size_ijk"])
    spacing = "x".join(f"{s:g}" for s in g["spacing_mm"])
    console.print(
        f"wrote {result.case.scan.name} ({size} voxels, {spacing} mm, "
        f"{result.info['pixel_type']}) and case.json into the case folder", soft_wrap=True,
    )
