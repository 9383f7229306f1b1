"""``twinsep identify CASE``: which twin owns each voxel (labels/twins.nii.gz), then the
shared anatomy, the classification and the junction figure (plan.json)."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import app, console, parse_point, progress


def _read_landmarks(path: Path | None) -> dict | None:
    """``{"A": {"nasion": [x, y, z]}, "B": {...}}`` (world mm) from a JSON file."""
    if path is None:
        return None
    import json

    from twinsep.errors import InputError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON landmarks file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"A", "B"}:
        raise InputError(f'{path}: expected {{"A": {{"nasion": [x, y, z]}}, "B": {{...}}}}')
    for twin, marks in data.items():
        if not isinstance(marks, dict):
            raise InputError(f"{path}: landmarks of twin {twin} must be an object")
        for name, p in marks.items():
            ok = isinstance(p, list) and len(p) == 3 and all(isinstance(v, int | float) for v in p)
            if not ok:
                raise InputError(f"{path}: {twin}.{name} must be three numbers [x, y, z] in mm")
    return data


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
) -> None:
    """Give every voxel an owner, twin A (purple) or twin B (orange); measure the junction."""
    from twinsep.casefolder import Case
    from twinsep.identify.identity import identify_case

    a = parse_point(seed_a, "--seed-a")
    b = parse_point(seed_b, "--seed-b")
    marks = _read_landmarks(landmarks)
    with progress() as bar:
        task = bar.add_task("identify", total=None)

        def report(text: str) -> None:
            bar.update(task, description=text)

        result = identify_case(
            Case(case), seed_a=a, seed_b=b, landmarks=marks, method=method, progress=report
        )
    if not result.conjoined:
        console.print(
            f"not conjoined: the heads are {result.closest_distance_mm:.1f} mm apart at the "
            f"closest -> {Case(case).plan}"
        )
        return
    ml = result.owner.voxel_volume_ml
    n_a = int((result.owner.array == 1).sum())
    n_b = int((result.owner.array == 2).sum())
    console.print(
        f"identify ({result.method}): twin A (purple) {n_a * ml:.0f} ml, twin B (orange) "
        f"{n_b * ml:.0f} ml -> {Case(case).twins}"
    )
