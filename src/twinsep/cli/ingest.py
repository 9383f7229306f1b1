"""``twinsep ingest SCAN --out CASE``: read a scan into a new case folder."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console


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
    import contextlib

    from twinsep.cli._app import progress
    from twinsep.ingest.read import ingest as run_ingest

    # a progress bar on a terminal only: piped stderr gets just the messages
    with progress() if console.is_terminal else contextlib.nullcontext() as bar:
        tasks: dict[str, int] = {}

        def report(description: str, done: int, total: int) -> None:
            if bar is None:
                return
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=max(total, 1))
            bar.update(tasks[description], completed=done, total=max(total, 1))

        result = run_ingest(
            scan, out, series_uid=series, keep_phi=keep_phi, overwrite=overwrite,
            progress=report,
        )
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
