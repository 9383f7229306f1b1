"""``twinsep segment CASE``: tissue label map from the CT, or imported from elsewhere."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, progress


@app.command("segment")
def segment(
    case: Path = typer.Argument(..., help="Case folder (made by `twinsep ingest`)."),
    tissues: Path | None = typer.Option(
        None,
        "--tissues",
        help="Import this label map (NIfTI/NRRD/MHA, e.g. from 3D Slicer or TotalSegmentator) "
        "instead of segmenting the CT.",
    ),
    label_map: Path | None = typer.Option(
        None,
        "--label-map",
        help='JSON object from the imported file\'s codes to twinsep codes, e.g. {"3": 4, "7": 5} '
        "(0 background, 1 scalp, 2 bone, 3 CSF/dura, 4 brain, 5 vessel).",
    ),
    no_resample: bool = typer.Option(
        False,
        "--no-resample",
        help="Refuse an imported map on another grid instead of resampling it (nearest "
        "neighbour).",
    ),
    settings: Path | None = typer.Option(
        None,
        "--settings",
        help="JSON object of segmentation settings to override (thresholds in HU, sizes in mm).",
    ),
) -> None:
    """Label scalp, bone, CSF/dura, brain and vessels (labels/tissues.nii.gz)."""
    from twinsep.casefolder import Case
    from twinsep.labels import TISSUE_NAMES
    from twinsep.segment.core import segment_case, settings_from_json

    s = settings_from_json(settings) if settings is not None else None
    with progress() as bar:
        task = bar.add_task("segment", total=1.0)

        def report(text: str, frac: float) -> None:
            bar.update(task, description=text, completed=frac)

        result = segment_case(
            Case(case),
            tissues_file=tissues,
            label_map_file=label_map,
            resample=not no_resample,
            settings=s,
            progress=report,
        )
    stats = result.section["tissues"]
    parts = ", ".join(
        f"{name} {stats[name]['volume_ml']:.1f} ml" for name in TISSUE_NAMES.values()
    )
    console.print(f"segment ({result.source}): {parts} -> {result.path}")
