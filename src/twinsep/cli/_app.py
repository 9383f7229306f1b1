"""The Typer application object shared by the command modules.

Each command lives in its own module of this package, imports ``app`` from here and keeps
its heavy imports inside the command function, so that ``twinsep --help`` is instant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="twinsep",
    help="Virtual surgical planning for separating craniopagus conjoined twins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Messages for the user (stderr, so that stdout stays clean for piping); --quiet mutes it.
console = Console(stderr=True, highlight=False)

#: Errors (stderr), printed even with --quiet.
error_console = Console(stderr=True, highlight=False)


def parse_numbers(text: str, count: int, name: str, what: str) -> tuple[float, ...]:
    """Parse ``count`` comma-separated numbers, or raise one clear :class:`InputError`."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != count:
        from twinsep.errors import InputError

        raise InputError(f"{name} must be {what}, got {text!r}")
    return tuple(parts)


def parse_point(text: str | None, name: str) -> tuple[float, float, float] | None:
    """Parse ``"X,Y,Z"`` (world mm) or return None."""
    if text is None:
        return None
    x, y, z = parse_numbers(text, 3, name, "three numbers X,Y,Z in world mm")
    return (x, y, z)


def _bar():
    """A Rich progress bar (on stderr)."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextlib.contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, float], None]]:
    """The one adapter of the library's progress type, ``progress(message, fraction)``, to
    a Rich progress bar on a terminal (silent when stderr is piped or with --quiet)."""
    if not console.is_terminal or console.quiet:
        yield lambda message, fraction: None
        return
    with _bar() as bar:
        task = bar.add_task(title, total=1.0)

        def report(message: str, fraction: float) -> None:
            bar.update(task, description=f"{title}: {message}",
                       completed=min(max(float(fraction), 0.0), 1.0))

        yield report


def run_command(name: str, case: Path, options: dict | None = None,
                assignments: list[str] | None = None):
    """Run the stage ``name`` on ``case`` with its command's options and ``--set`` items,
    behind a progress bar; returns its :class:`~twinsep.stage.StageResult`."""
    from twinsep.casefolder import Case
    from twinsep.pipeline import COMMANDS, run_stage, stage_settings

    st = COMMANDS[name]
    settings = stage_settings(st, options, assignments=assignments or [])
    with progress_bar(name) as report:
        result = run_stage(st, Case(case), settings, report)
    return result


#: ``--set KEY=VALUE`` of a stage command (any setting of the stage).
SET_HELP = ("Set any setting of this stage, KEY=VALUE (repeatable; the keys of its section "
            "in twinsep/data/defaults.yaml, e.g. ct.vessel_hu=140).")


def _version(value: bool) -> None:
    if value:
        from twinsep import __version__

        typer.echo(f"twinsep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print the log (settings, notes, timings)."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only errors (no progress, no summaries)."),
) -> None:
    """Virtual surgical planning for separating craniopagus conjoined twins."""
    import logging

    console.quiet = quiet
    root = logging.getLogger("twinsep")
    for h in [h for h in root.handlers if getattr(h, "_twinsep_cli", False)]:
        root.removeHandler(h)
    if verbose and not quiet:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, show_time=False)
        handler.setLevel(logging.INFO)
        handler._twinsep_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def in_case(path: Path | str, case: Path | str) -> str:
    """``path`` named relative to the case folder: printouts never show the folder, whose
    name is often the patient's (``labels/twins.nii.gz``, not ``/data/Doe_Jane/labels/...``)."""
    path, case = Path(path).absolute(), Path(case).absolute()
    try:
        return path.relative_to(case).as_posix() or "."
    except ValueError:
        return path.name

