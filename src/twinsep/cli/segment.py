"""``twinsep segment CASE``: tissue label map from the CT, or imported from elsewhere."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, in_case, run_command


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
        help="JSON object of CT segmentation settings to override (thresholds in HU, sizes in "
        "mm; the keys of segment.ct in twinsep/data/defaults.yaml).",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Label scalp, bone, CSF/dura, brain and vessels (labels/tissues.nii.gz)."""
    from twinsep.labels import TISSUE_NAMES
    from twinsep.segment import settings_from_json

    ct = settings_from_json(settings) if settings is not None else None
    result = run_command("segment", case, {
        "tissues": tissues, "label_map": label_map, "resample": False if no_resample else None,
        "ct": ct}, set_).data
    stats = result.section["tissues"]
    parts = ", ".join(
        f"{name} {stats[name]['volume_ml']:.1f} ml" for name in TISSUE_NAMES.values()
    )
    console.print(f"segment ({result.source}): {parts} -> {in_case(result.path, case)}")
