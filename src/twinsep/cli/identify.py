"""``twinsep identify CASE``: which twin owns each voxel (labels/twins.nii.gz), then the
shared anatomy, the classification and the junction figure (plan.json)."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, in_case, parse_point, run_command


@app.command("identify")
def identify(
    case: Path = typer.Argument(..., help="Case folder (after `twinsep segment`)."),
    seed_a: str | None = typer.Option(
        None, "--seed-a", help="A point X,Y,Z (world mm) in twin A's brain; sets which twin is A."
    ),
    seed_b: str | None = typer.Option(
        None, "--seed-b", help="A point X,Y,Z (world mm) in twin B's brain."
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        help="Brain split method: mincut (default), watershed, geodesic, random_walker, nearest.",
    ),
    landmarks: Path | None = typer.Option(
        None,
        "--landmarks",
        help='JSON file {"A": {"nasion": [x, y, z]}, "B": {...}} (world mm) for the '
        "classification.",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Give every voxel an owner, twin A (purple) or twin B (orange); measure the junction."""
    from twinsep.casefolder import Case

    # (a bad landmarks file is refused by the stage before any work)
    result = run_command("identify", case, {
        "seed_a_mm": parse_point(seed_a, "--seed-a"), "seed_b_mm": parse_point(seed_b, "--seed-b"),
        "method": method, "landmarks": landmarks}, set_).data
    if not result.conjoined:
        console.print(
            f"not conjoined: two separate heads {result.closest_distance_mm:.1f} mm apart at "
            f"the closest -> {Case(case).plan.name}"
        )
        return
    ml = result.owner.voxel_volume_ml
    n_a = int((result.owner.array == 1).sum())
    n_b = int((result.owner.array == 2).sum())
    console.print(
        f"identify ({result.method}): twin A (purple) {n_a * ml:.0f} ml, twin B (orange) "
        f"{n_b * ml:.0f} ml -> {in_case(Case(case).twins, case)}"
    )
