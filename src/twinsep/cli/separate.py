"""``twinsep separate CASE``: the minimum-risk separation surface and its alternatives."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, run_command


def _parse_plane(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    from twinsep.cli._app import parse_numbers

    return parse_numbers(text, 6, "--plane", "six numbers X,Y,Z,NX,NY,NZ (world mm)")


@app.command()
def separate(
    case: Path = typer.Argument(..., help="Case folder (after `segment` and `identify`)."),
    risk: Path | None = typer.Option(
        None, "--risk", help="Risk model YAML (default: the packaged risk.yaml)."
    ),
    choose: str | None = typer.Option(
        None, "--choose",
        help="Alternative to adopt: min-risk (a), sinus-to-a (b), sinus-to-b (c), plane (d).",
    ),
    plane: str | None = typer.Option(
        None, "--plane", help="User plane X,Y,Z,NX,NY,NZ: a point and a normal in world mm."
    ),
    stages: int | None = typer.Option(
        None, "--stages", min=1, help="Number of operations dividing the crossing vessels."
    ),
    max_share: float | None = typer.Option(
        None, "--max-share", min=0.01, max=1.0,
        help="Automatic staging: largest share of the crossing venous cross-section per stage.",
    ),
    coarse_mm: float | None = typer.Option(
        None, "--coarse-mm", min=0.1, help="Coarsest level (mm)."),
    corridor_mm: float | None = typer.Option(
        None, "--corridor-mm", min=0.5,
        help="How far (mm) the cut may leave the identity interface.",
    ),
    sinus_mm: float | None = typer.Option(
        None, "--sinus-mm", min=0.5,
        help="Reach (mm) of the shared sinus around the interface, for alternatives b and c.",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Cut the joined heads along the minimum-risk surface and compare alternatives."""
    from rich.table import Table

    sep = run_command("separate", case, {
        "risk": risk, "choose": choose, "plane_mm": _parse_plane(plane), "stages": stages,
        "max_share": max_share, "coarse_mm": coarse_mm, "corridor_mm": corridor_mm,
        "sinus_mm": sinus_mm}, set_).data
    s = sep.summary
    table = Table(title="separation alternatives", show_lines=False)
    for col in ("", "alternative", "risk", "area cm2", "brain cm2", "vessels cut", "mm2 cut"):
        table.add_column(col)
    for row in s["alternatives"]:
        mark = "*" if row["key"] == s["chosen"] else ""
        if not row["available"]:
            table.add_row(mark, f"{row['letter']}) {row['title']}", "-", "-", "-", "-",
                          row.get("reason", ""))
            continue
        table.add_row(
            mark, f"{row['letter']}) {row['title']}", f"{row['risk']:.0f}",
            f"{row['cut_area_total_cm2']:.1f}", f"{row['cut_area_cm2']['brain']:.1f}",
            str(row["vessels_cut"]), f"{row['vessel_cross_section_cut_mm2']:.1f}",
        )
    console.print(table)
    st = s["staging"]["stages"]
    console.print(f"{len(st)} stage(s); chosen: {s['chosen']}; wrote labels/twins.nii.gz, "
                  f"models/cut_surface.ply, plan.json separation")
