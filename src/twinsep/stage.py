"""The one shape of a stage.

A stage is a package named for its command (``twinsep segment`` lives in
``twinsep.segment``) with a pure core (arrays and geometry in, typed results out) and a
thin case layer (``case.py``, the only I/O) that declares one :class:`Stage`: its name,
title, settings model, the case-folder files it reads and writes, and ``run``. The
pipeline (``twinsep.pipeline``) lists the stages in order; each command calls the same
``run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from twinsep.casefolder import Case
from twinsep.progress import Progress
from twinsep.settings import Settings, changed, file_names

S = TypeVar("S", bound=Settings)


class Status(StrEnum):
    """What happened to a stage in one run of the plan."""

    RAN = "ran"
    SKIPPED = "skipped"  # inputs, settings and outputs unchanged
    NOT_APPLICABLE = "not applicable"  # not conjoined, or no roster
    FAILED = "failed"


@dataclass(frozen=True)
class StageResult:
    """What one run of a stage produced.

    Attributes
    ----------
    sections : mapping
        The plan.json sections it wrote (name -> value).
    files : tuple of str
        Files it wrote, relative to the case folder.
    notes : tuple of str
        Things the user should know (shown by the CLI, kept in the log).
    summary : str
        One line for the plan's printout.
    data : object
        The stage's typed result (for its command's printout and for the library).
    """

    sections: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    summary: str = ""
    data: Any = None


def _no_files(settings: Any) -> dict[str, Path]:
    return {}


def _always(settings: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Stage(Generic[S]):
    """One step of the plan.

    Attributes
    ----------
    name : str
        The command's name (``twinsep NAME``) and the stage's key.
    title : str
        One line for the progress bar and the report.
    settings : type
        Its frozen settings model; every field can be set through ``plan``.
    inputs, outputs : tuple of str
        What it reads and writes in the case folder: paths relative to the case folder,
        or ``plan:SECTION`` for a plan.json section. The pipeline hashes the outputs to
        know whether the stage is still up to date.
    run : callable
        ``run(case, settings, progress) -> StageResult``.
    hint : str
        What to check when it fails on its input.
    input_files : callable
        ``input_files(settings) -> {key: path}``: files outside the case folder whose
        content the stage depends on (the scan, a label map, a roster...).
    record : callable
        ``record(settings) -> dict``: what plan.json ``case.settings`` says of it.
    applies : callable
        ``applies(settings) -> reason`` why the stage does not apply, or None.
    described : tuple of str
        Settings fields that ``record`` already tells; any other field set to a value
        other than its default is added to plan.json ``case.settings`` by its key.
    plan_name : str
        The stage's name in plan.json ``case`` and the case's state files when it is not
        ``name`` (plan.json 1.0.0 and 1.1.0 call ``view`` "viewer").
    """

    name: str
    title: str
    settings: type[S]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable[[Case, S, Progress], StageResult]
    hint: str = ""
    input_files: Callable[[S], dict[str, Path]] = _no_files
    record: Callable[[S], dict[str, Any]] | None = None
    applies: Callable[[S], str | None] = _always
    described: tuple[str, ...] = ()
    plan_name: str = ""

    @property
    def key(self) -> str:
        """The name in plan.json and in the case's state files."""
        return self.plan_name or self.name

    @property
    def command(self) -> str:
        """How to run it alone."""
        return f"twinsep {self.name} CASE"

    def describe(self, settings: S) -> dict[str, Any]:
        """plan.json ``case.settings`` of this stage: its record, and every other setting
        that differs from its default (paths by their file name, UIDs by their pseudonym)."""
        if self.record is None:
            return file_names(settings.model_dump(mode="json"))
        out = file_names(self.record(settings))
        for key, value in changed(settings).items():
            if key.split(".")[0] not in self.described and key not in out:
                out[key] = file_names(value)
        return out


__all__ = ["Stage", "StageResult", "Status"]
