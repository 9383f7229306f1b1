"""``twinsep simulate CASE``: each child after the cut; defects, expanders, cranial implant."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, run_command


@app.command("simulate")
def simulate(
    case: Path = typer.Argument(..., help="Case folder (after `twinsep separate`)."),
    catalog: Path | None = typer.Option(
        None, "--catalog",
        help="Expander catalogue (YAML list `expanders` with id, shape, length_cm, width_cm, "
        "volume_ml); default examples/expanders.yaml.",
    ),
    settings: Path | None = typer.Option(
        None, "--settings",
        help="YAML file of reconstruction settings to override (the keys of "
        "simulate.reconstruction in twinsep/data/defaults.yaml).",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Move the twins apart; defect areas, scalp expander plan and cranial implant (plan.json
    `reconstruction`, meshes in models/)."""
    sec = run_command("simulate", case, {"catalog": catalog, "reconstruction_file": settings},
                      set_).data
    for name, t in sec["twins"].items():
        sc = sec["scalp"]["twins"][name]
        im = sec["cranium"]["twins"][name]
        console.print(
            f"twin {name}: scalp defect {t['scalp_defect_cm2']:.1f} cm2, bone "
            f"{t['bone_defect_cm2']:.1f} cm2 to rebuild ({t['bone_opening_cm2']:.1f} cm2 "
            f"opening), dura {t['dura_defect_cm2']:.1f} cm2; "
            f"{sc['n_expanders']} expander(s), expected gain {sc['expected_gain_cm2']:.1f} of "
            f"{sc['skin_missing_cm2']:.1f} cm2 in {sc['weeks']} weeks; implant "
            f"{im['implant']['area_cm2']:.1f} cm2, {im['implant']['volume_ml']:.1f} ml, "
            f"{'closed' if im['closure']['closed'] else 'NOT closed'}"
        )
    for w in sec["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
