"""The Typer application object shared by the command modules.

Each command lives in its own module of this package, imports ``app`` from here and keeps
its heavy imports inside the command function, so that ``twinsep --help`` is instant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import typer
from rich.console import Console

app = typer.Typer(
    name="twinsep",
    help="Virtual surgical planning for separating craniopagus conjoined twins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Messages for the user (stderr, so that stdout stays clean for piping).
console = Console(stderr=True, highlight=False)


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


def progress():
    """A Rich progress bar for long steps (on stderr)."""
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
) -> None:
    """Virtual surgical planning for separating craniopagus conjoined twins."""


#: Library progress callbacks: ``report(description, done, total)``.
@contextlib.contextmanager
def progress_reporter() -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar (one bar per description) on a terminal; silent when piped.

    Yields the callback ``report(description, done, total)`` that library functions take.
    """
    if not console.is_terminal:
        yield lambda description, done, total: None
        return
    with progress() as bar:
        tasks: dict[str, int] = {}

        def report(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=max(total, 1))
            bar.update(tasks[description], completed=done, total=max(total, 1))

        yield report
