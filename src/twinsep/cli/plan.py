"""``twinsep plan SCAN --out CASE``: every stage, from the scan to the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from twinsep.cli._app import app, console, parse_numbers, parse_point

if TYPE_CHECKING:
    from twinsep.pipeline import PlanResult, PlanSettings


def run_plan_cli(
    settings: PlanSettings,
    out: Path,
    *,
    force: bool = False,
    from_stage: str | None = None,
) -> PlanResult:
    """Run :func:`twinsep.pipeline.run_plan` behind one progress bar.

    Prints one line per stage; on failure prints what to fix and exits with the stage's
    exit code (2 input, 1 otherwise).
    """
    from rich.text import Text

    from twinsep.casefolder import is_case_folder
    from twinsep.cli._app import error_console, progress_bar
    from twinsep.pipeline import BY_NAME, StageError, StageOutcome, run_plan

    def done(o: StageOutcome) -> None:
        mark = {"ran": "[green]done[/green]", "skipped": "[cyan]unchanged[/cyan]",
                "failed": "[red]FAILED[/red]"}.get(o.status, f"[yellow]{o.status}[/yellow]")
        secs = f" {o.seconds:.1f} s" if o.status in ("ran", "failed") else ""
        note = f" — {o.note}" if o.note and o.status != "failed" else ""
        st = BY_NAME[o.stage]
        console.print(f"{st.name:<9} {mark}{secs}  [dim]{st.title}[/dim]{note}",
                      soft_wrap=True)

    try:
        with progress_bar("plan") as report:
            result = run_plan(settings, out, force=force, from_stage=from_stage,
                              progress=report, on_stage=done)
    except StageError as exc:
        error_console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
        if is_case_folder(Path(out)) and Path(out, "scan.nii.gz").exists():
            console.print("the results of the earlier stages are intact in the case folder; "
                          "fix the input and run the same command again (finished stages "
                          "are skipped)", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    return result


def print_locations(result: PlanResult, *, full: bool = False) -> None:
    """Say where the report and the viewer are: in the case folder, named relative to it
    (its name is often the patient's), or by their whole path with ``full`` (the demo)."""
    if result.conjoined is False:
        console.print("[bold]not conjoined[/bold]: the heads do not touch, so there is nothing "
                      "to separate; the plan stopped after identify.")
    root = result.case.root
    if not full:
        console.print("in the case folder (--out):")
    for label, path in (("report (HTML)", result.report_html), ("report (PDF)", result.report_pdf),
                        ("3-D viewer", result.viewer_html),
                        ("timings", root / "timings.json"),
                        ("log", root / ".twinsep" / "twinsep.log")):
        state = "" if path.exists() else "  [dim](not written)[/dim]"
        shown = path if full else path.relative_to(root)
        console.print(f"{label:<14} {shown}{state}", soft_wrap=True)


@app.command("plan")
def plan(
    scan: Path = typer.Argument(
        ..., help="DICOM folder or file, NIfTI, NRRD or MHA/MHD of the joined heads."),
    out: Path = typer.Option(..., "--out", "-o", help="Case folder (created or updated)."),
    tissues: Path | None = typer.Option(
        None, "--tissues", help="Import this tissue label map instead of segmenting the CT."),
    seed_a: str | None = typer.Option(
        None, "--seed-a", help="Brain seed of twin A, X,Y,Z in world mm."),
    seed_b: str | None = typer.Option(
        None, "--seed-b", help="Brain seed of twin B, X,Y,Z in world mm."),
    roster: Path | None = typer.Option(
        None, "--roster", "-r", help="Roster YAML for the operating-room schedule "
        "(see examples/roster.yaml); without it the schedule is not made."),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="Expander catalogue YAML (default examples/expanders.yaml)."),
    series: str | None = typer.Option(
        None, "--series", help="The series to take when the folder holds several: its "
        "pseudonym or series number as listed, or its SeriesInstanceUID."),
    keep_phi: bool = typer.Option(
        False, "--keep-phi", help="Keep patient name, ID... in case.json and the report "
        "(and write the DICOM-SEG of a DICOM scan)."),
    risk: Path | None = typer.Option(
        None, "--risk", help="Separation risk model YAML (default: the packaged risk.yaml)."),
    choose: str | None = typer.Option(
        None, "--choose", help="Separation alternative to adopt: min-risk (default), "
        "sinus-to-a, sinus-to-b, plane (with --plane)."),
    plane: str | None = typer.Option(
        None, "--plane", help="User plane X,Y,Z,NX,NY,NZ (world mm) for --choose plane."),
    stages: int | None = typer.Option(
        None, "--stages", min=1, help="Operations dividing the crossing vessels "
        "(default: automatic)."),
    reconstruction: Path | None = typer.Option(
        None, "--reconstruction", help="Reconstruction settings YAML: the keys it changes "
        "(implant thickness, separation distance, expander fills...)."),
    settings_file: list[Path] = typer.Option(
        [], "--settings", help="YAML/JSON file of stage settings, {stage: {key: value}} "
        "(the shape of twinsep/data/defaults.yaml; only the keys to change; repeatable)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Set any stage setting, STAGE.KEY=VALUE (repeatable), e.g. "
        "separate.corridor_mm=12 or segment.ct.vessel_hu=140; wins over the options."),
    force: bool = typer.Option(False, "--force", help="Redo every stage."),
    from_stage: str | None = typer.Option(
        None, "--from", help="Redo this stage and every later one: ingest, segment, "
        "identify, separate, simulate, models, view, schedule, report."),
) -> None:
    """Plan the separation: ingest, segment, identify, separate, simulate, models, view,
    schedule and report. Unchanged stages (same inputs and settings) are skipped; stage
    timings go to CASE/timings.json, the log to CASE/.twinsep/twinsep.log."""
    from twinsep.pipeline import plan_settings, stage

    if from_stage is not None:
        stage(from_stage)  # an unknown stage is refused before anything runs
    pl = None if plane is None else parse_numbers(
        plane, 6, "--plane", "six numbers X,Y,Z,NX,NY,NZ (world mm)")
    settings = plan_settings(
        scan, files=settings_file, assignments=set_, tissues=tissues,
        seed_a=parse_point(seed_a, "--seed-a"), seed_b=parse_point(seed_b, "--seed-b"),
        roster=roster, catalog=catalog, keep_phi=keep_phi, series=series, risk=risk,
        choose=choose, plane=pl, stages=stages, reconstruction=reconstruction,
    )
    result = run_plan_cli(settings, out, force=force, from_stage=from_stage)
    print_locations(result)
