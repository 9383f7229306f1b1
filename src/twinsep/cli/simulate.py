"""``twinsep simulate CASE``: each child after the cut; defects, expanders, cranial implant."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, progress

_DEFAULT_CATALOG = Path("examples/expanders.yaml")


@app.command("simulate")
def simulate(
    case: Path = typer.Argument(..., help="Case folder (after `twinsep separate`)."),
    catalog: Path = typer.Option(
        _DEFAULT_CATALOG, "--catalog",
        help="Expander catalogue (YAML list `expanders` with id, shape, length_cm, width_cm, "
        "volume_ml).",
    ),
    settings: Path | None = typer.Option(
        None, "--settings",
        help="YAML file of reconstruction settings to override (see "
        "twinsep/data/reconstruction.yaml).",
    ),
) -> None:
    """Move the twins apart; defect areas, scalp expander plan and cranial implant (plan.json
    `reconstruction`, meshes in models/)."""
    from twinsep.casefolder import Case
    from twinsep.errors import InputError
    from twinsep.simulate.core import simulate_case

    if not catalog.exists() and catalog == _DEFAULT_CATALOG:
        repo_copy = Path(__file__).resolve().parents[3] / "examples" / "expanders.yaml"
        catalog = repo_copy if repo_copy.exists() else catalog
    if not catalog.exists():
        raise InputError(f"{catalog}: expander catalogue not found (use --catalog FILE)")
    with progress() as bar:
        task = bar.add_task("simulate", total=1.0)

        def report(text: str, frac: float) -> None:
            bar.update(task, description=text, completed=frac)

        sec = simulate_case(Case(case), catalog=catalog, settings=settings, progress=report)
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
