"""``twinsep compare``: what changed between two scans of the same twins."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, run_command


@app.command("compare")
def compare_command(
    earlier: Path = typer.Argument(..., help="Case folder of the earlier scan."),
    later: Path = typer.Argument(..., help="Case folder of the later scan (gets plan.json "
                                 "`growth`)."),
    out: Path = typer.Option(..., "--out", help="Output folder for comparison.json, "
                             "growth.png and growth.md."),
    months: float | None = typer.Option(
        None, "--months", help="Months between the scans (overrides the study dates)."),
    force: bool = typer.Option(
        False, "--force", help="Compare even when the cases do not look like the same twins "
        "(the failed checks go to `warnings`)."),
    no_plan: bool = typer.Option(
        False, "--no-plan", help="Do not write the `growth` section into the later case."),
) -> None:
    """Register the later scan to the earlier one (rigid, then affine, mutual information),
    match the twins by position and tabulate the growth of the shared anatomy."""
    cmp = run_command("compare", later, {"earlier": earlier, "out": out, "months": months,
                                         "force": force or None,
                                         "write_plan": False if no_plan else None}).data
    g = cmp.growth
    err = g["registration"]["brain_centroid_error_mm"]
    for w in g["warnings"]:
        console.print(f"[bold yellow]warning:[/] {w}")
    for note in g["notes"]:
        console.print(f"note: {note}")

    def row(key: str, label: str) -> None:
        e = g.get(key)
        if e and e["change"] is not None:
            per = ("" if e["change_per_month"] is None
                   else f" ({e['change_per_month']:+.2f}/month)")
            console.print(f"  {label}: {e['earlier']:.2f} -> {e['later']:.2f}, "
                          f"{e['change']:+.2f}{per}")

    console.print(f"compared {earlier} -> {later}"
                  + (f" over {g['months']:.1f} months" if g["months"] else "")
                  + f"; twins swapped: {'yes' if g['twins_swapped'] else 'no'}; "
                  f"brain centroid error A {err['A']:.1f} mm, B {err['B']:.1f} mm")
    row("junction_area_cm2", "junction area (cm2)")
    row("shared_vessel_volume_ml", "shared vessel volume (ml)")
    row("shared_vessel_max_diameter_mm", "largest shared vessel diameter (mm)")
    row("brain_contact_area_cm2", "brain contact area (cm2)")
    row("cut_area_cm2", "cut area (cm2)")
    row("cut_risk", "cut risk")
    console.print(f"written to {out}")
