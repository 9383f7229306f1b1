"""``twinsep report CASE``: the report as one HTML file and a PDF."""

from __future__ import annotations

from pathlib import Path

import typer

from twinsep.cli._app import SET_HELP, app, console, in_case, run_command


@app.command("report")
def report(
    case: Path = typer.Argument(..., help="Case folder (after the stages, or `twinsep plan`)."),
    keep_phi: bool = typer.Option(
        False, "--keep-phi", help="Show the patient name and ID kept by `ingest --keep-phi`."),
    no_pdf: bool = typer.Option(False, "--no-pdf", help="Write report.html only."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Write CASE/report.html (self-contained, figures embedded) and CASE/report.pdf."""
    res = run_command("report", case, {"keep_phi": keep_phi or None,
                                       "pdf": False if no_pdf else None}, set_).data
    console.print(f"report: {in_case(res.html, case)}", soft_wrap=True)
    if res.pdf is not None:
        console.print(f"report: {in_case(res.pdf, case)}", soft_wrap=True)
    elif res.note:
        console.print(f"[yellow]warning:[/yellow] {res.note}")
