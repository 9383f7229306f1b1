"""Operating-room choreography: who does what, hour by hour, for a separation.

Public API::

    from twinsep.schedule import load_roster, plan_schedule, check_schedule, write_outputs

    roster = load_roster("examples/roster.yaml")
    section = plan_schedule(plan, roster)          # the plan.json ``schedule`` section
    problems = check_schedule(section, roster_yaml) # independent checker, [] when valid
    files = write_outputs(section, case.root / "schedule")

See ``docs/schedule.md``.
"""

from __future__ import annotations

from twinsep.schedule.build import DEFAULT_TIME_LIMIT_S, plan_schedule
from twinsep.schedule.case import STAGE, ScheduleSettings, schedule_case
from twinsep.schedule.check import check_schedule
from twinsep.schedule.model import InfeasibleRosterError
from twinsep.schedule.outputs import write_outputs
from twinsep.schedule.phases import DEFAULT_PHASES, derive_operation
from twinsep.schedule.roster import Person, Roster, Settings, load_roster, parse_roster

__all__ = [
    "DEFAULT_PHASES",
    "DEFAULT_TIME_LIMIT_S",
    "STAGE",
    "InfeasibleRosterError",
    "Person",
    "Roster",
    "ScheduleSettings",
    "Settings",
    "check_schedule",
    "derive_operation",
    "load_roster",
    "parse_roster",
    "plan_schedule",
    "schedule_case",
    "write_outputs",
]
