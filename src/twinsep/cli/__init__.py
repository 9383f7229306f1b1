"""Command line: ``twinsep COMMAND``. A thin layer over the library.

Bad input is reported as one line on stderr with exit code 2.
"""

from __future__ import annotations

import importlib
import sys

from twinsep.cli._app import app, error_console

# Command modules register themselves on ``app`` when imported; a module that does not
# exist yet (a stage still being built) is skipped.
_COMMAND_MODULES = (
    "ingest",
    "phantom",
    "segment",
    "identify",
    "separate",
    "simulate",
    "schedule",
    "models",
    "plan",
    "report",
    "demo",
    "compare",
    "view",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"twinsep.cli.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a stage is missing
        if exc.name != f"twinsep.cli.{_name}":
            raise


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (2 for bad input or usage)."""
    from twinsep.errors import InputError, environment_error

    try:
        app(args=argv, prog_name="twinsep")  # standalone: always ends in SystemExit
    except (InputError, OSError) as exc:
        from rich.text import Text

        line = exc if isinstance(exc, InputError) else environment_error(exc)
        if line is None:
            raise
        error_console.print(Text.assemble(("error: ", "bold red"), str(line)), soft_wrap=True)
        return 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def run() -> None:
    """Entry point of the ``twinsep`` script."""
    sys.exit(main())


__all__ = ["app", "main", "run"]
