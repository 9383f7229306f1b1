"""The roster file: who is available, with which skills, for how long.

A roster is a YAML mapping with three sections (see ``examples/roster.yaml``)::

    settings:                  # optional; the values below are the defaults
      handover_overlap_min: 15 # incoming and outgoing person overlap by this long (min)
      min_break_min: 60        # shortest break between two stints of one person (min)
      slot_min: 60             # hand-overs happen on this grid and at phase boundaries (min)
    people:                    # required, one entry per person
      - person: Ada Example
        role: neurosurgeon     # main role
        skills: [neurosurgeon] # roles this person may take (main role added if missing)
        max_continuous_h: 8    # longest stint without a break (h)
        earliest_h: 0          # first hour on duty, from the start of anaesthesia (h)
        latest_h: 24           # last hour on duty (h)
    phases: {...}              # optional overrides of the phase defaults (see phases.py)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinsep.errors import InputError


@dataclass(frozen=True)
class Person:
    """One member of the operating team.

    Attributes
    ----------
    name : str
        Unique name as written in the roster.
    role : str
        Main role (listed first in the run sheets).
    skills : tuple[str, ...]
        Every role the person may take, main role first.
    max_continuous_min : int
        Longest stint without a break, hand-over overlap included (min).
    earliest_min, latest_min : int
        Window on duty, from the start of anaesthesia (min).
    """

    name: str
    role: str
    skills: tuple[str, ...]
    max_continuous_min: int
    earliest_min: int
    latest_min: int


@dataclass(frozen=True)
class Settings:
    """Rules of the schedule (all in minutes)."""

    handover_overlap_min: int = 15
    min_break_min: int = 60
    slot_min: int = 60

    def as_dict(self) -> dict[str, int]:
        return {
            "handover_overlap_min": self.handover_overlap_min,
            "min_break_min": self.min_break_min,
            "slot_min": self.slot_min,
        }


@dataclass(frozen=True)
class Roster:
    """A parsed roster file."""

    people: tuple[Person, ...]
    settings: Settings = field(default_factory=Settings)
    phases: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def person(self, name: str) -> Person:
        for p in self.people:
            if p.name == name:
                return p
        raise KeyError(name)


def _number(value: Any, where: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where} must be a number, got {value!r}")
    if value < minimum:
        raise InputError(f"{where} must be at least {minimum:g}, got {value!r}")
    return float(value)


def _minutes(hours: Any, where: str) -> int:
    return round(_number(hours, where) * 60)


def parse_roster(data: Any, source: str = "roster") -> Roster:
    """Check a roster mapping (as read from YAML) and turn it into a :class:`Roster`.

    Raises
    ------
    InputError
        With one line naming the file, the entry and what is wrong.
    """
    if not isinstance(data, dict):
        raise InputError(f"{source}: a roster must be a mapping with a 'people' list")
    unknown = sorted(set(data) - {"settings", "people", "phases"})
    if unknown:
        raise InputError(
            f"{source}: unknown section {unknown[0]!r} (expected settings, people, phases)"
        )
    raw_settings = data.get("settings") or {}
    if not isinstance(raw_settings, dict):
        raise InputError(f"{source}: 'settings' must be a mapping")
    allowed = set(Settings().as_dict())
    bad = sorted(set(raw_settings) - allowed)
    if bad:
        expected = ", ".join(sorted(allowed))
        raise InputError(f"{source}: unknown setting {bad[0]!r} (expected {expected})")
    values = {}
    for key in allowed:
        if key in raw_settings:
            values[key] = round(_number(raw_settings[key], f"{source}: settings.{key}"))
    settings = Settings(**values)
    if settings.slot_min < 5:
        raise InputError(f"{source}: settings.slot_min must be at least 5 minutes")

    people_raw = data.get("people")
    if not isinstance(people_raw, list) or not people_raw:
        raise InputError(f"{source}: 'people' must be a non-empty list")
    people: list[Person] = []
    seen: set[str] = set()
    for i, entry in enumerate(people_raw):
        where = f"{source}: people[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a mapping")
        name = entry.get("person")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: 'person' (a name) is missing")
        name = name.strip()
        where = f"{source}: person {name!r}"
        if name in seen:
            raise InputError(f"{where} is listed twice")
        seen.add(name)
        role = entry.get("role")
        if not isinstance(role, str) or not role.strip():
            raise InputError(f"{where}: 'role' is missing")
        skills_raw = entry.get("skills", [])
        if isinstance(skills_raw, str):
            skills_raw = [skills_raw]
        if not isinstance(skills_raw, list) or not all(isinstance(s, str) for s in skills_raw):
            raise InputError(f"{where}: 'skills' must be a list of role names")
        skills = [role.strip()] + [s.strip() for s in skills_raw if s.strip() != role.strip()]
        if "max_continuous_h" not in entry:
            raise InputError(f"{where}: 'max_continuous_h' is missing")
        max_cont = _minutes(entry["max_continuous_h"], f"{where}: max_continuous_h")
        if max_cont <= 0:
            raise InputError(f"{where}: max_continuous_h must be positive")
        earliest = _minutes(entry.get("earliest_h", 0), f"{where}: earliest_h")
        latest = _minutes(entry.get("latest_h", 48), f"{where}: latest_h")
        if latest <= earliest:
            raise InputError(f"{where}: latest_h must be after earliest_h")
        people.append(
            Person(name, role.strip(), tuple(dict.fromkeys(skills)), max_cont, earliest, latest)
        )
    phases = data.get("phases") or {}
    if not isinstance(phases, dict):
        raise InputError(f"{source}: 'phases' must be a mapping of phase kinds")
    return Roster(tuple(people), settings, phases, source)


def load_roster(path: str | Path) -> Roster:
    """Read and check a roster YAML file.

    Raises
    ------
    InputError
        The file is missing, is not YAML or does not describe a roster.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: roster file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise InputError(f"{path}: not valid YAML{at}") from exc
    return parse_roster(data, str(path))
