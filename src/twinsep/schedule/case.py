"""The case layer of ``twinsep schedule``: reads plan.json and the roster, writes
``schedule/`` (Gantt chart, run sheets, checklists) and plan.json ``schedule``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from twinsep.casefolder import Case, load_plan, update_plan
from twinsep.progress import Progress
from twinsep.schedule.build import plan_schedule
from twinsep.schedule.outputs import write_outputs
from twinsep.schedule.roster import load_roster
from twinsep.settings import Settings, default
from twinsep.stage import Stage, StageResult

logger = logging.getLogger(__name__)


class ScheduleSettings(Settings):
    """Options of ``twinsep schedule`` (defaults: ``schedule`` in defaults.yaml)."""

    roster: Path | None = Field(default("schedule.roster"), description="Roster YAML.")
    stage: int | None = Field(default("schedule.stage"), ge=1,
                              description="Operation of a staged separation to schedule.")
    time_limit_s: float | None = Field(default("schedule.time_limit_s"), ge=0.05,
                                       description="Deterministic CP-SAT time limit (s).")


def schedule_case(case: Case, roster: Path, *, stage: int | None = None,
                  time_limit_s: float | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Schedule the operation of ``case`` with the team of ``roster``; returns the plan.json
    ``schedule`` section as written."""
    say = progress or (lambda message, fraction: None)
    case.require()
    say("reading the roster", 0.05)
    team = load_roster(roster)
    say("CP-SAT: assigning the team", 0.2)
    section = plan_schedule(load_plan(case), team, stage=stage, time_limit_s=time_limit_s)
    say("Gantt chart, run sheets, checklists", 0.8)
    section["files"] = write_outputs(section, case.root / "schedule")
    update_plan(case, schedule=section)
    logger.info("stage %s: %.1f h, %d assignments (%s)", section["operation"]["stage"],
                section["operation"]["total_h"], len(section["assignments"]),
                section["solver"]["status"])
    return section


def _run(case: Case, settings: ScheduleSettings, progress: Progress) -> StageResult:
    if settings.roster is None:
        from twinsep.errors import InputError

        raise InputError("the schedule needs a roster: --roster FILE (see examples/roster.yaml)")
    section = schedule_case(case, settings.roster, stage=settings.stage,
                            time_limit_s=settings.time_limit_s, progress=progress)
    files = tuple(str(v) for v in section["files"].values())
    return StageResult(sections={"schedule": section}, files=files,
                       notes=tuple(section.get("notes") or ()),
                       summary=f"{section['operation']['total_h']:.1f} h", data=section)


def _record(settings: ScheduleSettings) -> dict[str, Any]:
    return {"roster": settings.roster.name if settings.roster else None}


def _input_files(settings: ScheduleSettings) -> dict[str, Path]:
    return {"roster_sha256": settings.roster} if settings.roster is not None else {}


def _applies(settings: ScheduleSettings) -> str | None:
    return "no --roster given" if settings.roster is None else None


STAGE = Stage(
    name="schedule",
    title="operating-room schedule",
    settings=ScheduleSettings,
    inputs=("plan.json",),
    outputs=("plan:schedule",),
    run=_run,
    hint="check the roster file (see examples/roster.yaml and docs/schedule.md)",
    input_files=_input_files,
    record=_record,
    applies=_applies,
    described=("roster",),
)

__all__ = ["STAGE", "ScheduleSettings", "schedule_case"]
