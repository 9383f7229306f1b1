"""``twinsep ingest SCAN --out CASE``: read a scan into a new case folder."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, run_command


@app.command()
def ingest(
    scan: Path = typer.Argument(
        ..., help="DICOM folder or file, NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr) or MHA/MHD."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Case folder to create."),
    series: str | None = typer.Option(
        None, "--series", help="SeriesInstanceUID to take when the folder holds several."
    ),
    keep_phi: bool = typer.Option(
        False, "--keep-phi", help="Keep patient name, ID, birth date... in case.json."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Read a scan (any orientation, kept exactly) and write CASE/scan.nii.gz + case.json."""
    result = run_command("ingest", out, {"scan": scan, "series_uid": series,
                                         "keep_phi": keep_phi or None,
                                         "overwrite": overwrite or None}).data
    if len(result.series) > 1:
        console.print(f"{len(result.series)} series in {scan}:")
        for line in result.series:
            console.print(f"  {line}", soft_wrap=True)
    for note in result.notes:
        console.print(note, soft_wrap=True)
    g = result.info["geometry"]
    size = "x".join(str(n) for n in g["size_ijk"])
    spacing = "x".join(f"{s:g}" for s in g["spacing_mm"])
    console.print(
        f"wrote {result.case.scan} ({size} voxels, {spacing} mm, "
        f"{result.info['pixel_type']}) and case.json", soft_wrap=True,
    )
