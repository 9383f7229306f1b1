"""``twinsep schedule CASE --roster roster.yaml``: who does what, hour by hour."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, run_command


@app.command("schedule")
def schedule(
    case: Path = typer.Argument(..., help="Case folder (plan.json may be missing or partial)."),
    roster: Path = typer.Option(..., "--roster", "-r", help="Roster YAML file."),
    stage: int | None = typer.Option(
        None, "--stage", help="Operation of a staged separation to schedule (default: final)."
    ),
    time_limit: float | None = typer.Option(
        None, "--time-limit", min=0.05,
        help="Deterministic time limit of the CP-SAT search (about seconds of one core); "
        "default 0.5 to improve the greedy first schedule, 2.0 from scratch.",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Assign the team to phases and, after separation, to the purple or orange table."""
    section = run_command("schedule", case, {"roster": roster, "stage": stage,
                                             "time_limit_s": time_limit}, set_).data
    op = section["operation"]
    console.print(
        f"schedule: stage {op['stage']}, {op['total_h']:.1f} h, "
        f"{len(section['assignments'])} assignments ({section['solver']['status'].lower()}); "
        "written to schedule/ and plan.json"
    )
    for note in section["notes"]:
        console.print(f"  note: {note}")
